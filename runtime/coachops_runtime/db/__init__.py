"""Database schema (Alembic migrations) and tenant-scoped sessions."""
