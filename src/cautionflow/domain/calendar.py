"""Working days for a UK nation: Monday to Friday except that nation's bank holidays.

Deadlines such as Dover's "within 20 working days" (6.34) and a review date that moves past
a weekend or bank holiday (6.21) need the real holidays, including substitute days (Boxing
Day 2026 is a Saturday, so Monday 28 December is the holiday). The `holidays` package knows
them only for a region: without `subdiv`, Easter Monday and the August bank holiday are
missing for England and Wales.

Each method has a scalar form (plain and readable) and an `_array` form over numpy
datetime64[D] arrays (NaT in, NaT out) built on `numpy.busday_offset`; both read the same
holiday list, so they always agree.
"""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache

import holidays
import numpy as np

# Holidays are loaded for these years; every date the deadline engine can compute falls in
# them (input dates 1900-2099 plus at most 120 months and 366 working days). Outside them only
# weekends are non-working days, in both the scalar and the array methods.
FIRST_YEAR = 1900
LAST_YEAR = 2112

_SUBDIVISIONS = {"england-and-wales": "ENG", "scotland": "SCT", "northern-ireland": "NIR"}
_ONE_DAY = timedelta(days=1)


@cache
def _bank_holidays(nation: str) -> tuple[frozenset[date], np.busdaycalendar]:
    """Built once per nation and process: loading two centuries of holidays takes ~0.1 s."""
    found = holidays.country_holidays(
        "GB", subdiv=_SUBDIVISIONS[nation], years=range(FIRST_YEAR, LAST_YEAR + 1))
    days = frozenset(found)
    cal = np.busdaycalendar(weekmask="1111100", holidays=np.array(sorted(days), dtype="datetime64[D]"))
    return days, cal


class WorkingCalendar:
    """Working days of one nation: `england-and-wales`, `scotland` or `northern-ireland`."""

    __slots__ = ("nation",)

    def __init__(self, nation: str) -> None:
        if nation not in _SUBDIVISIONS:
            raise ValueError(f"unknown nation {nation!r}; expected one of {', '.join(_SUBDIVISIONS)}")
        self.nation = nation

    def __repr__(self) -> str:
        return f"WorkingCalendar({self.nation!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, WorkingCalendar) and other.nation == self.nation

    def __hash__(self) -> int:
        return hash(self.nation)

    @property
    def bank_holidays(self) -> frozenset[date]:
        return _bank_holidays(self.nation)[0]

    @property
    def busdaycalendar(self) -> np.busdaycalendar:
        return _bank_holidays(self.nation)[1]

    # Scalar forms: the readable definitions.

    def is_working_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in self.bank_holidays

    def next_working_day(self, day: date) -> date:
        """`day` itself when it is a working day, else the first working day after it."""
        while not self.is_working_day(day):
            day += _ONE_DAY
        return day

    def add_working_days(self, start: date, n: int) -> date:
        """The nth working day after `start`; `start` itself is not counted, even if it is one."""
        if n < 0:
            raise ValueError("n must not be negative")
        day = start
        while n > 0:
            day += _ONE_DAY
            if self.is_working_day(day):
                n -= 1
        return day

    # Array forms over datetime64[D]: the same rules for a million rows at once.

    def is_working_day_array(self, days: np.ndarray) -> np.ndarray:
        days = np.asarray(days, dtype="datetime64[D]")
        result = np.zeros(days.shape, dtype=bool)
        known = ~np.isnat(days)
        result[known] = np.is_busday(days[known], busdaycal=self.busdaycalendar)
        return result

    def next_working_day_array(self, days: np.ndarray) -> np.ndarray:
        days = np.asarray(days, dtype="datetime64[D]")
        return self._offset_known(days, 0, "forward")

    def add_working_days_array(self, starts: np.ndarray, n: int) -> np.ndarray:
        # roll="backward" first steps a non-working start back to the working day before it,
        # so Saturday + 1 is Monday (roll="forward" would give Tuesday).
        starts = np.asarray(starts, dtype="datetime64[D]")
        if n < 0:
            raise ValueError("n must not be negative")
        if n == 0:
            return starts.copy()
        return self._offset_known(starts, n, "backward")

    def _offset_known(self, days: np.ndarray, n: int, roll: str) -> np.ndarray:
        """busday_offset on the non-NaT entries only: registers have many empty dates."""
        known = ~np.isnat(days)
        if known.all():
            return np.busday_offset(days, n, roll=roll, busdaycal=self.busdaycalendar)
        result = np.full(days.shape, np.datetime64("NaT", "D"))
        result[known] = np.busday_offset(days[known], n, roll=roll, busdaycal=self.busdaycalendar)
        return result
