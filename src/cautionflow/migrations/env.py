"""Alembic environment: always run programmatically with a connection in `config.attributes`."""

from __future__ import annotations

from alembic import context

from cautionflow.adapters.register_schema import metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    version_table="cautionflow_schema_version",
)
with context.begin_transaction():
    context.run_migrations()
