"""The vectorised engine agrees with the per-row reference on any register, however messy."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cautionflow.domain.calendar import WorkingCalendar
from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.deadlines import (
    DATE_OUTPUTS,
    INPUT_COLUMNS,
    AlertDeadlines,
    compute_deadlines,
    deadlines_for_alert,
)
from cautionflow.profiles import load_profile, shipped_profiles

PROFILES = {name: load_profile(name) for name in shipped_profiles()}

days = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))
# Dates cluster near month ends and holidays often enough to matter; hypothesis also shrinks to them.
edge_days = st.sampled_from([
    date(2024, 2, 29), date(2025, 1, 31), date(2025, 8, 31), date(2025, 12, 25), date(2025, 12, 27),
    date(2026, 12, 26), date(2026, 12, 31), date(2027, 3, 26), date(2027, 5, 30),
])
any_day = st.one_of(days, edge_days)
garbage = st.one_of(
    st.sampled_from(["2025-02-30", "31/12/2025", "yesterday", "2025-13-01", "2025-1-5", "1899-12-31",
                     "NaN", "None", "2025-01-01T00:00", "٢٠٢٥-٠١-٠١", "2025_01_01"]),
    st.text(max_size=12),
    st.integers(min_value=-5, max_value=30_000_000),
)
date_value = st.one_of(
    st.none(),
    st.sampled_from(["", "  ", float("nan"), pd.NaT, np.datetime64("NaT")]),
    any_day.map(date.isoformat),
    any_day.map(lambda d: f" {d.isoformat()}\t"),
    any_day,
    any_day.map(lambda d: datetime(d.year, d.month, d.day, 13, 45)),
    any_day.map(lambda d: np.datetime64(d, "D")),
    any_day.map(pd.Timestamp),
    garbage,
)
code_value = st.one_of(
    st.sampled_from(sorted(ALERT_CODES)),
    st.sampled_from(["dnv", " VIP ", "", "XYZ", "HAZARD", None, float("nan")]),
    st.text(max_size=5),
    st.integers(0, 3),
)
alert = st.fixed_dictionaries({
    "alert_code": code_value,
    # effective_from is mostly a good date, so most rows reach the date arithmetic
    "effective_from": st.one_of(any_day.map(date.isoformat), any_day, date_value),
    "last_reviewed_on": st.one_of(st.none(), st.just(""), any_day.map(date.isoformat), date_value),
    "ends_on": st.one_of(st.none(), st.just(""), any_day.map(date.isoformat), date_value),
    "notified_on": st.one_of(st.none(), any_day.map(date.isoformat), date_value),
    "appeal_received_on": st.one_of(st.none(), any_day.map(date.isoformat), date_value),
})


bad_text = st.sampled_from(["31/12/2025", "2025-02-30"])


def from_frame(result: pd.DataFrame) -> list[AlertDeadlines]:
    """The engine's rows as AlertDeadlines (NaT -> None), to compare with the reference."""
    columns = {n: [None if pd.isna(v) else v.date() for v in result[n]] for n in DATE_OUTPUTS}
    columns["overdue"] = [bool(v) for v in result["overdue"]]
    columns["error"] = list(result["error"])
    rows = zip(*columns.values(), strict=True)
    return [AlertDeadlines(**dict(zip(columns, row, strict=True))) for row in rows]


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    profile_name=st.sampled_from(sorted(PROFILES)),
    alerts=st.lists(alert, min_size=1, max_size=25),
    as_of=st.dates(min_value=date(2020, 1, 1), max_value=date(2032, 12, 31)),
)
def test_vectorised_engine_agrees_with_the_reference(
    profile_name: str, alerts: list[dict[str, Any]], as_of: date
) -> None:
    profile = PROFILES[profile_name]
    calendar = WorkingCalendar(profile.calendar)
    expected = [deadlines_for_alert(profile, calendar, as_of=as_of, **a) for a in alerts]
    frame = pd.DataFrame({c: pd.Series([a[c] for a in alerts], dtype=object) for c in INPUT_COLUMNS})
    assert from_frame(compute_deadlines(frame, profile, as_of)) == expected


@settings(max_examples=50, deadline=None)
@given(
    profile_name=st.sampled_from(sorted(PROFILES)),
    alerts=st.lists(
        st.fixed_dictionaries({
            "alert_code": st.sampled_from([*sorted(ALERT_CODES), "XYZ"]),
            **{c: st.one_of(st.just(""), any_day.map(date.isoformat), bad_text)
               for c in INPUT_COLUMNS[1:]},
        }),
        min_size=1, max_size=25,
    ),
    as_of=days,
)
def test_agrees_on_text_columns_as_read_from_a_csv(
    profile_name: str, alerts: list[dict[str, Any]], as_of: date
) -> None:
    # read_csv(dtype=str) gives pandas' string dtype, not object: the CLI's path
    profile = PROFILES[profile_name]
    calendar = WorkingCalendar(profile.calendar)
    expected = [deadlines_for_alert(profile, calendar, as_of=as_of, **a) for a in alerts]
    frame = pd.DataFrame({c: pd.Series([a[c] for a in alerts], dtype=str) for c in INPUT_COLUMNS})
    assert from_frame(compute_deadlines(frame, profile, as_of)) == expected


@settings(max_examples=30, deadline=None)
@given(
    profile_name=st.sampled_from(sorted(PROFILES)),
    alerts=st.lists(
        st.fixed_dictionaries({
            "alert_code": st.sampled_from([*sorted(ALERT_CODES), "XYZ"]),
            **{c: st.one_of(st.none(), any_day) for c in INPUT_COLUMNS[1:]},
        }),
        min_size=1, max_size=25,
    ),
    as_of=days,
    unit=st.sampled_from(["ns", "s", "D"]),
)
def test_agrees_on_datetime64_columns(
    profile_name: str, alerts: list[dict[str, Any]], as_of: date, unit: str
) -> None:
    # a frame straight from a database driver or pd.to_datetime: whole datetime64 columns
    profile = PROFILES[profile_name]
    calendar = WorkingCalendar(profile.calendar)
    expected = [deadlines_for_alert(profile, calendar, as_of=as_of, **a) for a in alerts]
    frame = pd.DataFrame({
        "alert_code": [a["alert_code"] for a in alerts],
        **{c: np.array([a[c] for a in alerts], dtype=f"datetime64[{unit}]") for c in INPUT_COLUMNS[1:]},
    })
    assert from_frame(compute_deadlines(frame, profile, as_of)) == expected
