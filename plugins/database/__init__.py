"""Database administration: the store's database performance, slowest statements and query
plans (`/api/v1/database/*`, docs/operations.md "Database")."""
