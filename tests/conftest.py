"""Shared fixtures. PostgreSQL tests skip when the server is absent, unless
CAUTIONFLOW_REQUIRE_POSTGRES=1 (set by .ci/run) makes its absence a failure.

Every process a test starts must be stopped by the test or fixture that started it. The session
marks its environment with a token that every child inherits (an orphan keeps it after its parent
is gone and it is re-parented to init); at the end of the run any process still carrying the token
fails the run, named, and is then killed so that it does not outlive CI either.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.smtp_server import MailServer, serving
from tests.support import (
    postgres_available,
    temporary_postgres_database,
    write_postgres_source,
    write_sqlite_source,
)

SESSION_MARK = "CAUTIONFLOW_TEST_SESSION"
LEFTOVER_GRACE_SECONDS = 10.0  # a child told to stop may still be exiting when the last test ends


def pytest_sessionstart(session: pytest.Session) -> None:
    import uuid

    os.environ[SESSION_MARK] = uuid.uuid4().hex


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    from tests.support import processes_marked, stop_processes

    mark = os.environ.get(SESSION_MARK)
    if not mark:
        return
    leftovers = processes_marked(SESSION_MARK, mark, grace=LEFTOVER_GRACE_SECONDS)
    if not leftovers:
        return
    listing = "\n".join(f"  pid {pid}: {command}" for pid, command in leftovers)
    session.config.get_terminal_writer().line(
        f"\nFAILED: {len(leftovers)} process(es) started by the tests outlived them (now killed):\n{listing}",
        red=True,
    )
    stop_processes([pid for pid, _ in leftovers])
    session.exitstatus = pytest.ExitCode.TESTS_FAILED


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
def mail_server() -> Iterator[MailServer]:
    """A recording SMTP server on a free loopback port (the one SMTP server fixture)."""
    with serving() as server:
        yield server


