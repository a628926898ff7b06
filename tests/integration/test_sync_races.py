"""Two syncs of one register at once (issue 17): a manual `run sync` racing the scheduled one, or the
urgent cycle (`run urgent`: its own sync, then the urgent notices) racing the daily sync. One waits
for the other (the sync lock, `Register.sync_lock`: a PostgreSQL advisory lock, an SQLite lock file);
both end cleanly, and the register ends identical to one sync of the same source: every alert row
the same as in a second register that one sync built, each change in the history once, and each
urgent notice sent once.

Made deterministic as tests/integration/test_concurrent_syncs.py is: the test holds the sync lock
while both processes start, and lets go only once both say they wait, so the two certainly race for
it. Synthetic data only.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from cautionflow.adapters.database import fetch_all
from cautionflow.adapters.register import Register
from cautionflow.steps import run_sync, run_urgent
from tests.deployment import ACME, FAST, NIGHT_DESK, SOURCE, WEEKLY, deployment, write_config
from tests.integration.test_concurrent_syncs import Stderr
from tests.support import AS_OF, alert_row, temporary_postgres_database

DAY_TWO = AS_OF + dt.timedelta(days=1)
WAITING = "waiting for the sync already running"
FIXED = dt.datetime(2026, 11, 23, 5, 30, tzinfo=dt.UTC)  # day 1's sync, before either racer

NORTH_WPN = alert_row(alert_id="N9", alert_code="WPN", area="NORTH", address="3 Heron Way", postcode="EW1 9ZZ",
                      person_ref="P0009", person_name="Nina Ninefold", note="NOTE-SECRET-N9 knife seen")


def changed(rows, alert_id, **fields):
    return [{**r, **fields} if r["alert_id"] == alert_id else r for r in rows]


# Overnight: a weapons warning added in NORTH, N1 escalated from visit in pairs to do not visit (both
# urgent), S1 ended in the housing system, and E1's note rewritten (a change, not urgent).
DAY_TWO_SOURCE = [
    *changed(changed(changed(SOURCE, "N1", alert_code="DNV"), "S1", status="ended"), "E1", note="NOTE-SECRET-E1 v2"),
    NORTH_WPN,
]
DAY_TWO_CHANGES = {"inserted": 1, "updated": 3, "ended": 1}  # N9; N1, E1 and S1 (ended in the source); S1


def start(step: str, home: Path, config: str, run_id: str) -> subprocess.Popen[str]:
    env = {**{k: v for k, v in os.environ.items() if k != "CAUTIONFLOW_CONFIG"}, "CAUTIONFLOW_HOME": str(home)}
    return subprocess.Popen(
        [sys.executable, "-m", "cautionflow", "run", step, "--config", config, "--as-of", DAY_TWO.isoformat(),
         "--run-id", run_id],
        cwd=home, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )


def race(register_url: str, home: Path, config: str, steps: tuple[str, str]) -> list[tuple[int, dict, str]]:
    """Start `steps` as two processes while this test holds the sync lock; let go once both wait.
    Returns each one's (exit code, JSON summary, stderr)."""
    holder = Register(register_url)
    processes: list[subprocess.Popen[str]] = []
    try:
        with holder.sync_lock(wait_seconds=0):
            processes += [start(step, home, config, f"race-{i}-{step}") for i, step in enumerate(steps)]
            errors = [Stderr(p) for p in processes]
            # Only once both say they wait: a process still starting when the lock is let go would
            # not race at all (it can take seconds to start on a loaded machine).
            waiting = [e.wait_for(WAITING, seconds=120) for e in errors]
            assert waiting == [True, True], [e.lines for e in errors]
            assert all(p.poll() is None for p in processes)
        outputs = [p.stdout.read() for p in processes]  # type: ignore[union-attr]
        for p in processes:
            p.wait(timeout=300)
    finally:
        holder.dispose()
        for p in processes:  # a failed assertion above leaves none behind
            if p.poll() is None:
                p.kill()
                p.wait(timeout=60)
    results = []
    for process, out, err in zip(processes, outputs, errors, strict=True):
        text = err.text()
        assert out.strip(), text[-3000:]
        results.append((process.returncode, json.loads(out.strip().splitlines()[-1]), text))
    return results


def register_content(url: str) -> dict[str, list]:
    """Every alert row and every history row, with the run ids that wrote them reduced to the day
    (day 1's sync, or "day 2": whichever of the racers made the change), in a stable order."""

    def day(run_id: str) -> str:
        return "day 1" if run_id == "sync-day1" else "day 2"

    with Register(url) as register, register.connect() as conn:
        columns, rows = fetch_all(conn, "SELECT * FROM alerts ORDER BY alert_id")
        alerts = [
            {c: (day(v) if c in ("first_seen_run", "last_changed_run") else str(v)) for c, v in zip(columns, row,
                                                                                                   strict=True)}
            for row in rows
        ]
        _, history = fetch_all(conn, "SELECT alert_id, as_of, change, changed_fields, run_id FROM alert_history "
                                     "ORDER BY alert_id, id")
    return {
        "alerts": alerts,
        "history": [(a, str(on), change, json.loads(fields) if fields else None, day(run)) for a, on, change, fields, run
                    in history],
    }


