"""The appeals register (issue 14, "Appeals register"), on SQLite and PostgreSQL with a real SMTP server.

Appeal answers nobody chased: `appeal_response_due` was stored and never listed. Now the open
appeals (received, not yet decided) go, overdue first, to the recipients with the role `appeals`
(Teign 9: the Head of Service; Wandle 3.10: the director; Dover 6.35: a manager) weekly on their
`weekday`, daily once one is overdue, once a day through the outbox; they are on the register page;
and the deadlines step's `appeals_awaiting_answer` counts open appeals only. Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cautionflow.adapters.register import Register, RegisterError
from cautionflow.clock import FixedClock
from cautionflow.steps import run_appeals, run_deadlines, run_sync
from tests.deployment import FAST, cli, deployment, disclosures, prepare, text_of, write_config
from tests.support import AS_OF, alert_row, write_sqlite_source

MONDAY, TUESDAY = AS_OF, AS_OF + dt.timedelta(days=1)
MANAGER, DIRECTOR, OFFICERS = "appeals.manager@example.org", "director@example.org", "officers@example.org"
RECIPIENTS = [
    {"name": "Appeals Manager", "email": MANAGER, "role": "appeals"},  # Monday, as the officers' reminder
    {"name": "Director", "email": DIRECTOR, "role": "appeals", "weekday": "tuesday"},
    {"name": "Housing Officers", "email": OFFICERS, "role": "officer", "weekday": "sunday"},
]
TOLD = {"effective_from": "2026-10-01", "notified_on": "2026-10-05"}
SOURCE = [
    # Dover 6.35: answered within 10 working days of receipt. Received Friday 6 November 2026: due
    # Friday 20 November, 3 days overdue on Monday 23 November.
    alert_row(alert_id="LATE", person_ref="P1", person_name="Lena Late", appeal_received_on="2026-11-06",
              note="NOTE-SECRET-LATE", **TOLD),
    # Received Friday 20 November: due Friday 4 December, 11 days left on the Monday.
    alert_row(alert_id="SOON", person_ref="P2", person_name="Sam Soon", appeal_received_on="2026-11-20",
              address="5 Mill Lane", note="NOTE-SECRET-SOON", **TOLD),
    # Decided: not awaiting an answer any more.
    alert_row(alert_id="DECIDED", person_ref="P3", person_name="Dee Decided", appeal_received_on="2026-11-02",
              appeal_decided_on="2026-11-12", appeal_outcome="dismissed", **TOLD),
    # An ended alert restricts nobody; no deadline is stored for it.
    alert_row(alert_id="ENDED", person_ref="P4", person_name="Ed Ended", status="ended",
              appeal_received_on="2026-11-10", **TOLD),
    alert_row(alert_id="NONE", person_ref="P5", person_name="Nora None", **TOLD),
]


def test_the_deadlines_step_counts_open_appeals_only(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=RECIPIENTS)
    databases.write_source(SOURCE)
    run_sync(config, as_of=MONDAY, run_id="sync")

    summary = run_deadlines(config, as_of=MONDAY, run_id="deadlines")

    # LATE and SOON; DECIDED has a stored answer date but was answered on 12 November.
    assert summary["appeals_awaiting_answer"] == 2
    # On 5 November, before LATE was received, only DECIDED was open.
    assert run_deadlines(config, as_of=dt.date(2026, 11, 5), run_id="past")["appeals_awaiting_answer"] == 1


def test_the_list_goes_overdue_first_to_the_appeals_recipients_once_a_day(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=RECIPIENTS)
    prepare(databases, config, rows=SOURCE, as_of=MONDAY)

    summary = run_appeals(config, as_of=MONDAY, run_id="monday", retry=FAST)

    # The manager's day is Monday; the director's is Tuesday, but LATE is overdue: daily for everyone.
    assert {k: summary[k] for k in ("open", "overdue", "recipients", "sent", "pending", "complete")} == {
        "open": 2, "overdue": 1, "recipients": 2, "sent": 2, "pending": 0, "complete": True}
    assert [(x["alert_id"], x["due_on"], x["days_left"]) for x in summary["appeals"]] == [
        ("LATE", "2026-11-20", -3), ("SOON", "2026-12-04", 11)]
    assert "Lena Late" not in json.dumps(summary)  # the summary (XCom, task log) has ids, not names
    [message] = mail_server.handler.messages_for(MANAGER)
    assert message["Subject"] == "Example Homes appeals awaiting an answer, 23 November 2026: 2 open, 1 overdue"
    text = text_of(message.get_body(("plain",)))
    overdue, waiting = text.split("AWAITING AN ANSWER")
    assert "OVERDUE" in overdue and "Lena Late" in overdue
    assert "due 20 November 2026 (3 days overdue), received 6 November 2026" in overdue
    assert "Sam Soon" in waiting and "due 4 December 2026 (11 days left)" in waiting
    assert "5 Mill Lane" in waiting and "alert SOON" in waiting
    html = text_of(message.get_body(("html",)))
    assert html.index("Lena Late") < html.index("Sam Soon")
    for other in ("Dee Decided", "Ed Ended", "Nora None"):
        assert other not in text and other not in html
    assert "NOTE-SECRET" not in message.as_string()  # never the note (minimum disclosure)
    assert len(mail_server.handler.messages_for(DIRECTOR)) == 1
    assert mail_server.handler.messages_for(OFFICERS) == []  # officers get the review reminder instead
    # The disclosure log: which alert went to whom, as the officers' reminder records it.
    told = {(d["alert_id"], d["recipient_email"], d["kind"], d["recipient_role"], d["listed_as"])
            for d in disclosures(databases)}
    assert told == {(a, r, "appeals", "appeals", "current") for a in ("LATE", "SOON") for r in (MANAGER, DIRECTOR)}

    # A rerun of the day sends nothing.
    again = run_appeals(config, as_of=MONDAY, run_id="rerun", retry=FAST)
    assert (again["sent"], again["already_sent"], again["queued"]) == (0, 2, 0)

    # Later that day the manager records the decision and the register syncs again: LATE leaves the
    # list (and with nothing overdue the director's list is weekly again), but the manager has had
    # the day's list, so gets no second one today.
    databases.write_source([{**SOURCE[0], "appeal_decided_on": "2026-11-23", "appeal_outcome": "dismissed"},
                            *SOURCE[1:]])
    run_sync(config, as_of=MONDAY, run_id="sync-again")
    run_deadlines(config, as_of=MONDAY, run_id="deadlines-again")
    changed = run_appeals(config, as_of=MONDAY, run_id="after-the-decision", retry=FAST)
    assert {k: changed[k] for k in ("open", "overdue", "recipients", "queued", "sent", "already_sent")} == {
        "open": 1, "overdue": 0, "recipients": 1, "queued": 0, "sent": 0, "already_sent": 1}
    assert len(mail_server.handler.received) == 2

    # Tuesday: nothing is overdue, so only the director, whose weekday it is, gets the list.
    tuesday = run_appeals(config, as_of=TUESDAY, run_id="tuesday", retry=FAST)
    assert (tuesday["open"], tuesday["overdue"], tuesday["recipients"], tuesday["sent"]) == (1, 0, 1, 1)
    director = mail_server.handler.messages_for(DIRECTOR)
    assert len(director) == 2 and len(mail_server.handler.messages_for(MANAGER)) == 1
    assert director[-1]["Subject"].endswith("24 November 2026: 1 open, 0 overdue")
    assert "Lena Late" not in text_of(director[-1].get_body(("plain",)))


def test_weekly_when_nothing_is_overdue(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=RECIPIENTS)
    prepare(databases, config, rows=SOURCE[1:], as_of=MONDAY)  # SOON only: 11 days left

    summary = run_appeals(config, as_of=MONDAY, run_id="monday", retry=FAST)

    assert (summary["open"], summary["overdue"], summary["recipients"], summary["sent"]) == (1, 0, 1, 1)
    assert [r.recipient for r in mail_server.handler.received] == [MANAGER]


def test_refused_on_a_stale_register(databases, tmp_path, mail_server):
    synced_at = dt.datetime(2026, 11, 23, 5, 40, tzinfo=dt.UTC)
    config = deployment(databases, tmp_path, mail_server.port, recipients=RECIPIENTS)
    databases.write_source(SOURCE)
    run_sync(config, as_of=MONDAY, run_id="sync", clock=FixedClock(synced_at))
    run_deadlines(config, as_of=MONDAY, run_id="deadlines")

    # LATE may have been answered since: a list from a register 37 hours old would chase it.
    with pytest.raises(RegisterError, match=r"^appeals list not sent: .* 37 hours ago"):
        run_appeals(config, as_of=TUESDAY, run_id="appeals", retry=FAST,
                    clock=FixedClock(synced_at + dt.timedelta(hours=37)))
    assert mail_server.handler.received == []


def test_cautionflow_run_appeals_prints_its_summary_last(tmp_path, mail_server, capsys):
    write_sqlite_source(tmp_path / "housing.db", SOURCE)
    path = write_config({
        "organisation": "Example Homes", "policy": "dover", "register_url": f"sqlite:///{tmp_path / 'register.db'}",
        "source": {"url": f"sqlite:///{tmp_path / 'housing.db'}"}, "output_dir": str(tmp_path / "reports"),
        "smtp": {"host": "127.0.0.1", "port": mail_server.port, "security": "none",
                 "sender": "Example Homes <alerts@example.org>"},
        "recipients": RECIPIENTS,
    }, tmp_path)
    for step in ("sync", "deadlines"):
        assert cli(capsys, "run", step, "--config", path, "--as-of", MONDAY.isoformat())[0] == 0

    code, out = cli(capsys, "run", "appeals", "--config", path, "--as-of", MONDAY.isoformat())

    assert code == 0
    summary = json.loads(out.strip().splitlines()[-1])
    assert (summary["step"], summary["open"], summary["overdue"], summary["sent"]) == ("appeals", 2, 1, 2)
    code, out = cli(capsys, "run", "appeals", "--config", path, "--as-of", MONDAY.isoformat())
    again = json.loads(out.strip().splitlines()[-1])
    assert (code, again["sent"], again["already_sent"]) == (0, 0, 2)
    assert len(mail_server.handler.received) == 2  # the rerun sent nothing


def test_the_register_page_shows_the_open_appeals_overdue_first(databases, tmp_path, mail_server):
    from cautionflow.services.register_page import register_page
    from cautionflow.steps.wiring import renderer
    from tests.support import REPO

    config = deployment(databases, tmp_path, mail_server.port, recipients=RECIPIENTS)
    prepare(databases, config, rows=SOURCE, as_of=MONDAY)

    with Register(config.register_url) as register:
        page = register_page(register)

    assert [(x.alert_id, x.days_left) for x in page.open_appeals] == [("LATE", -3), ("SOON", 11)]
    assert page.appeals_overdue == 1
    html = renderer(config)("web/_appeals.html", page=page)
    assert html.index("Lena Late") < html.index("Sam Soon")
    assert 'id="appeals-overdue-count">1<' in html and "3 days overdue" in html and "11 days left" in html
    assert "Dee Decided" not in html and "Ed Ended" not in html and "NOTE-SECRET" not in html
    # The page includes the section.
    assert '{% include "web/_appeals.html" %}' in (REPO / "include/templates/web/register_page.html").read_text()


def test_cautionflow_run_appeals_on_a_mistyped_register_is_one_line_and_creates_nothing(tmp_path, mail_server,
                                                                                        capsys):
    from cautionflow.cli import main

    write_sqlite_source(tmp_path / "housing.db", SOURCE)
    path = write_config({
        "organisation": "Example Homes", "policy": "dover",
        "register_url": f"sqlite:///{tmp_path / 'var' / 'regsiter.db'}",  # the typo: no register there
        "source": {"url": f"sqlite:///{tmp_path / 'housing.db'}"},
        "smtp": {"host": "127.0.0.1", "port": mail_server.port, "security": "none", "sender": "alerts@example.org"},
        "recipients": RECIPIENTS,
    }, tmp_path)

    code = main(["run", "appeals", "--config", path, "--as-of", MONDAY.isoformat()])

    [line] = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "appeals list not sent: register not found: " in line
    assert not (tmp_path / "var").exists() and mail_server.handler.received == []
