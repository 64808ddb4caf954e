"""State stores: memory, SQLite (the default) and PostgreSQL, and the SQL they share."""
