"""When each alert must be reviewed, when it expires, and the appeal deadlines.

Two implementations of the same rules, which must agree on every input:

- `deadlines_for_alert`: one alert at a time, written to read like the policies. It is the
  reference, and what to read to understand a date.
- `compute_deadlines`: the whole register at once with numpy datetime64[D] arithmetic, for
  the million-row runs. Tests check it against the reference on random alerts.

The rules (profile values come from `cautionflow.domain.policy.PolicyProfile`):

- base = last_reviewed_on if present, else effective_from.
- expires_on = ends_on if given, else base + the default duration, else none (open-ended).
- ends_on before base, more than the maximum duration after base, or less than the minimum
  after it, is an error (Wandle 3.7, Dover 6.16).
- review_due = base + the review interval for the code (Karbon 8.1: DNV monthly), or
  expires_on when that is earlier; moved to the next working day if the profile says so
  (Dover 6.21). expires_on never moves.
- review_window_opens = review_due minus the profile's lead days.
- appeal_deadline = notified_on + the appeal window; appeal_response_due = appeal_received_on
  + the answer window, in calendar or working days (Teign 9, Wandle 3.10, Dover 6.34-6.35).
- Adding months keeps the day of the month, or takes the month's last day when it has no
  such day (31 Jan + 1 month = 28 Feb).
- overdue = the as-of date is after review_due.
- An unknown or missing code, a missing effective_from, a date that is not a real
  YYYY-MM-DD date (or falls outside 1900-2099), or a duration error gives the row an
  `error` and no dates; every other row is still computed.
"""

from __future__ import annotations

import calendar as _gregorian
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import cache
from typing import Any

import numpy as np
import pandas as pd

from cautionflow.domain.calendar import WorkingCalendar
from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.policy import DayCount, PolicyProfile

DATE_FIELDS: tuple[str, ...] = (
    "effective_from", "last_reviewed_on", "ends_on", "notified_on", "appeal_received_on",
)
INPUT_COLUMNS: tuple[str, ...] = ("alert_code", *DATE_FIELDS)
DATE_OUTPUTS: tuple[str, ...] = (
    "review_due", "review_window_opens", "expires_on", "appeal_deadline", "appeal_response_due",
)
OUTPUT_COLUMNS: tuple[str, ...] = (*DATE_OUTPUTS, "overdue", "error")

# Dates outside these bounds are rejected rather than guessed at; the working calendar holds
# bank holidays for every date that can be computed from dates inside them.
EARLIEST_DATE = date(1900, 1, 1)
LATEST_DATE = date(2099, 12, 31)

_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_ASCII_SPACE = " \t\r\n\x0b\x0c"
_NAT = np.datetime64("NaT", "D")
_RANGE = f"{EARLIEST_DATE.isoformat()} to {LATEST_DATE.isoformat()}"


@dataclass(frozen=True, slots=True)
class AlertDeadlines:
    """One alert's dates; all None (and `error` set) when its data could not be used."""

    review_due: date | None = None
    review_window_opens: date | None = None
    expires_on: date | None = None
    appeal_deadline: date | None = None
    appeal_response_due: date | None = None
    overdue: bool = False
    error: str | None = None


# --- Reading one value. Both implementations use these, so they cannot disagree on input. ---


def _is_missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, str):
        return not value.strip(_ASCII_SPACE)
    try:
        return bool(pd.isna(value))
    except (TypeError, ValueError):
        return False


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:37] + "...")


