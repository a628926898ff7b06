"""Deadlines per landlord, each case checked on both the per-row reference and the vectorised engine."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

import numpy as np
import pandas as pd
import pytest

from cautionflow.domain.calendar import WorkingCalendar
from cautionflow.domain.deadlines import (
    DATE_OUTPUTS,
    INPUT_COLUMNS,
    OUTPUT_COLUMNS,
    AlertDeadlines,
    add_months,
    add_months_array,
    compute_deadlines,
    deadlines_for_alert,
    iso_text,
)
from cautionflow.profiles import load_profile

# "Today" for these rules' worked examples, alerts from early 2025: some reviews already due, some not.
JUNE_2025 = date(2025, 6, 1)
EMPTY: dict[str, Any] = dict.fromkeys(INPUT_COLUMNS)


def from_frame(result: pd.DataFrame) -> list[AlertDeadlines]:
    """The engine's rows as AlertDeadlines (NaT -> None), to compare with the reference."""
    columns = {n: [None if pd.isna(v) else v.date() for v in result[n]] for n in DATE_OUTPUTS}
    columns["overdue"] = [bool(v) for v in result["overdue"]]
    columns["error"] = list(result["error"])
    rows = zip(*columns.values(), strict=True)
    return [AlertDeadlines(**dict(zip(columns, row, strict=True))) for row in rows]


def both(profile_name: str, rows: list[dict[str, Any]], as_of: date = JUNE_2025) -> list[AlertDeadlines]:
    """Run both implementations on `rows`; they must agree, and the shared answer is returned."""
    profile = load_profile(profile_name)
    calendar = WorkingCalendar(profile.calendar)
    rows = [{**EMPTY, **row} for row in rows]
    reference = [deadlines_for_alert(profile, calendar, as_of=as_of, **row) for row in rows]
    frame = pd.DataFrame({c: pd.Series([r[c] for r in rows], dtype=object) for c in INPUT_COLUMNS})
    vectorised = from_frame(compute_deadlines(frame, profile, as_of))
    assert vectorised == reference
    return reference


def one(profile_name: str, as_of: date = JUNE_2025, **alert: Any) -> AlertDeadlines:
    alert.setdefault("alert_code", "VIP")
    return both(profile_name, [alert], as_of)[0]


class TestAddingMonths:
    @pytest.mark.parametrize(
        ("start", "months", "expected"),
        [
            (date(2025, 1, 31), 1, date(2025, 2, 28)),  # February has no 31st: its last day
            (date(2024, 1, 31), 1, date(2024, 2, 29)),  # leap year
            (date(2024, 2, 29), 12, date(2025, 2, 28)),  # 29 February + a year
            (date(2025, 8, 31), 6, date(2026, 2, 28)),
            (date(2025, 3, 31), 1, date(2025, 4, 30)),
            (date(2025, 12, 15), 1, date(2026, 1, 15)),  # across the year end
            (date(2025, 1, 15), 18, date(2026, 7, 15)),
            (date(2025, 1, 28), 1, date(2025, 2, 28)),
        ],
    )
    def test_same_day_of_the_month_or_the_months_last_day(
        self, start: date, months: int, expected: date
    ) -> None:
        assert add_months(start, months) == expected
        as_array = np.array([start], dtype="datetime64[D]")
        assert add_months_array(as_array, months)[0] == np.datetime64(expected)


