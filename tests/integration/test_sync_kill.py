"""Issue 18: the probe's kill -9, kept as a test. A sync of a large source, run as the cron user runs
it (`cautionflow run sync`), killed with SIGKILL while it writes, leaves the register identical to
its state before (every table, every row); a clean run afterwards gives the same register as a run
that was never killed. On SQLite and PostgreSQL: one transaction per sync is the whole mechanism
(README, "The register and the sync")."""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import yaml
from sqlalchemy import create_engine, select

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.adapters.register import Register
from cautionflow.adapters.source import SqlAlertSource
from cautionflow.clock import FixedClock
from cautionflow.config import DEFAULT_SOURCE_QUERY
from cautionflow.services.sync import sync_register
from tests.support import alert_row, temporary_postgres_database, write_sqlite_source

ROWS = 200_000
DAY_A, DAY_B = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
CLOCK = FixedClock(dt.datetime(2026, 11, 24, 5, 31, tzinfo=dt.UTC))


def day_a() -> list[dict]:
    base = alert_row()
    return [{**base, "alert_id": f"K{i:07d}", "asset_ref": f"H{i:07d}", "area": ("NORTH", "SOUTH")[i % 2]}
            for i in range(ROWS)]


def day_b(rows: list[dict]) -> list[dict]:
    """A busy day: 40,000 notes changed (seconds of writing), 1,000 alerts ended (under the guard's
    10%), 2,000 new ones."""
    changed = [{**row, "note": f"Reviewed on 24 November 2026 ({i})"} if i % 5 == 0 else row
               for i, row in enumerate(rows)]
    for i in range(1, 5000, 5):
        changed[i] = {**changed[i], "status": "ended", "ends_on": "2026-11-24"}
    base = alert_row()
    return changed + [{**base, "alert_id": f"N{i:07d}", "asset_ref": f"N{i:07d}"} for i in range(2000)]


def register_digest(url: str, *, surrogate_ids: bool = True) -> dict[str, str]:
    """A hash of every table's rows. Without `surrogate_ids`, autoincrement ids are left out (rows
    sorted by content): PostgreSQL's sequences are not transactional, so a rolled-back run uses up
    ids; which ids rows get is not part of what the register says."""
    engine = create_engine(normalise_url(url))
    digests = {}
    try:
        with engine.connect() as conn:
            for table in schema.metadata.sorted_tables:
                columns = [c for c in table.columns if surrogate_ids or not (c.primary_key and c.autoincrement is True)]
                ordered = select(*columns).order_by(*columns)  # every column: a total order, the same on both
                digest, count = hashlib.sha256(), 0
                for partition in conn.execute(ordered).partitions(10_000):
                    digest.update(repr([tuple(row) for row in partition]).encode())
                    count += len(partition)
                digests[table.name] = f"{digest.hexdigest()} ({count} rows)"
    finally:
        engine.dispose()
    return digests


def sync_in_process(source_url: str, register_url: str, as_of: dt.date, run_id: str) -> None:
    register = Register(register_url)
    try:
        sync_register(SqlAlertSource(source_url, DEFAULT_SOURCE_QUERY), register, as_of=as_of, run_id=run_id,
                      clock=CLOCK)
    finally:
        register.dispose()


@contextlib.contextmanager
def twin_of(url: str, backend: str, tmp_path: Path) -> Iterator[str]:
    """A copy of the register (a file copy; on PostgreSQL a database made from it as a template)."""
    if backend == "sqlite":
        twin = tmp_path / "twin.db"
        shutil.copy(normalise_url(url).split("///", 1)[1], twin)
        yield f"sqlite:///{twin}"
        return
    with temporary_postgres_database("cf_twin", template=url.rsplit("/", 1)[1]) as twin:
        yield twin


def start_sync(folder: Path) -> subprocess.Popen[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CAUTIONFLOW_CONFIG", "CAUTIONFLOW_REGISTER_URL")}
    return subprocess.Popen(
        [sys.executable, "-m", "cautionflow", "run", "sync", "--config", str(folder / "cautionflow.yaml"),
         "--as-of", DAY_B.isoformat(), "--run-id", "day-b"],
        cwd=folder, env={**env, "CAUTIONFLOW_HOME": str(folder)}, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        text=True,
    )


def kill_while_writing(process: subprocess.Popen[str]) -> list[str]:
    """SIGKILL the sync once it is in its write phase; returns the progress lines it printed."""
    lines: list[str] = []
    deadline = time.monotonic() + 120
    try:
        for line in process.stderr:
            lines.append(line.rstrip())
            # Logged when the plan is made, just before the first write of the one transaction.
            if "compared with the register" in line or time.monotonic() > deadline:
                break
        time.sleep(0.5)  # well inside the writes of 43,000 changes and their history
        assert process.poll() is None, "the sync finished before it could be killed:\n" + "\n".join(lines)
        process.send_signal(signal.SIGKILL)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=30)
        process.stderr.close()
    return lines


def test_a_sync_killed_while_writing_leaves_the_register_as_it_was(databases, tmp_path):
    source = write_sqlite_source(tmp_path / "housing.db", rows := day_a())
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump({
        "organisation": "Example Homes", "policy": "dover", "register_url": databases.register_url,
        "source": {"url": source},
    }))
    sync_in_process(source, databases.register_url, DAY_A, "day-a")
    write_sqlite_source(tmp_path / "housing.db", day_b(rows))
    before = register_digest(databases.register_url)

    lines = kill_while_writing(start_sync(tmp_path))

    assert any("validated 202,000 rows" in line for line in lines), lines
    assert register_digest(databases.register_url) == before

    with twin_of(databases.register_url, databases.backend, tmp_path) as never_killed:
        sync_in_process(source, never_killed, DAY_B, "day-b")
        sync_in_process(source, databases.register_url, DAY_B, "day-b")  # the clean rerun
        after = register_digest(databases.register_url, surrogate_ids=False)
        assert after == register_digest(never_killed, surrogate_ids=False)
    assert after["alerts"].endswith("(202000 rows)") and after["sync_runs"].endswith("(2 rows)")
