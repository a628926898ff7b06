"""The officers' weekly review reminder (deadlines issue), delivered to a real SMTP server."""

from __future__ import annotations

import datetime as dt

from cautionflow.steps import run_reminders
from tests.deployment import FAST, deployment, prepare, text_of
from tests.support import alert_row

MONDAY, TUESDAY = dt.date(2026, 11, 23), dt.date(2026, 11, 24)
OFFICERS, TEAM_B = "officers@example.org", "team-b@example.org"
RECIPIENTS = [
    {"name": "Housing Officers", "email": OFFICERS, "role": "officer"},
    {"name": "Team B", "email": TEAM_B, "role": "officer", "schedule": "weekly", "weekday": "tuesday"},
    {"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor", "areas": ["NORTH"]},
]
SOURCE = [
    # Dover profile: 12 months from effective_from (6.16); a Sunday due date moves to Monday (6.21).
    alert_row(alert_id="OVER", effective_from="2025-11-01", person_name="Olive Overdue", note="NOTE-SECRET-1"),
    alert_row(alert_id="SOON", effective_from="2025-12-10", person_name="Sam Soon", note="NOTE-SECRET-2"),
    alert_row(alert_id="LATER", effective_from="2026-06-01", person_name="Lee Later"),
    alert_row(alert_id="GONE", effective_from="2025-01-01", status="ended", person_name="Gail Gone"),
]


def test_officers_get_the_weekly_reminder_of_reviews_overdue_and_coming_due(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=RECIPIENTS)
    prepare(databases, config, rows=SOURCE, as_of=MONDAY)

    summary = run_reminders(config, as_of=MONDAY, run_id="monday", retry=FAST)

    assert (summary["recipients"], summary["listed"], summary["sent"], summary["pending"]) == (1, 2, 1, 0)
    [message] = mail_server.handler.messages_for(OFFICERS)
    assert message["Subject"] == (
        "Example Homes caution alert reviews, week of 23 November 2026: 1 overdue, 1 due in the next 30 days"
    )
    text = text_of(message.get_body(("plain",)))
    overdue, due_soon = text.split("DUE IN THE NEXT 30 DAYS")
    assert "Olive Overdue" in overdue and "2 November 2026 (21 days overdue)" in overdue
    assert "Sam Soon" in due_soon and "10 December 2026" in due_soon
    assert "Lee Later" not in text and "Gail Gone" not in text  # not due yet; ended
    everything = message.as_string()
    assert "NOTE-SECRET" not in everything  # never the note
    assert mail_server.handler.messages_for(TEAM_B) == []  # Team B's day is Tuesday
    assert mail_server.handler.messages_for("rota@acme.example") == []  # contractors get digests instead

    again = run_reminders(config, as_of=MONDAY, run_id="rerun", retry=FAST)
    assert (again["sent"], again["already_sent"]) == (0, 1)
    assert len(mail_server.handler.received) == 1  # a rerun sends nothing twice


def test_each_officer_on_their_own_weekday(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=RECIPIENTS)
    prepare(databases, config, rows=SOURCE, as_of=TUESDAY)

    summary = run_reminders(config, as_of=TUESDAY, run_id="tuesday", retry=FAST)

    assert summary["recipients"] == 1
    assert [r.recipient for r in mail_server.handler.received] == [TEAM_B]


def test_a_refused_reminder_is_failed_and_a_refused_connection_left_pending(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=RECIPIENTS[:1])
    prepare(databases, config, rows=SOURCE, as_of=MONDAY)
    mail_server.handler.data_replies.extend(["451 4.3.0 try later"] * 10)

    first = run_reminders(config, as_of=MONDAY, run_id="first", retry=FAST)
    assert (first["sent"], first["pending"], first["complete"]) == (0, 1, False)

    mail_server.handler.data_replies.clear()
    second = run_reminders(config, as_of=MONDAY, run_id="second", retry=FAST)
    assert (second["sent"], second["pending"], second["complete"]) == (1, 0, True)
    assert len(mail_server.handler.messages_for(OFFICERS)) == 1