class TestHexagon:
    """Hexagon: 12-month alerts (5.8), reviewed ahead of expiry (5.9), removed after 12 months (5.10)."""

    def test_a_new_alert_lasts_12_months_and_is_reviewed_by_then(self) -> None:
        # Hexagon 5.8, 5.9
        assert one("hexagon", effective_from="2025-04-10") == AlertDeadlines(
            review_due=date(2026, 4, 10), review_window_opens=date(2026, 3, 11), expires_on=date(2026, 4, 10))

    def test_a_shorter_alert_is_reviewed_before_it_lapses(self) -> None:
        # Hexagon 5.8: "we may choose to add the alert for a shorter period"
        result = one("hexagon", effective_from="2025-04-10", ends_on="2025-10-10")
        assert (result.review_due, result.expires_on) == (date(2025, 10, 10), date(2025, 10, 10))
        assert result.review_window_opens == date(2025, 9, 10)

    def test_more_than_12_months_is_an_error(self) -> None:
        # Hexagon 5.10: removed after the initial 12 months unless renewed
        assert one("hexagon", effective_from="2025-04-10", ends_on="2026-04-11").error == (
            "ends_on: 2026-04-11 is more than 12 months after effective_from 2025-04-10")
        assert one("hexagon", effective_from="2025-04-10", ends_on="2026-04-10").error is None

    def test_a_review_renews_the_12_months_from_the_review_date(self) -> None:
        # Hexagon 5.9: the review decides whether the alert is renewed
        result = one("hexagon", effective_from="2024-04-10", last_reviewed_on="2025-04-01")
        assert (result.review_due, result.expires_on) == (date(2026, 4, 1), date(2026, 4, 1))

    def test_review_dates_on_weekends_and_bank_holidays_stay_put(self) -> None:
        # Hexagon sets no rule for non-working days, so 31 August 2026 (bank holiday) stays
        assert one("hexagon", effective_from="2025-08-31").review_due == date(2026, 8, 31)
        assert one("hexagon", effective_from="2025-04-11").review_due == date(2026, 4, 11)  # Saturday

    def test_no_appeal_deadlines_are_set(self) -> None:
        # Hexagon 5.3 offers an appeal but sets no time limits
        result = one("hexagon", effective_from="2025-04-10", notified_on="2025-04-11",
                     appeal_received_on="2025-04-20")
        assert (result.appeal_deadline, result.appeal_response_due) == (None, None)


class TestKarbon:
    """Karbon 8.1: reviewed every 6 months; 'do not visit' monthly; entries are open-ended."""

    def test_every_6_months_and_open_ended(self) -> None:
        assert one("karbon", effective_from="2025-01-31") == AlertDeadlines(
            review_due=date(2025, 7, 31), review_window_opens=date(2025, 7, 17), expires_on=None)

    def test_do_not_visit_is_reviewed_monthly_landing_on_the_last_day_of_february(self) -> None:
        # Karbon 8.1; 31 January + 1 month = 28 February (29 in a leap year)
        assert one("karbon", alert_code="DNV", effective_from="2025-01-31").review_due == date(2025, 2, 28)
        assert one("karbon", alert_code="DNV", effective_from="2024-01-31").review_due == date(2024, 2, 29)
        assert one("karbon", alert_code="DNV", effective_from="2025-02-28").review_due == date(2025, 3, 28)

    def test_codes_are_read_without_regard_to_case_or_spaces(self) -> None:
        assert one("karbon", alert_code=" dnv ", effective_from="2025-01-31").review_due == date(2025, 2, 28)

    def test_six_months_from_31_august_is_28_february(self) -> None:
        assert one("karbon", effective_from="2025-08-31").review_due == date(2026, 2, 28)

    def test_an_end_date_before_the_review_brings_the_review_forward(self) -> None:
        result = one("karbon", effective_from="2025-01-10", ends_on="2025-03-01")
        assert (result.review_due, result.expires_on) == (date(2025, 3, 1), date(2025, 3, 1))


