"""The appeals register's rules (issue 14): when an appeal is open, when its answer is due, the order
the list is read in, and on which days it goes to the senior officers who answer appeals."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

import holidays
import pandas as pd
import pytest

from cautionflow.domain.appeals import (
    appeal_is_open,
    appeals_hash,
    appeals_list_is_due,
    appeals_subject,
    open_appeals,
)
from cautionflow.domain.calendar import WorkingCalendar
from cautionflow.domain.deadlines import INPUT_COLUMNS, compute_deadlines, deadlines_for_alert
from cautionflow.profiles import load_profile

MONDAY = date(2026, 11, 23)


def response_due(policy: str, received: str) -> date:
    """The answer's due date by both deadline implementations (the per-row reference and the
    vectorised engine the deadlines step stores), which must agree."""
    profile = load_profile(policy)
    row = dict.fromkeys(INPUT_COLUMNS) | {"alert_code": "VIP", "effective_from": "2026-01-05",
                                          "appeal_received_on": received}
    reference = deadlines_for_alert(profile, WorkingCalendar(profile.calendar), as_of=MONDAY, **row)
    frame = pd.DataFrame({c: pd.Series([row[c]], dtype=object) for c in INPUT_COLUMNS})
    stored = compute_deadlines(frame, profile, MONDAY)["appeal_response_due"].iloc[0]
    assert (None if pd.isna(stored) else pd.Timestamp(stored).date()) == reference.appeal_response_due
    return reference.appeal_response_due


class TestTheAnswersDueDate:
    def test_dover_friday_before_a_bank_holiday_monday_is_due_on_the_tenth_working_day(self) -> None:
        # Dover 6.35: "respond to appeals in writing within 10 working days of receipt of the appeal".
        # Received Friday 22 May 2026; Monday 25 May is the Spring bank holiday (England), so the ten
        # working days are 26-29 May and 1-5 June and 8 June: due Monday 8 June, not Friday 5 June.
        england = holidays.country_holidays("GB", subdiv="ENG", years=2026)
        assert date(2026, 5, 25) in england and date(2026, 5, 22).weekday() == 4
        assert response_due("dover", "2026-05-22") == date(2026, 6, 8)

    def test_dover_august_bank_holiday_as_well(self) -> None:
        # Dover 6.35: Friday 28 August 2026, Monday 31 August is the Summer bank holiday (England).
        assert date(2026, 8, 31) in holidays.country_holidays("GB", subdiv="ENG", years=2026)
        assert response_due("dover", "2026-08-28") == date(2026, 9, 14)

    @pytest.mark.parametrize("policy", ["teign", "wandle"])
    def test_teign_and_wandle_answer_within_28_calendar_days(self, policy: str) -> None:
        # Teign 9: "correspond back to the customer within 28 days of receiving the appeal";
        # Wandle 3.10: "respond to any request for a review within 28 days of the request being
        # received". Calendar days: the bank holiday Monday does not move it.
        assert response_due(policy, "2026-05-22") == date(2026, 6, 19)

    @pytest.mark.parametrize("policy", ["hexagon", "karbon"])
    def test_policies_that_set_no_answer_window_give_no_due_date(self, policy: str) -> None:
        assert response_due(policy, "2026-05-22") is None


def appeal(alert_id: str, received: date | None, decided: date | None = None, due: date | None = None,
           **extra: Any) -> dict[str, Any]:
    return {
        "alert_id": alert_id, "alert_code": "VIP", "person_name": f"Person {alert_id}", "address": "1 Mill Lane",
        "postcode": "EW1 2AB", "area": "NORTH", "appeal_received_on": received, "appeal_decided_on": decided,
        "appeal_response_due": due, **extra,
    }


class TestWhichAppealsAreOpen:
    def test_open_from_receipt_until_decided(self) -> None:
        received = date(2026, 11, 10)
        assert not appeal_is_open(None, None, MONDAY)  # no appeal
        assert appeal_is_open(received, None, MONDAY)  # awaiting an answer
        assert not appeal_is_open(received, date(2026, 11, 20), MONDAY)  # decided: leaves the list
        assert appeal_is_open(received, MONDAY + timedelta(days=1), MONDAY)  # decided after the as-of day
        assert not appeal_is_open(MONDAY + timedelta(days=1), None, MONDAY)  # not received yet that day
        assert not appeal_is_open(received, MONDAY, MONDAY)  # decided today: answered

    def test_a_decision_dated_before_the_appeal_does_not_close_it(self) -> None:
        # Not this appeal's answer (a second appeal over a decided first one, or a typing error):
        # chased rather than forgotten.
        assert appeal_is_open(date(2026, 11, 10), date(2026, 10, 1), MONDAY)

    def test_a_decided_appeal_leaves_the_open_list(self) -> None:
        rows = [appeal("A1", date(2026, 11, 10), due=date(2026, 11, 24)),
                appeal("A2", date(2026, 11, 2), decided=date(2026, 11, 12), due=date(2026, 11, 16))]
        assert [x.alert_id for x in open_appeals(rows, MONDAY)] == ["A1"]
        rows[0]["appeal_decided_on"] = date(2026, 11, 23)
        assert open_appeals(rows, MONDAY) == ()


class TestTheList:
    ROWS = [
        appeal("SOON", date(2026, 11, 20), due=date(2026, 12, 4)),  # 11 days left
        appeal("NODATE", date(2026, 11, 1)),  # no answer window in the policy, or a row error
        appeal("LATE", date(2026, 11, 6), due=date(2026, 11, 20)),  # 3 days overdue
        appeal("LATER", date(2026, 10, 1), due=date(2026, 10, 15)),  # 39 days overdue
        appeal("TODAY", date(2026, 11, 9), due=MONDAY),  # due today: not yet overdue
        appeal("CLOSED", date(2026, 11, 1), decided=date(2026, 11, 5), due=date(2026, 11, 13)),
    ]

    def test_overdue_first_most_overdue_first_then_soonest_due_then_undated(self) -> None:
        found = open_appeals(self.ROWS, MONDAY)
        assert [x.alert_id for x in found] == ["LATER", "LATE", "TODAY", "SOON", "NODATE"]
        assert [(x.days_left, x.overdue) for x in found] == [
            (-39, True), (-3, True), (0, False), (11, False), (None, False)]
        assert found[0].days_overdue == 39 and found[2].days_overdue == 0

    def test_each_appeal_names_the_alert_and_person_never_the_note(self) -> None:
        rows = [appeal("LATE", date(2026, 11, 6), due=date(2026, 11, 20), note="NOTE-SECRET", dq_flags="x")]
        [found] = open_appeals(rows, MONDAY)
        assert (found.title, found.person_name, found.address) == ("Visit in pairs", "Person LATE", "1 Mill Lane, EW1 2AB")
        assert "NOTE-SECRET" not in repr(found)  # OpenAppeal has no field for it

    def test_subject_and_content_hash(self) -> None:
        found = open_appeals(self.ROWS, MONDAY)
        assert appeals_subject("Example Homes", MONDAY, found) == (
            "Example Homes appeals awaiting an answer, 23 November 2026: 5 open, 2 overdue")
        # The days left change every day, the content does not: the outbox key holds the day.
        assert appeals_hash(open_appeals(self.ROWS, MONDAY + timedelta(days=1))) == appeals_hash(found)
        assert appeals_hash(found[1:]) != appeals_hash(found)


@dataclass
class Recipient:
    role: str
    weekday: tuple[str, ...] | None = None


class TestWhenTheListGoes:
    NOT_OVERDUE = open_appeals([appeal("SOON", date(2026, 11, 20), due=date(2026, 12, 4))], MONDAY)
    OVERDUE = open_appeals([appeal("LATE", date(2026, 11, 6), due=date(2026, 11, 20))], MONDAY)

    def test_weekly_on_monday_unless_the_config_names_days(self) -> None:
        tuesday = MONDAY + timedelta(days=1)
        assert appeals_list_is_due(Recipient("appeals"), MONDAY, self.NOT_OVERDUE)
        assert not appeals_list_is_due(Recipient("appeals"), tuesday, self.NOT_OVERDUE)
        assert appeals_list_is_due(Recipient("appeals", ("tuesday",)), tuesday, self.NOT_OVERDUE)
        assert not appeals_list_is_due(Recipient("appeals", ("tuesday",)), MONDAY, self.NOT_OVERDUE)
        assert appeals_list_is_due(Recipient("appeals"), MONDAY, ())  # "none open" is news too

    def test_daily_once_any_appeal_is_overdue(self) -> None:
        for offset in range(7):
            assert appeals_list_is_due(Recipient("appeals"), MONDAY + timedelta(days=offset), self.OVERDUE)

    @pytest.mark.parametrize("role", ["officer", "contractor", "out_of_hours", "operations"])
    def test_only_to_the_appeals_role(self, role: str) -> None:
        assert not appeals_list_is_due(Recipient(role), MONDAY, self.OVERDUE)