def read_date(value: Any) -> tuple[date | None, str | None]:
    """(day, None); (None, None) when empty; (None, problem) when the value is not a usable date.

    Strings must be exactly YYYY-MM-DD (surrounding spaces ignored): "31/12/2025" is rejected
    rather than guessed, because a day/month mix-up would move a safety review by months.
    """
    if _is_missing(value):
        return None, None
    if isinstance(value, str):
        text = value.strip(_ASCII_SPACE)
        if not _ISO_DATE.fullmatch(text):
            return None, f"{_shown(text)} is not a date written YYYY-MM-DD"
        try:
            day = date(int(text[:4]), int(text[5:7]), int(text[8:10]))
        except ValueError:
            return None, f"{_shown(text)} is not a real date"
    elif isinstance(value, datetime):  # includes pandas.Timestamp: the time of day is dropped
        day = value.date()
    elif isinstance(value, date):
        day = value
    elif isinstance(value, np.datetime64):
        as_day = value.astype("datetime64[D]")
        if not np.datetime64(EARLIEST_DATE, "D") <= as_day <= np.datetime64(LATEST_DATE, "D"):
            return None, f"{np.datetime_as_string(as_day)} is outside the supported range {_RANGE}"
        day = as_day.astype(object)
    else:
        return None, "value is not a date"
    if not EARLIEST_DATE <= day <= LATEST_DATE:
        return None, f"{day.isoformat()} is outside the supported range {_RANGE}"
    return day, None


def read_alert_code(value: Any) -> tuple[str | None, str | None]:
    """(code, None) for a known code (case and spaces ignored), else (None, problem)."""
    if _is_missing(value):
        return None, "missing"
    if not isinstance(value, str):
        return None, "value is not an alert code"
    code = value.strip().upper()
    if code not in ALERT_CODES:
        return None, f"unknown code {_shown(value.strip())}"
    return code, None


def _read_field(field: str, value: Any) -> tuple[date | None, str]:
    """A date field's value and its error text ('' when fine); effective_from is required."""
    day, problem = read_date(value)
    if problem is None and day is None and field == "effective_from":
        problem = "missing"
    return day, (f"{field}: {problem}" if problem else "")


# --- The reference: one alert, read like the policy. ---


def add_months(day: date, months: int) -> date:
    """Same day of the month, or the month's last day when it is shorter (31 Jan + 1 = 28 Feb)."""
    years, month_index = divmod(day.month - 1 + months, 12)
    year, month = day.year + years, month_index + 1
    return date(year, month, min(day.day, _gregorian.monthrange(year, month)[1]))


def _period_after(start: date | None, period: DayCount | None, calendar: WorkingCalendar) -> date | None:
    if start is None or period is None:
        return None
    if period.kind == "working":
        return calendar.add_working_days(start, period.days)
    return start + timedelta(days=period.days)


def _duration_problem(profile: PolicyProfile, base: date, base_field: str, ends_on: date) -> str:
    shortest, longest = profile.duration.min_months, profile.duration.max_months
    if ends_on < base:
        return f"ends_on: {ends_on} is before {base_field} {base}"
    if longest is not None and ends_on > add_months(base, longest):
        return f"ends_on: {ends_on} is more than {longest} months after {base_field} {base}"
    if shortest is not None and ends_on < add_months(base, shortest):
        return f"ends_on: {ends_on} is less than {shortest} months after {base_field} {base}"
    return ""