class TestTeign:
    """Teign: annual reviews (8, Appendix F report) and 28-day appeals (9)."""

    @pytest.mark.parametrize(
        ("effective_from", "latest_review", "review_due"),
        [  # rows of the Appendix F "All Alerts" report
            ("2019-11-29", "2023-03-31", date(2024, 3, 31)),
            ("2021-01-19", "2023-03-21", date(2024, 3, 21)),
            ("2022-02-16", "2023-02-17", date(2024, 2, 17)),
            ("2022-08-31", None, date(2023, 8, 31)),
            ("2022-10-27", None, date(2023, 10, 27)),
        ],
    )
    def test_review_due_matches_the_appendix_f_report(
        self, effective_from: str, latest_review: str | None, review_due: date
    ) -> None:
        result = one("teign", effective_from=effective_from, last_reviewed_on=latest_review,
                     as_of=date(2023, 4, 1))
        assert result.review_due == review_due
        assert result.expires_on is None  # Teign 8: removed when the risk reduces, no fixed end

    def test_29_february_plus_a_year_is_28_february(self) -> None:
        assert one("teign", effective_from="2024-02-29").review_due == date(2025, 2, 28)

    def test_overdue_only_after_the_due_date(self) -> None:
        # Appendix F "Overdue" column: the due date itself is not overdue
        alert = {"effective_from": "2022-08-31"}
        assert one("teign", as_of=date(2023, 8, 31), **alert).overdue is False
        assert one("teign", as_of=date(2023, 9, 1), **alert).overdue is True

    def test_appeals_count_28_calendar_days_straight_through_christmas(self) -> None:
        # Teign 9: appeal "within 28 days" of notification, answered "within 28 days" of receipt
        result = one("teign", effective_from="2026-12-01", notified_on="2026-12-10",
                     appeal_received_on="2026-12-20")
        assert result.appeal_deadline == date(2027, 1, 7)
        assert result.appeal_response_due == date(2027, 1, 17)  # a Sunday: calendar days do not move

    def test_no_appeal_dates_without_the_dates_they_count_from(self) -> None:
        result = one("teign", effective_from="2026-12-01")
        assert (result.appeal_deadline, result.appeal_response_due) == (None, None)


class TestWandle:
    """Wandle: up to 18 months per determination (3.7), reviewed within 12 (3.9),
    appeals answered within 28 days (3.10)."""

    def test_an_18_month_restriction_is_still_reviewed_after_12_months(self) -> None:
        # Wandle 3.7, 3.9
        result = one("wandle", effective_from="2025-01-15", ends_on="2026-07-15")
        assert (result.review_due, result.expires_on) == (date(2026, 1, 15), date(2026, 7, 15))
        assert result.error is None

    def test_longer_than_18_months_is_an_error(self) -> None:
        # Wandle 3.7: "no longer than 18 months per determination"
        assert one("wandle", effective_from="2025-01-15", ends_on="2026-07-16").error == (
            "ends_on: 2026-07-16 is more than 18 months after effective_from 2025-01-15")

    def test_without_an_end_date_it_lasts_12_months(self) -> None:
        assert one("wandle", effective_from="2025-01-15").expires_on == date(2026, 1, 15)

    def test_the_director_answers_an_appeal_within_28_days_and_no_lodging_deadline_is_set(self) -> None:
        # Wandle 3.10
        result = one("wandle", effective_from="2026-01-05", notified_on="2026-01-06",
                     appeal_received_on="2026-03-02")
        assert (result.appeal_deadline, result.appeal_response_due) == (None, date(2026, 3, 30))

    def test_an_end_date_before_the_start_is_an_error(self) -> None:
        assert one("wandle", effective_from="2025-01-15", ends_on="2025-01-14").error == (
            "ends_on: 2025-01-14 is before effective_from 2025-01-15")

    def test_an_extension_is_measured_from_the_review(self) -> None:
        # Wandle 3.9: a review may extend the period; 18 months from the review is allowed
        result = one("wandle", effective_from="2024-01-15", last_reviewed_on="2025-01-10",
                     ends_on="2026-07-10")
        assert (result.review_due, result.expires_on) == (date(2026, 1, 10), date(2026, 7, 10))


