"""Shared fixtures. PostgreSQL tests skip when the server is absent, unless
CAUTIONFLOW_REQUIRE_POSTGRES=1 (set by .ci/run) makes its absence a failure."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.smtp_server import MailServer
from tests.support import (
    postgres_available,
    temporary_postgres_database,
    write_postgres_source,
    write_sqlite_source,
)

REPO = Path(__file__).resolve().parents[1]


def require_postgres() -> None:
    if not postgres_available():
        if os.environ.get("CAUTIONFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail("PostgreSQL on 127.0.0.1:5432 is required (CAUTIONFLOW_REQUIRE_POSTGRES=1) but absent")
        pytest.skip("PostgreSQL on 127.0.0.1:5432 is not available")


@dataclass
class Databases:
    """A housing database and a register on one backend."""

    backend: str
    source_url: str
    register_url: str
    _writer: Any

    def write_source(self, rows: list[dict[str, Any]]) -> None:
        self._writer(rows)


@pytest.fixture(params=["sqlite", "postgresql"])
def databases(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Databases]:
    if request.param == "sqlite":
        source = tmp_path / "housing.db"
        write_sqlite_source(source, [])
        yield Databases(
            "sqlite", f"sqlite:///{source}", f"sqlite:///{tmp_path / 'register.db'}",
            lambda rows: write_sqlite_source(source, rows),
        )
        return
    require_postgres()
    with temporary_postgres_database("cf_source") as source_url, temporary_postgres_database("cf_register") as reg:
        write_postgres_source(source_url, [])
        yield Databases("postgresql", source_url, reg, lambda rows: write_postgres_source(source_url, rows))


@pytest.fixture
def mail_server():
    """A recording SMTP server on a free loopback port."""
    server = MailServer().start()
    yield server
    server.stop()


