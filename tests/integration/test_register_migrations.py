"""The register's schema comes from the migrations, and they match the code's table definitions."""

from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect

from cautionflow.adapters.register import Register
from cautionflow.adapters.register_schema import metadata


@pytest.fixture(params=["sqlite", "postgresql"])
def register_url(request, tmp_path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'register.db'}"
        return
    from tests.conftest import require_postgres
    from tests.support import temporary_postgres_database

    require_postgres()
    with temporary_postgres_database("cf_migrate") as url:
        yield url


def test_migrations_build_exactly_the_declared_schema(register_url):
    register = Register(register_url)
    register.migrate(create=True)  # as the sync does: only it creates a register
    register.migrate()  # idempotent
    with register.engine.connect() as conn:
        context = MigrationContext.configure(conn, opts={"version_table": "cautionflow_schema_version"})
        assert compare_metadata(context, metadata) == []
        tables = set(inspect(conn).get_table_names())
    register.dispose()
    assert {"alerts", "alert_history", "quarantine", "sync_runs", "cautionflow_schema_version"} <= tables