class TestDover:
    """Dover: 6-12 month restrictions (6.16), review dates moved past weekends and bank holidays
    (6.21), appeals within 20 working days (6.34), answered within 10 working days (6.35)."""

    def test_a_review_falling_on_the_sunday_before_a_bank_holiday_moves_to_tuesday(self) -> None:
        # Dover 6.21: 30 May 2027 is a Sunday, 31 May the spring bank holiday
        assert one("dover", effective_from="2026-05-30") == AlertDeadlines(
            review_due=date(2027, 6, 1),
            review_window_opens=date(2027, 5, 22),  # 10 days before the moved date
            expires_on=date(2027, 5, 30),  # the restriction itself still ends on the Sunday
        )

    @pytest.mark.parametrize(
        ("effective_from", "review_due"),
        [
            ("2025-12-25", date(2026, 12, 29)),  # Christmas Day 2026, then the Boxing Day substitute
            ("2025-12-26", date(2026, 12, 29)),  # Boxing Day 2026 is a Saturday
            ("2025-12-27", date(2026, 12, 29)),  # Sunday 27 December 2026
            ("2026-01-01", date(2027, 1, 4)),  # New Year's Day 2027 is a Friday
            ("2026-03-26", date(2027, 3, 30)),  # Good Friday 2027, then Easter Monday
            ("2026-03-29", date(2027, 3, 30)),  # Easter Monday 2027
            ("2026-12-29", date(2027, 12, 29)),  # a Wednesday: stays
        ],
    )
    def test_review_dates_on_christmas_new_year_and_easter_move_to_the_next_working_day(
        self, effective_from: str, review_due: date
    ) -> None:
        # Dover 6.21
        assert one("dover", effective_from=effective_from).review_due == review_due

    @pytest.mark.parametrize(
        ("ends_on", "error"),
        [
            ("2026-11-30", None),  # 6 months: the shortest allowed (6.16)
            ("2027-05-30", None),  # 12 months: the longest allowed (6.16)
            ("2026-11-29", "ends_on: 2026-11-29 is less than 6 months after effective_from 2026-05-30"),
            ("2027-05-31", "ends_on: 2027-05-31 is more than 12 months after effective_from 2026-05-30"),
        ],
    )
    def test_restrictions_last_between_6_and_12_months(self, ends_on: str, error: str | None) -> None:
        # Dover 6.16
        assert one("dover", effective_from="2026-05-30", ends_on=ends_on).error == error

    def test_a_six_month_restriction_is_reviewed_at_its_end(self) -> None:
        # Dover 6.18: reviewed at the end of the period
        result = one("dover", effective_from="2026-05-30", ends_on="2026-11-30")
        assert (result.review_due, result.expires_on) == (date(2026, 11, 30), date(2026, 11, 30))

    def test_appeal_within_20_working_days_across_christmas(self) -> None:
        # Dover 6.34: 25 and 28 December 2026 and 1 January 2027 are not working days
        result = one("dover", effective_from="2026-12-10", notified_on="2026-12-10")
        assert result.appeal_deadline == date(2027, 1, 12)

    def test_appeal_answered_within_10_working_days_across_christmas(self) -> None:
        # Dover 6.35
        result = one("dover", effective_from="2026-12-10", appeal_received_on="2026-12-22")
        assert result.appeal_response_due == date(2027, 1, 8)

    def test_working_days_from_a_saturday_start_on_monday_and_skip_easter(self) -> None:
        # Dover 6.34: notified on Saturday 20 March 2027; Good Friday and Easter Monday do not count
        result = one("dover", effective_from="2027-03-20", notified_on="2027-03-20")
        assert result.appeal_deadline == date(2027, 4, 20)


