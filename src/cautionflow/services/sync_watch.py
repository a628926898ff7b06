"""Has the day's sync finished in time? Read from the register's `sync_runs` (the sync writes its
row in the same transaction as its changes, so a row for a day means that day's sync finished)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from cautionflow.adapters.figures import RegisterFigures


class WatchedRegister(Protocol):
    figures: RegisterFigures

    def exists(self) -> bool: ...


def sync_progress(register: WatchedRegister, as_of: dt.date) -> tuple[dt.datetime | None, dt.date | None]:
    """(when the first sync for `as_of` finished, or None; the latest as-of date any sync finished).
    No register at all reads as no sync, and is not created: the watch is what tells operations."""
    if not register.exists():
        return None, None
    return register.figures.sync_progress(as_of)
