"""Alembic migrations of the register's schema (run by `cautionflow.adapters.register.upgrade`)."""
