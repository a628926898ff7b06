"""Is the register recent enough to mail from?

A digest says which flags apply and which were lifted. Sent from a register that never completed a
sync, or whose last sync is days old, it tells contractors and the out-of-hours desk that warnings
they still need no longer apply, or that there are none. Safety first (policies README,
"Principles": a warning reaches the people who visit), so such mail is refused and operations told.
"""

from __future__ import annotations

import datetime as dt


def sync_age_problem(last_finished: dt.datetime | None, now: dt.datetime, max_age: dt.timedelta) -> str | None:
    """Why mail must wait for a sync, or None when the last completed sync is recent enough.

    A sync that finished "after" `now` (two machines' clocks a little apart) counts as recent."""
    if last_finished is None:
        return "the register has never completed a sync"
    age = now - last_finished
    if age <= max_age:
        return None
    return (
        f"the register's last completed sync finished {_hours(age)} ago "
        f"({last_finished.astimezone(dt.UTC):%Y-%m-%d %H:%M} UTC), more than the {_hours(max_age)} allowed"
    )


def _hours(span: dt.timedelta) -> str:
    return f"{round(span.total_seconds() / 3600, 1):g} hours"
