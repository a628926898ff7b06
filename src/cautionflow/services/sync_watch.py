"""Has the day's sync finished in time? Read from the register's `sync_runs` (the sync writes its
row in the same transaction as its changes, so a row for a day means that day's sync finished)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cautionflow.adapters.database import fetch_all, stored_date

if TYPE_CHECKING:
    from cautionflow.adapters.register import Register


def _moment(value: object) -> dt.datetime | None:
    """A timestamp column through the raw driver: aware on PostgreSQL, UTC text on SQLite."""
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)


def sync_progress(register: Register, as_of: dt.date) -> tuple[dt.datetime | None, dt.date | None]:
    """(when the first sync for `as_of` finished, or None; the latest as-of date any sync finished).
    No register at all reads as no sync, and is not created: the watch is what tells operations."""
    if not register.exists():
        return None, None
    with register.connect() as conn:
        day = as_of.isoformat() if conn.dialect.name == "sqlite" else as_of
        first = fetch_all(conn, "SELECT MIN(finished_at) FROM sync_runs WHERE as_of = ?", (day,))[1][0][0]
        latest = fetch_all(conn, "SELECT MAX(as_of) FROM sync_runs")[1][0][0]
    return _moment(first), stored_date(latest)