class TestRowErrors:
    """A row that cannot be read gets an error and no dates; the other rows are still computed."""

    @pytest.mark.parametrize(
        ("alert", "error"),
        [
            ({"alert_code": "XYZ"}, "alert_code: unknown code 'XYZ'"),
            ({"alert_code": ""}, "alert_code: missing"),
            ({"alert_code": None}, "alert_code: missing"),
            ({"effective_from": None}, "effective_from: missing"),
            ({"effective_from": ""}, "effective_from: missing"),
            ({"effective_from": "2025-02-30"}, "effective_from: '2025-02-30' is not a real date"),
            ({"effective_from": "2025-13-01"}, "effective_from: '2025-13-01' is not a real date"),
            ({"effective_from": "31/12/2025"},
             "effective_from: '31/12/2025' is not a date written YYYY-MM-DD"),
            ({"effective_from": "yesterday"}, "effective_from: 'yesterday' is not a date written YYYY-MM-DD"),
            ({"effective_from": "2025-1-5"}, "effective_from: '2025-1-5' is not a date written YYYY-MM-DD"),
            ({"effective_from": "1899-12-31"},
             "effective_from: 1899-12-31 is outside the supported range 1900-01-01 to 2099-12-31"),
            ({"effective_from": 20250101}, "effective_from: value is not a date"),
            ({"last_reviewed_on": "2025-04-31"}, "last_reviewed_on: '2025-04-31' is not a real date"),
            ({"notified_on": "soon"}, "notified_on: 'soon' is not a date written YYYY-MM-DD"),
            ({"appeal_received_on": "n/a"}, "appeal_received_on: 'n/a' is not a date written YYYY-MM-DD"),
            ({"ends_on": "2025-03-31"}, "ends_on: 2025-03-31 is before effective_from 2025-04-01"),
            ({"last_reviewed_on": "2025-05-01", "ends_on": "2025-04-30"},
             "ends_on: 2025-04-30 is before last_reviewed_on 2025-05-01"),
            ({"alert_code": "ZZZ", "effective_from": "yesterday", "ends_on": "2025-02-30"},
             "alert_code: unknown code 'ZZZ'; effective_from: 'yesterday' is not a date written YYYY-MM-DD; "
             "ends_on: '2025-02-30' is not a real date"),
            ({"alert_code": "ZZZ", "ends_on": "2026-05-01"},
             "alert_code: unknown code 'ZZZ'; "
             "ends_on: 2026-05-01 is more than 12 months after effective_from 2025-04-01"),
        ],
    )
    def test_the_error_says_which_field_and_why_and_the_dates_are_empty(
        self, alert: dict[str, Any], error: str
    ) -> None:
        result = one("hexagon", **{"alert_code": "VIP", "effective_from": "2025-04-01", **alert})
        assert result == AlertDeadlines(error=error)

    def test_the_other_rows_are_still_computed(self) -> None:
        results = both("dover", [
            {"alert_code": "VIP", "effective_from": "2026-05-30"},
            {"alert_code": "XYZ", "effective_from": "2026-05-30"},
            {"alert_code": "CM", "effective_from": "31/12/2025"},
            {"alert_code": "DNV", "effective_from": "2026-01-01"},
        ])
        assert [r.review_due for r in results] == [date(2027, 6, 1), None, None, date(2027, 1, 4)]
        assert [r.error is None for r in results] == [True, False, False, True]

    def test_long_garbage_is_shortened_in_the_message(self) -> None:
        result = one("hexagon", effective_from="x" * 100)
        assert result.error == f"effective_from: '{'x' * 37}...' is not a date written YYYY-MM-DD"