def history_runs(url: str) -> Counter:
    """How many history rows each run wrote."""
    with Register(url) as register, register.connect() as conn:
        _, rows = fetch_all(conn, "SELECT run_id, COUNT(*) FROM alert_history GROUP BY run_id")
    return Counter({run: int(n) for run, n in rows})


@contextlib.contextmanager
def reference_register(databases, tmp_path: Path):
    """A second, empty register on the same backend, for the one-sync reference."""
    if databases.backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'reference.db'}"
        return
    with temporary_postgres_database("cf_reference") as url:
        yield url


def urgent_received(mail_server) -> Counter:
    return Counter(r.recipient for r in mail_server.handler.received if r.message["X-Cautionflow-Kind"] == "urgent")


@pytest.mark.parametrize("steps", [("sync", "urgent"), ("sync", "sync"), ("urgent", "urgent")],
                         ids=["urgent-vs-daily", "manual-vs-daily", "urgent-vs-urgent"])
def test_two_syncs_at_once_leave_the_register_as_one_sync_would(databases, tmp_path, mail_server, steps):
    config = deployment(databases, tmp_path, mail_server.port)
    path = write_config(config, tmp_path)
    with reference_register(databases, tmp_path) as reference_url:
        reference = config.model_copy(update={"register_url": reference_url})
        # Day 1, the same in both registers: the first load (never urgent news).
        databases.write_source(SOURCE)
        for each in (config, reference):
            run_sync(each, as_of=AS_OF, run_id="sync-day1", clock=lambda: FIXED)
        databases.write_source(DAY_TWO_SOURCE)
        one = run_sync(reference, as_of=DAY_TWO, run_id="reference-day2", clock=lambda: FIXED + dt.timedelta(days=1))
        assert {k: one[k] for k in DAY_TWO_CHANGES} == DAY_TWO_CHANGES
        expected = register_content(reference_url)

        results = race(databases.register_url, tmp_path, path, steps)

        # Both end cleanly: each waited for the lock (the test's, then perhaps the other's) and ran. Of
        # two urgent cycles, one may find the other delivering its notices: it says so and exits 3
        # (notices pending), as every mail step does then; its retry finds them sent (below).
        assert [code for code, _, _ in results] in ([0, 0], *([[0, 3], [3, 0]] if steps == ("urgent", "urgent") else [])), \
            [(s, e[-3000:]) for _, s, e in results]
        assert all(WAITING in err for _, _, err in results)
        assert not any("Traceback" in err for _, _, err in results), [e[-3000:] for _, _, e in results]
        syncs = [summary["sync"] if step == "urgent" else summary
                 for step, (_, summary, _) in zip(steps, results, strict=True)]
        # One of them made the day's changes; the other found them made and changed nothing.
        counts = sorted(tuple(s[k] for k in DAY_TWO_CHANGES) for s in syncs)
        assert counts == [(0, 0, 0), tuple(DAY_TWO_CHANGES.values())], syncs
        assert sorted(s["unchanged"] for s in syncs) == sorted([one["unchanged"], len(DAY_TWO_SOURCE)]), syncs

        # The register is the one one sync made: every alert row, each change in the history once.
        assert register_content(databases.register_url) == expected
        runs = history_runs(databases.register_url)
        assert runs["sync-day1"] == len(SOURCE)
        day_two = {run: n for run, n in runs.items() if run != "sync-day1"}
        assert list(day_two.values()) == [sum(1 for *_, d in expected["history"] if d == "day 2")], runs  # one run

    if "urgent" in steps:
        # N9 added and N1 escalated, both in NORTH: told once to NORTH's contractors and the call
        # handlers, whichever of the two syncs recorded them; SOUTH's contractor has nothing.
        urgent = [(code, s, err) for step, (code, s, err) in zip(steps, results, strict=True) if step == "urgent"]
        assert all((s["changes"], s["failed"], s["uncertain"]) == (2, 0, 0) for _, s, _ in urgent), urgent
        # Queued once and sent once, by whichever delivered (two urgent cycles at once: a manual `run
        # urgent` beside the DAG's); one that found the other delivering left them to it and said so.
        assert (sum(s["notices"] for _, s, _ in urgent), sum(s["sent"] for _, s, _ in urgent)) == (3, 3), urgent
        for code, s, err in urgent:
            assert (s["pending"] == 0, s["complete"]) == (True, True) if code == 0 else 0 < s["pending"] <= 3, s
            assert code == 0 or "another run is delivering from the outbox" in err, err[-3000:]
        assert urgent_received(mail_server) == Counter({ACME: 1, WEEKLY: 1, NIGHT_DESK: 1})
        [acme] = [r.message for r in mail_server.handler.received if r.recipient == ACME]
        assert acme["Subject"] == "URGENT: 2 new warnings (Example Homes)"
        # The next quarter of an hour (or a task's retry): nothing left to send, nothing sent twice.
        later = run_urgent(config, as_of=DAY_TWO, run_id="urgent-later", retry=FAST)
        assert (later["notices"], later["sent"], later["pending"], later["complete"]) == (0, 0, 0, True), later
        assert urgent_received(mail_server) == Counter({ACME: 1, WEEKLY: 1, NIGHT_DESK: 1})
    else:
        assert mail_server.handler.received == []
