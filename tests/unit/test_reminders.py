"""Which reviews the officers' weekly reminder lists, and when it goes (pure)."""

from __future__ import annotations

import datetime as dt

from cautionflow.config import Recipient
from cautionflow.domain.reminders import reminder_hash, reminder_is_due, reminder_rows, reminder_subject

MONDAY = dt.date(2026, 11, 23)


def alert(alert_id, review_due, **extra):
    return {"alert_id": alert_id, "alert_code": "VIP", "person_name": "Alex Example", "address": "1 Mill Lane",
            "postcode": "QE1 1AA", "area": "NORTH", "review_due": review_due, **extra}


def test_officers_weekly_on_monday_unless_they_name_a_day():
    officer = Recipient(name="Officers", email="o@example.org", role="officer")
    tuesday = Recipient(name="B", email="b@example.org", role="officer", schedule="weekly", weekday="tuesday")
    contractor = Recipient(name="Acme", email="a@acme.example", role="contractor", areas=("NORTH",))
    assert reminder_is_due(officer, MONDAY) and not reminder_is_due(officer, MONDAY + dt.timedelta(days=1))
    assert reminder_is_due(tuesday, MONDAY + dt.timedelta(days=1)) and not reminder_is_due(tuesday, MONDAY)
    assert not reminder_is_due(contractor, MONDAY)


def test_overdue_and_due_within_30_days_most_overdue_first():
    rows = reminder_rows(
        [
            alert("LATE", dt.date(2026, 12, 24)),  # 31 days away: not yet
            alert("EDGE", dt.date(2026, 12, 23)),  # exactly 30 days: listed
            alert("TODAY", MONDAY),  # due today: not overdue (overdue = strictly after)
            alert("OLD", dt.date(2026, 1, 5)),
            alert("NONE", None),  # no computable date: the All Alerts report shows why
        ],
        MONDAY,
    )
    assert [(r.alert_id, r.days_overdue, r.overdue) for r in rows] == [
        ("OLD", 322, True), ("TODAY", 0, False), ("EDGE", -30, False),
    ]
    assert rows[0].title == "Visit in pairs" and rows[0].address == "1 Mill Lane, QE1 1AA"
    assert reminder_subject("Example Homes", MONDAY, rows) == (
        "Example Homes caution alert reviews, week of 23 November 2026: 1 overdue, 2 due in the next 30 days"
    )


def test_the_same_list_hashes_the_same():
    a = reminder_rows([alert("A", MONDAY)], MONDAY)
    b = reminder_rows([alert("A", MONDAY + dt.timedelta(days=1))], MONDAY)
    assert reminder_hash(a) == reminder_hash(reminder_rows([alert("A", MONDAY)], MONDAY)) != reminder_hash(b)
