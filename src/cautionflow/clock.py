"""The one clock. Product code asks a `Clock` for the time instead of reading the wall clock.

Time is an input: the sync stamps its run with `clock()`, the outbox dates and times its messages
with it, the lateness check and the failure notice date their mail with it. Only the edges choose
the clock (an Airflow task, a command-line run), and they choose `system_clock` deliberately;
tests pass a `FixedClock`, so nothing a test checks depends on the day, weekday or hour it runs.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass

Clock = Callable[[], dt.datetime]  # returns an aware datetime (UTC for the system clock)


def system_clock() -> dt.datetime:
    """The machine's time in UTC: the default at the edges, never read anywhere else."""
    return dt.datetime.now(dt.UTC)


@dataclass
class FixedClock:
    """A clock that shows one moment until moved: `clock.advance(minutes=5)`."""

    moment: dt.datetime

    def __post_init__(self) -> None:
        if self.moment.tzinfo is None:
            raise ValueError("a FixedClock needs an aware datetime (with a time zone)")

    def __call__(self) -> dt.datetime:
        return self.moment

    def advance(self, **delta: float) -> FixedClock:
        self.moment += dt.timedelta(**delta)
        return self
