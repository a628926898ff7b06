"""Two syncs of one register at once (issue 18, finding 7: "two first loads at once: the loser dies
with a raw database error"). A sync holds the register for its whole run, creating it included; a
second one waits, then merges into what the first made. Made deterministic by holding the sync's lock
from the test while both processes start, so both are certainly waiting when it is let go."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from cautionflow.adapters.register import Register, SyncAlreadyRunningError
from tests.support import AS_OF, alert_row

ROWS = [alert_row(alert_id=f"A{i:05d}", asset_ref=f"AS{i:05d}") for i in range(2_000)]


def start_sync(home: Path, config: Path) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "CAUTIONFLOW_CONFIG"}, "CAUTIONFLOW_HOME": str(home)}
    return subprocess.Popen([sys.executable, "-m", "cautionflow", "run", "sync", "--config", str(config),
                             "--as-of", AS_OF.isoformat()], cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def deployment(tmp_path: Path, databases) -> Path:
    databases.write_source(ROWS)
    config = {"organisation": "Example Homes", "policy": "dover", "register_url": databases.register_url,
              "source": {"url": databases.source_url}}
    path = tmp_path / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Stderr:
    """A process's stderr, read line by line as it comes (a thread), so a test can wait for a line."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.lines: list[str] = []
        self._thread = threading.Thread(target=self._read, args=(process,), daemon=True)
        self._thread.start()

    def _read(self, process: subprocess.Popen[str]) -> None:
        for line in process.stderr:  # type: ignore[union-attr]
            self.lines.append(line)

    def wait_for(self, text: str, *, seconds: float) -> bool:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if any(text in line for line in self.lines):
                return True
            time.sleep(0.1)
        return False

    def text(self) -> str:
        self._thread.join(timeout=30)
        return "".join(self.lines)


def test_two_first_loads_at_once_both_succeed_and_load_once(databases, tmp_path):
    config = deployment(tmp_path, databases)
    holder = Register(databases.register_url)
    try:
        with holder.sync_lock(wait_seconds=0):
            syncs = [start_sync(tmp_path, config) for _ in range(2)]
            errors = [Stderr(p) for p in syncs]
            # Let go only once both say they wait for the lock: on a loaded machine a process can take
            # seconds to start, and one that reached the lock after it was let go would not have waited.
            waiting = [e.wait_for("waiting for the sync already running", seconds=120) for e in errors]
            assert waiting == [True, True], [e.lines for e in errors]
            assert all(p.poll() is None for p in syncs)  # both still waiting
        outputs = [p.stdout.read() for p in syncs]  # type: ignore[union-attr]
        for p in syncs:
            p.wait(timeout=120)
        results = [(out, e.text()) for out, e in zip(outputs, errors, strict=True)]
    finally:
        holder.dispose()

    assert [p.returncode for p in syncs] == [0, 0], results
    assert all("waiting for the sync already running" in err for _, err in results), [e for _, e in results]
    summaries = [json.loads(out.strip().splitlines()[-1]) for out, _ in results]
    assert sorted(s["inserted"] for s in summaries) == [0, len(ROWS)]  # loaded once; the other merged
    assert sorted(s["unchanged"] for s in summaries) == [0, len(ROWS)]
    register = Register(databases.register_url)
    try:
        with register.connect() as conn:
            from cautionflow.adapters.database import fetch_all

            assert fetch_all(conn, "SELECT COUNT(*) FROM alerts")[1] == [(len(ROWS),)]
            assert fetch_all(conn, "SELECT COUNT(*) FROM sync_runs")[1] == [(2,)]
    finally:
        register.dispose()


def test_a_sync_that_waits_too_long_stops_without_changing_anything(databases, tmp_path):
    from cautionflow.adapters.source import SqlAlertSource
    from cautionflow.services.sync import sync_register

    deployment(tmp_path, databases)
    holder, waiting = Register(databases.register_url), Register(databases.register_url)
    try:
        with holder.sync_lock(wait_seconds=0):
            started = time.monotonic()
            with pytest.raises(SyncAlreadyRunningError, match="another sync has held it for over 1 s; this one "
                                                              "stopped without changing anything"):
                sync_register(SqlAlertSource(databases.source_url, "SELECT * FROM caution_alerts_export"), waiting,
                              as_of=dt.date(2026, 11, 23), run_id="late", lock_wait_seconds=1)
            assert time.monotonic() - started >= 1
        assert not waiting.exists()  # the register was never created: the waiting sync changed nothing
    finally:
        holder.dispose()
        waiting.dispose()