def deadlines_for_alert(
    profile: PolicyProfile,
    calendar: WorkingCalendar,
    *,
    alert_code: Any,
    effective_from: Any,
    last_reviewed_on: Any = None,
    ends_on: Any = None,
    notified_on: Any = None,
    appeal_received_on: Any = None,
    as_of: date,
) -> AlertDeadlines:
    """One alert's deadlines under `profile`. Dates may be ISO strings, dates, datetime64 or empty."""
    code, code_problem = read_alert_code(alert_code)
    problems = [f"alert_code: {code_problem}"] if code_problem else []
    given = {
        "effective_from": effective_from, "last_reviewed_on": last_reviewed_on, "ends_on": ends_on,
        "notified_on": notified_on, "appeal_received_on": appeal_received_on,
    }
    day: dict[str, date | None] = {}
    for field in DATE_FIELDS:
        day[field], problem = _read_field(field, given[field])
        if problem:
            problems.append(problem)

    base_field = "last_reviewed_on" if day["last_reviewed_on"] else "effective_from"
    base = day[base_field]
    ends = day["ends_on"]
    if base is not None and ends is not None:
        problem = _duration_problem(profile, base, base_field, ends)
        if problem:
            problems.append(problem)
    if problems:
        return AlertDeadlines(error="; ".join(problems))
    assert base is not None and code is not None  # a missing one is a problem above

    if ends is not None:
        expires_on = ends
    elif profile.duration.default_months is not None:
        expires_on = add_months(base, profile.duration.default_months)
    else:
        expires_on = None  # open-ended: it lasts until a review removes it

    review_due = add_months(base, profile.review.interval_for(code))
    if expires_on is not None and expires_on < review_due:
        review_due = expires_on  # review before it lapses (Hexagon 5.9, Dover 6.18)
    if profile.review.on_non_working_day == "next_working_day":
        review_due = calendar.next_working_day(review_due)  # Dover 6.21

    return AlertDeadlines(
        review_due=review_due,
        review_window_opens=review_due - timedelta(days=profile.review.window_opens_days_before),
        expires_on=expires_on,
        appeal_deadline=_period_after(day["notified_on"], profile.appeal.lodge_within, calendar),
        appeal_response_due=_period_after(day["appeal_received_on"], profile.appeal.answer_within, calendar),
        overdue=as_of > review_due,
    )


# --- The vectorised engine: the same rules over whole columns. ---


