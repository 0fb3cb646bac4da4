"""Alembic migrations of the run-history store, run by `migrate.upgrade` on first use."""
