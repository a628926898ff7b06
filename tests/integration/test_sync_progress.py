"""The sync reports its progress (issue 12): rows read, validated and written, at INFO in the task log
and to the caller's `Progress`, per chunk on a first load and per stage on a later sync."""

from __future__ import annotations

import logging
import re

from cautionflow.adapters.register import Register
from cautionflow.adapters.source import SqlAlertSource
from cautionflow.config import DEFAULT_SOURCE_QUERY
from cautionflow.progress import ProgressEvent
from cautionflow.services import sync as sync_service
from cautionflow.services.sync import sync_register
from tests.support import AS_OF, alert_row

SOURCE = [alert_row(alert_id=f"P{i}") for i in range(4)] + [alert_row(alert_id=None)]  # one quarantined


def sync(databases, run_id: str, events: list[ProgressEvent]):
    register = Register(databases.register_url)
    try:
        return sync_register(
            SqlAlertSource(databases.source_url, DEFAULT_SOURCE_QUERY), register, as_of=AS_OF, run_id=run_id,
            progress=events.append,
        )
    finally:
        register.dispose()


def lines(caplog) -> list[str]:
    """The sync's INFO lines with their times and rates taken out (those depend on the machine)."""
    return [
        re.sub(r" in [0-9.]+ s| \([0-9,]+ rows/s\)|; [0-9.]+ s elapsed", "", r.getMessage())
        for r in caplog.records if r.name == "cautionflow.services.sync" and r.levelno == logging.INFO
    ]


def test_the_first_load_logs_each_chunk_then_a_later_sync_each_stage(databases, caplog, monkeypatch):
    monkeypatch.setattr(sync_service, "FIRST_LOAD_CHUNK", 2)  # three chunks: 2, 2, 1
    databases.write_source(SOURCE)
    events: list[ProgressEvent] = []
    with caplog.at_level(logging.INFO, logger="cautionflow"):
        first = sync(databases, "run-1", events)
    assert first.read == 5 and first.inserted == 4 and first.quarantined == 1
    assert lines(caplog) == [
        "sync: read 5 rows",
        "sync: validated 2 of 5 rows", "sync: written 2 rows so far",
        "sync: validated 4 of 5 rows", "sync: written 4 rows so far",
        "sync: validated 5 rows", "sync: written 4 rows",  # the quarantined row is not written
        "sync: indexes built",
        "sync: done",
    ]
    line = next(r.getMessage() for r in caplog.records if "validated 2 of 5" in r.getMessage())
    assert re.fullmatch(r"sync: validated 2 of 5 rows \([0-9,]+ rows/s\); [0-9.]+ s elapsed", line)
    finished = {e.stage: e.rows for e in events if e.kind == "finished"}
    assert finished == {"read": 5, "validated": 5, "written": 4, "indexes built": None}

    caplog.clear()
    events.clear()
    databases.write_source([*SOURCE[:3], alert_row(alert_id="P3", alert_code="DOG"), SOURCE[4]])
    with caplog.at_level(logging.INFO, logger="cautionflow"):
        later = sync(databases, "run-2", events)
    assert later.updated == 1
    assert lines(caplog) == [
        "sync: read 5 rows", "sync: validated 5 rows", "sync: compared with the register", "sync: written 1 rows",
        "sync: done",
    ]