@dataclass(frozen=True, slots=True)
class _CivilDates:
    """datetime64[D] split into year, month and day integer arrays (0001-01-01 where NaT)."""

    year: np.ndarray
    month: np.ndarray
    day: np.ndarray
    missing: np.ndarray

    @classmethod
    def split(cls, days: np.ndarray) -> _CivilDates:
        # Howard Hinnant's civil_from_days: whole-array integer arithmetic, far faster than
        # numpy's datetime64[D] -> datetime64[M] conversion.
        days = np.asarray(days, dtype="datetime64[D]")
        missing = np.isnat(days)
        z = np.where(missing, 0, days.view(np.int64)) + 719468
        era = z // 146097
        doe = z - era * 146097
        yoe = (doe - doe // 1460 + doe // 36524 - doe // 146096) // 365
        doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
        mp = (5 * doy + 2) // 153
        month = np.where(mp < 10, mp + 3, mp - 9)
        year = yoe + era * 400 + (month <= 2)
        return cls(year, month, doy - (153 * mp + 2) // 5 + 1, missing)

    def subset(self, rows: np.ndarray) -> _CivilDates:
        return _CivilDates(self.year[rows], self.month[rows], self.day[rows], self.missing[rows])

    def add_months(self, months: np.ndarray | int) -> np.ndarray:
        """Same day of the month, clamped to the target month's last day; NaT stays NaT."""
        total = self.year * 12 + (self.month - 1) + months
        year, month = total // 12, total % 12 + 1
        leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
        month_length = _MONTH_LENGTHS[month] + ((month == 2) & leap)
        result = _days_from_civil(year, month, np.minimum(self.day, month_length))
        return np.where(self.missing, _NAT, result)


_MONTH_LENGTHS = np.array([0, 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31], dtype=np.int64)


def _days_from_civil(year: np.ndarray, month: np.ndarray, day: np.ndarray) -> np.ndarray:
    year = year - (month <= 2)
    era = year // 400
    yoe = year - era * 400
    doy = (153 * np.where(month > 2, month - 3, month + 9) + 2) // 5 + day - 1
    doe = yoe * 365 + yoe // 4 - yoe // 100 + doy
    return (era * 146097 + doe - 719468).view("datetime64[D]")


def add_months_array(days: np.ndarray, months: np.ndarray | int) -> np.ndarray:
    """`add_months` over datetime64[D] with year/month/day arithmetic; NaT stays NaT."""
    return _CivilDates.split(days).add_months(months)


def _column_values(column: pd.Series) -> np.ndarray:
    if isinstance(column.dtype, pd.DatetimeTZDtype):
        column = column.dt.tz_localize(None)  # keep the local date, as Timestamp.date() does
    return column.to_numpy()


@dataclass(frozen=True, slots=True)
class _ReadColumn:
    """An input column read once per distinct value (a register has a few thousand distinct
    dates, not a million) and spread back to the rows by index.
    """

    values: np.ndarray  # per row: the date (NaT when empty or bad), or the review interval for codes
    bad: np.ndarray  # per row: the value has a problem
    index: np.ndarray  # per row: which distinct value; -1 (an empty cell) picks the last entry
    problems: np.ndarray  # per distinct value, then empty: the error text, "" when fine

    def problems_at(self, rows: np.ndarray) -> np.ndarray:
        return self.problems[self.index[rows]]


_UNIX_EPOCH_ORDINAL = date(1970, 1, 1).toordinal()
_ISO_DIGITS = [0, 1, 2, 3, 5, 6, 8, 9]  # positions of the digits in YYYY-MM-DD


def _plain_iso_dates(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(ok, days) for the values that are exactly YYYY-MM-DD text of a real date in range.

    A fast path over many distinct values at once; it accepts only what `read_date` accepts
    and gives the same day, and leaves everything else (even " 2025-01-01") to `read_date`.
    """
    ok = np.zeros(values.size, dtype=bool)
    days = np.full(values.size, np.datetime64("NaT", "D"))
    is_text = np.fromiter((type(v) is str and len(v) == 10 for v in values), bool, count=values.size)
    if not is_text.any():
        return ok, days
    text = np.array(values[is_text].tolist(), dtype="<U10")
    chars = text.view(np.uint32).reshape(-1, 10).astype(np.int64)
    digits = chars[:, _ISO_DIGITS] - ord("0")
    dashes = (chars[:, 4] == ord("-")) & (chars[:, 7] == ord("-"))
    shaped = ((digits >= 0) & (digits <= 9)).all(axis=1) & dashes
    digits = np.where(shaped[:, None], digits, 0)
    year = digits[:, 0] * 1000 + digits[:, 1] * 100 + digits[:, 2] * 10 + digits[:, 3]
    month = digits[:, 4] * 10 + digits[:, 5]
    day = digits[:, 6] * 10 + digits[:, 7]
    leap = (year % 4 == 0) & ((year % 100 != 0) | (year % 400 == 0))
    valid_month = (month >= 1) & (month <= 12)
    length = _MONTH_LENGTHS[np.where(valid_month, month, 1)] + ((month == 2) & leap)
    real = shaped & valid_month & (day >= 1) & (day <= length)
    in_range = (year >= EARLIEST_DATE.year) & (year <= LATEST_DATE.year)
    good = real & in_range
    where = np.flatnonzero(is_text)[good]
    ok[where] = True
    days[where] = _days_from_civil(year[good], month[good], day[good])
    return ok, days


def _read_date_column(field: str, column: pd.Series) -> _ReadColumn:
    index, distinct = pd.factorize(_column_values(column))
    if distinct.dtype != object:  # a datetime64 column: keep its values as numpy datetime64
        distinct = np.array(list(distinct), dtype=object)
    ok, days = _plain_iso_dates(distinct)
    problems = np.full(distinct.size + 1, "", dtype=object)
    for at in np.flatnonzero(~ok):  # anything unusual: the reference reader, value by value
        day, problems[at] = _read_field(field, distinct[at])
        if day is not None:
            days[at] = np.datetime64(day.toordinal() - _UNIX_EPOCH_ORDINAL, "D")
    days = np.append(days, np.datetime64("NaT", "D"))  # index -1, an empty cell, picks this
    problems[-1] = _read_field(field, None)[1]
    bad = problems != ""
    return _ReadColumn(days[index], bad[index], index, problems)


def _read_code_column(column: pd.Series, profile: PolicyProfile) -> _ReadColumn:
    index, distinct = pd.factorize(_column_values(column))
    read = [read_alert_code(value) for value in distinct]
    read.append(read_alert_code(None))
    interval = np.array([profile.review.interval_for(c) if c else 0 for c, _ in read], dtype=np.int64)
    bad = np.array([p is not None for _, p in read], dtype=bool)
    problems = np.array([f"alert_code: {p}" if p else "" for _, p in read], dtype=object)
    return _ReadColumn(interval[index], bad[index], index, problems)


def _period_after_array(
    starts: np.ndarray, period: DayCount | None, calendar: WorkingCalendar
) -> np.ndarray:
    if period is None:
        return np.full(starts.shape, _NAT)
    if period.kind == "working":
        return calendar.add_working_days_array(starts, period.days)
    return starts + np.timedelta64(period.days, "D")


def iso_text(days: np.ndarray) -> np.ndarray:
    """ISO text (object array, '' for NaT) of datetime64[D] days, by table lookup: a register
    has a few thousand distinct dates, and formatting a million one by one is slow.
    """
    days = np.asarray(days, dtype="datetime64[D]")
    table, first = _iso_table()
    offset = (days - first).view(np.int64)  # NaT becomes the most negative integer
    inside = (offset >= 0) & (offset < table.size - 1)
    text = table[np.where(inside, offset, -1)]  # the table's last entry is ''
    outside = ~inside & ~np.isnat(days)
    if outside.any():
        text[outside] = np.datetime_as_string(days[outside], unit="D").astype(object)
    return text


@cache
def _iso_table() -> tuple[np.ndarray, np.datetime64]:
    first = np.datetime64("1890-01-01", "D")  # every date the engine can produce, and margin
    days = np.arange(first, np.datetime64("2121-01-01", "D"))
    return np.append(np.datetime_as_string(days, unit="D").astype(object), ""), first


def _join_problems(parts: list[np.ndarray]) -> np.ndarray:
    """Row-wise "; ".join of the non-empty texts in `parts` (object arrays of equal length)."""
    joined = parts[0]
    for part in parts[1:]:
        separator = np.where((joined != "") & (part != ""), "; ", "").astype(object)
        joined = joined + separator + part
    return joined


def compute_deadline_arrays(
    frame: pd.DataFrame, profile: PolicyProfile, as_of: date, *, calendar: WorkingCalendar | None = None
) -> dict[str, np.ndarray]:
    """The engine: OUTPUT_COLUMNS as numpy arrays (datetime64[D], bool, object) in row order."""
    missing = [c for c in INPUT_COLUMNS if c not in frame.columns]
    if missing:
        raise ValueError(f"missing column(s): {', '.join(missing)}")
    calendar = calendar or WorkingCalendar(profile.calendar)
    n = len(frame)

    columns = [_read_code_column(frame["alert_code"], profile)]
    columns += [_read_date_column(field, frame[field]) for field in DATE_FIELDS]
    interval = columns[0].values  # months to the next review, by code (Karbon 8.1)
    day = {field: column.values for field, column in zip(DATE_FIELDS, columns[1:], strict=True)}
    bad = np.logical_or.reduce([column.bad for column in columns])

    reviewed = ~np.isnat(day["last_reviewed_on"])
    base = np.where(reviewed, day["last_reviewed_on"], day["effective_from"])
    civil_base = _CivilDates.split(base)  # split once, then add any number of months
    ends = day["ends_on"]

    # Duration errors (Wandle 3.7, Dover 6.16), in the reference's order of precedence; only
    # rows with an end date can have one.
    shortest, longest = profile.duration.min_months, profile.duration.max_months
    too_early, too_long, too_short = (np.zeros(n, dtype=bool) for _ in range(3))
    checked = np.flatnonzero(~np.isnat(base) & ~np.isnat(ends))
    if checked.size:
        civil, end = civil_base.subset(checked), ends[checked]
        early = end < base[checked]
        never = np.zeros_like(early)
        long_ = ~early & (end > civil.add_months(longest)) if longest is not None else never
        short = ~early & ~long_ & (end < civil.add_months(shortest)) if shortest is not None else never
        too_early[checked], too_long[checked], too_short[checked] = early, long_, short
    duration_bad = too_early | too_long | too_short
    bad |= duration_bad

    error = np.full(n, None, dtype=object)
    if bad.any():
        rows = np.flatnonzero(bad)
        duration_problem = np.full(rows.size, "", dtype=object)
        sub = np.flatnonzero(duration_bad[rows])
        if sub.size:
            at = rows[sub]
            base_field = np.where(reviewed[at], "last_reviewed_on", "effective_from").astype(object)
            how = np.select(
                [too_early[at], too_long[at]],
                [" is before ", f" is more than {longest} months after "],
                f" is less than {shortest} months after ",
            ).astype(object)
            duration_problem[sub] = (
                "ends_on: " + iso_text(ends[at]) + how + base_field + " " + iso_text(base[at]))
        error[rows] = _join_problems([column.problems_at(rows) for column in columns] + [duration_problem])

    usual = profile.review.interval_months
    base_plus_usual = civil_base.add_months(usual)
    default = profile.duration.default_months
    if default is None:
        expires_on = ends  # open-ended unless an end date is given
    else:
        base_plus_default = base_plus_usual if default == usual else civil_base.add_months(default)
        expires_on = np.where(~np.isnat(ends), ends, base_plus_default)

    review_due = base_plus_usual.copy()
    override = np.flatnonzero((interval != usual) & (interval > 0))  # 0: an unknown code (an error)
    if override.size:  # Karbon 8.1: 'do not visit' monthly
        review_due[override] = civil_base.subset(override).add_months(interval[override])
    lapses_first = ~np.isnat(expires_on) & (expires_on < review_due)
    review_due = np.where(lapses_first, expires_on, review_due)
    if profile.review.on_non_working_day == "next_working_day":
        review_due = calendar.next_working_day_array(review_due)  # Dover 6.21

    result = {
        "review_due": review_due,
        "review_window_opens": review_due - np.timedelta64(profile.review.window_opens_days_before, "D"),
        "expires_on": expires_on,
        "appeal_deadline": _period_after_array(day["notified_on"], profile.appeal.lodge_within, calendar),
        "appeal_response_due": _period_after_array(
            day["appeal_received_on"], profile.appeal.answer_within, calendar),
    }
    for name in DATE_OUTPUTS:
        result[name] = np.where(bad, _NAT, result[name])
    result["overdue"] = ~bad & (review_due < np.datetime64(as_of, "D"))
    result["error"] = error
    return result


def compute_deadlines(
    frame: pd.DataFrame, profile: PolicyProfile, as_of: date, *, calendar: WorkingCalendar | None = None
) -> pd.DataFrame:
    """Deadlines for every row of `frame` (one profile; group mixed registers by profile).

    Input columns: alert_code and the DATE_FIELDS, holding ISO strings, dates, datetime64 or
    empties. Output: OUTPUT_COLUMNS with the same index; dates are datetime64 (NaT when empty).
    """
    arrays = compute_deadline_arrays(frame, profile, as_of, calendar=calendar)
    columns: dict[str, Any] = {name: arrays[name] for name in (*DATE_OUTPUTS, "overdue")}
    # object dtype keeps None for "no error" (pandas 3 would otherwise infer str and use NaN)
    columns["error"] = pd.Series(arrays["error"], index=frame.index, dtype=object)
    return pd.DataFrame(columns, index=frame.index)