class TestInputForms:
    """Dates may arrive as ISO text, Python dates, datetime64 or pandas timestamps; empties in any form."""

    EXPECTED = AlertDeadlines(review_due=date(2027, 6, 1), review_window_opens=date(2027, 5, 22),
                              expires_on=date(2027, 5, 30), appeal_deadline=date(2027, 1, 12))

    @pytest.mark.parametrize(
        ("effective_from", "notified_on", "empty"),
        [
            ("2026-05-30", "2026-12-10", ""),
            (" 2026-05-30 ", "2026-12-10\t", "  "),
            (date(2026, 5, 30), date(2026, 12, 10), None),
            (datetime(2026, 5, 30, 14, 30), datetime(2026, 12, 10, 9), float("nan")),
            (pd.Timestamp("2026-05-30"), pd.Timestamp("2026-12-10 23:59"), pd.NaT),
            (np.datetime64("2026-05-30"), np.datetime64("2026-12-10T08:00"), np.datetime64("NaT")),
        ],
    )
    def test_every_form_gives_the_same_dates(self, effective_from: Any, notified_on: Any, empty: Any) -> None:
        result = one("dover", as_of=date(2026, 6, 1), effective_from=effective_from, notified_on=notified_on,
                     last_reviewed_on=empty, ends_on=empty, appeal_received_on=empty)
        assert result == self.EXPECTED

    def test_datetime64_and_string_columns(self) -> None:
        profile = load_profile("dover")
        frame = pd.DataFrame({
            "alert_code": ["VIP", "CM"],
            "effective_from": pd.to_datetime(["2026-05-30", "2025-12-25"]),
            "last_reviewed_on": pd.Series([pd.NaT, pd.NaT], dtype="datetime64[ns]"),
            "ends_on": ["", ""],
            "notified_on": pd.to_datetime(["2026-12-10", None]),
            "appeal_received_on": [None, None],
        })
        result = from_frame(compute_deadlines(frame, profile, date(2026, 6, 1)))
        assert result[0] == self.EXPECTED
        assert result[1].review_due == date(2026, 12, 29)

    @pytest.mark.parametrize("unit", ["ns", "us", "s", "D"])
    def test_datetime64_columns_of_any_unit_and_time_zone_aware_ones(self, unit: str) -> None:
        profile = load_profile("dover")
        frame = pd.DataFrame({
            "alert_code": ["VIP", "VIP", "VIP"],
            "effective_from": np.array(["2026-05-30T23:30", "2026-05-30", "NaT"], dtype=f"datetime64[{unit}]"),
            "last_reviewed_on": np.array(["NaT"] * 3, dtype=f"datetime64[{unit}]"),
            "ends_on": [None, None, None],
            "notified_on": pd.DatetimeIndex(["2026-12-10 08:00", "2026-12-10 23:59", None]).tz_localize(
                "Europe/London"),
            "appeal_received_on": [np.nan] * 3,
        })
        result = from_frame(compute_deadlines(frame, profile, date(2026, 6, 1)))
        assert result[:2] == [self.EXPECTED, self.EXPECTED]  # the time of day is dropped
        assert result[2].error == "effective_from: missing"
        # the reference agrees whichever way a row is read out of the frame
        calendar = WorkingCalendar(profile.calendar)
        for row, expected in zip(frame.to_dict("records"), result, strict=True):
            assert deadlines_for_alert(profile, calendar, as_of=date(2026, 6, 1), **row) == expected
        for i, expected in enumerate(result):
            row = {c: frame[c].to_numpy()[i] for c in INPUT_COLUMNS}
            assert deadlines_for_alert(profile, calendar, as_of=date(2026, 6, 1), **row) == expected


class TestTheFrame:
    def test_keeps_the_index_and_order_and_has_the_output_columns(self) -> None:
        frame = pd.DataFrame(
            {**{c: ["", ""] for c in INPUT_COLUMNS}, "alert_code": ["VIP", "DNV"],
             "effective_from": ["2025-03-01", "2025-01-31"]},
            index=[42, 7],
        )
        result = compute_deadlines(frame, load_profile("karbon"), JUNE_2025)
        assert list(result.columns) == list(OUTPUT_COLUMNS)
        assert list(result.index) == [42, 7]
        assert list(result["review_due"]) == [pd.Timestamp("2025-09-01"), pd.Timestamp("2025-02-28")]
        assert result["overdue"].tolist() == [False, True]
        assert result["error"].tolist() == [None, None]

    def test_an_empty_frame_gives_an_empty_result(self) -> None:
        frame = pd.DataFrame({c: pd.Series([], dtype=object) for c in INPUT_COLUMNS})
        result = compute_deadlines(frame, load_profile("dover"), JUNE_2025)
        assert len(result) == 0 and list(result.columns) == list(OUTPUT_COLUMNS)

    def test_a_missing_column_is_refused(self) -> None:
        frame = pd.DataFrame({"alert_code": ["VIP"], "effective_from": ["2025-01-01"]})
        with pytest.raises(ValueError, match="missing column"):
            compute_deadlines(frame, load_profile("dover"), JUNE_2025)

    def test_a_whole_register_of_errors_is_still_a_result(self) -> None:
        results = both("teign", [{"alert_code": "???", "effective_from": "?"}] * 3)
        assert all(r.error for r in results)


def test_iso_text_formats_dates_and_leaves_empty_ones_blank() -> None:
    days = np.array(["2026-12-28", "NaT", "1899-12-31", "2300-01-01"], dtype="datetime64[D]")
    assert iso_text(days).tolist() == ["2026-12-28", "", "1899-12-31", "2300-01-01"]
