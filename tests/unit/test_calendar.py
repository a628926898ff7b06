"""Working days: Monday to Friday except the nation's bank holidays (README, "Working day")."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pytest

from cautionflow.domain.calendar import WorkingCalendar

ENGLAND = WorkingCalendar("england-and-wales")
SCOTLAND = WorkingCalendar("scotland")


def as_array(*days: date | None) -> np.ndarray:
    return np.array(days, dtype="datetime64[D]")


@pytest.mark.parametrize(
    ("day", "holiday"),
    [
        (date(2026, 8, 31), "August bank holiday 2026"),
        (date(2026, 12, 25), "Christmas Day 2026 (Friday)"),
        (date(2026, 12, 28), "Boxing Day 2026 is a Saturday: substitute Monday 28 December"),
        (date(2027, 1, 1), "New Year's Day 2027 (Friday)"),
        (date(2027, 3, 26), "Good Friday 2027"),
        (date(2027, 3, 29), "Easter Monday 2027 (missing without subdiv='ENG')"),
        (date(2027, 5, 3), "Early May bank holiday 2027"),
        (date(2027, 5, 31), "Spring bank holiday 2027"),
        (date(2027, 8, 30), "August bank holiday 2027 (missing without subdiv='ENG')"),
        (date(2027, 12, 27), "Christmas Day 2027 is a Saturday: substitute Monday 27 December"),
        (date(2027, 12, 28), "Boxing Day 2027 is a Sunday: substitute Tuesday 28 December"),
    ],
)
def test_england_and_wales_bank_holidays_2026_27_are_not_working_days(day: date, holiday: str) -> None:
    assert day.weekday() < 5, holiday
    assert not ENGLAND.is_working_day(day), holiday
    assert not ENGLAND.is_working_day_array(as_array(day))[0], holiday


def test_the_days_around_christmas_2026() -> None:
    assert ENGLAND.is_working_day(date(2026, 12, 24))  # Thursday
    assert not ENGLAND.is_working_day(date(2026, 12, 26))  # Saturday (Boxing Day itself)
    assert ENGLAND.is_working_day(date(2026, 12, 29))  # Tuesday
    assert ENGLAND.is_working_day(date(2027, 1, 4))  # Monday: no 2 January holiday in England


def test_scotland_keeps_2_january_and_drops_easter_monday() -> None:
    assert not SCOTLAND.is_working_day(date(2026, 1, 2))  # Friday 2 January 2026
    assert ENGLAND.is_working_day(date(2026, 1, 2))
    assert not SCOTLAND.is_working_day(date(2027, 1, 4))  # 2 January 2027 is a Saturday: substitute
    assert SCOTLAND.is_working_day(date(2027, 3, 29))  # Easter Monday is not a Scottish holiday
    assert not SCOTLAND.is_working_day(date(2027, 8, 2))  # Scotland's summer holiday is early August
    assert SCOTLAND.is_working_day(date(2027, 8, 30))


def test_northern_ireland_has_st_patricks_day() -> None:
    assert not WorkingCalendar("northern-ireland").is_working_day(date(2027, 3, 17))
    assert ENGLAND.is_working_day(date(2027, 3, 17))


def test_unknown_nation_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown nation 'wales'"):
        WorkingCalendar("wales")


def test_weekends_are_not_working_days() -> None:
    assert not ENGLAND.is_working_day(date(2027, 6, 5))  # Saturday
    assert not ENGLAND.is_working_day(date(2027, 6, 6))  # Sunday
    assert ENGLAND.is_working_day(date(2027, 6, 7))  # Monday


class TestAddingWorkingDays:
    """Adding N working days gives the Nth working day after the start (the start is not counted)."""

    @pytest.mark.parametrize(
        ("start", "n", "expected"),
        [
            (date(2027, 6, 5), 1, date(2027, 6, 7)),  # Saturday + 1 = Monday, not Tuesday
            (date(2027, 6, 6), 1, date(2027, 6, 7)),  # Sunday + 1 = Monday
            (date(2027, 6, 4), 1, date(2027, 6, 7)),  # Friday + 1 = Monday
            (date(2027, 6, 7), 1, date(2027, 6, 8)),  # Monday + 1 = Tuesday
            (date(2027, 5, 29), 1, date(2027, 6, 1)),  # Saturday before the spring bank holiday: Tuesday
            (date(2027, 6, 7), 5, date(2027, 6, 14)),  # a working week later
            (date(2027, 6, 7), 0, date(2027, 6, 7)),
            (date(2027, 6, 5), 0, date(2027, 6, 5)),  # 0 days leaves even a Saturday alone
            # Across Christmas and New Year 2026/27: 25, 28 Dec and 1 Jan are holidays.
            (date(2026, 12, 24), 1, date(2026, 12, 29)),
            (date(2026, 12, 24), 3, date(2026, 12, 31)),
            (date(2026, 12, 24), 4, date(2027, 1, 4)),
            (date(2026, 12, 10), 20, date(2027, 1, 12)),  # Dover 6.34: 20 working days
            (date(2026, 12, 22), 10, date(2027, 1, 8)),  # Dover 6.35: 10 working days
            # Across Easter 2027: Good Friday 26 March and Easter Monday 29 March.
            (date(2027, 3, 25), 1, date(2027, 3, 30)),
        ],
    )
    def test_scalar_and_array_forms_agree(self, start: date, n: int, expected: date) -> None:
        assert ENGLAND.add_working_days(start, n) == expected
        assert ENGLAND.add_working_days_array(as_array(start), n)[0] == np.datetime64(expected)

    def test_empty_dates_stay_empty(self) -> None:
        result = ENGLAND.add_working_days_array(as_array(None, date(2027, 6, 5)), 1)
        assert np.isnat(result[0]) and result[1] == np.datetime64("2027-06-07")

    def test_negative_counts_are_refused(self) -> None:
        with pytest.raises(ValueError):
            ENGLAND.add_working_days(date(2027, 6, 7), -1)
        with pytest.raises(ValueError):
            ENGLAND.add_working_days_array(as_array(date(2027, 6, 7)), -1)


class TestNextWorkingDay:
    """A date on a weekend or bank holiday moves past it (Dover 6.21); a working day stays."""

    @pytest.mark.parametrize(
        ("day", "expected"),
        [
            (date(2027, 6, 7), date(2027, 6, 7)),  # Monday stays
            (date(2027, 6, 5), date(2027, 6, 7)),  # Saturday -> Monday
            (date(2027, 5, 30), date(2027, 6, 1)),  # Sunday before the spring bank holiday -> Tuesday
            (date(2026, 12, 25), date(2026, 12, 29)),  # Christmas -> past the Boxing Day substitute
            (date(2027, 1, 1), date(2027, 1, 4)),  # New Year's Day (Friday) -> Monday
            (date(2027, 3, 26), date(2027, 3, 30)),  # Good Friday -> past Easter Monday
        ],
    )
    def test_scalar_and_array_forms_agree(self, day: date, expected: date) -> None:
        assert ENGLAND.next_working_day(day) == expected
        assert ENGLAND.next_working_day_array(as_array(day))[0] == np.datetime64(expected)


def test_array_forms_agree_with_scalar_forms_every_day_of_2026_27() -> None:
    days = [date(2026, 1, 1) + timedelta(days=i) for i in range(730)]
    array = as_array(*days)
    assert ENGLAND.is_working_day_array(array).tolist() == [ENGLAND.is_working_day(d) for d in days]
    assert ENGLAND.next_working_day_array(array).tolist() == [ENGLAND.next_working_day(d) for d in days]
    for n in (1, 2, 10, 20):
        assert ENGLAND.add_working_days_array(array, n).tolist() == [
            ENGLAND.add_working_days(d, n) for d in days
        ]
