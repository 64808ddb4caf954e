"""The PostgreSQL attempt queue and the `baseshift worker` that drains it."""
