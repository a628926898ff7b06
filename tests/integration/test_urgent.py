"""Urgent notices within the hour (issue 15): the `urgent` step syncs the register and tells the
contractors of the area and the out-of-hours call handlers of an urgent code added or escalated,
through the outbox, exactly once, on SQLite and PostgreSQL against a real SMTP server.

Dover 6.23: a threatened person is warned at once. Karbon 6.3, Hexagon 1.2: staff check for
warnings before every visit, so a warning recorded at 10:00 cannot wait for tomorrow's digest.
Karbon 7.1-7.3, Dover 6.31: the same minimum disclosure as the digests (a contractor never sees the
name or the note). Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json

from cautionflow.steps import run_deadlines, run_digests, run_sync, run_urgent
from tests.deployment import (
    ACME,
    FAST,
    MOMENT,
    NIGHT_DESK,
    OFFICERS,
    SOURCE,
    SOUTHSIDE,
    WEEKLY,
    command_config,
    deployment,
    disclosures,
    outbox_rows,
    text_of,
    write_config,
)
from tests.support import AS_OF, alert_row, write_sqlite_source

NORTH_WPN = alert_row(alert_id="N9", alert_code="WPN", area="NORTH", address="3 Heron Way", postcode="EW1 9ZZ",
                      person_ref="P0009", person_name="Nina Ninefold", note="NOTE-SECRET-N9 knife seen")
REFUSED = "550 5.1.1 <{}>: Mailbox unavailable"


class Ticking:
    """A clock that moves a second each time it is read: every step sees time pass, in order."""

    def __init__(self, start: dt.datetime = MOMENT) -> None:
        self.seconds = itertools.count()
        self.start = start

    def __call__(self) -> dt.datetime:
        return self.start + dt.timedelta(seconds=next(self.seconds))


def urgent_sent(mail_server, email):
    return [m for m in mail_server.handler.messages_for(email) if m["X-Cautionflow-Kind"] == "urgent"]


def day_one_with_digests(databases, config, clock):
    """Day 1: the register synced (its first sync), deadlines computed, the digests sent."""
    databases.write_source(SOURCE)
    run_sync(config, as_of=AS_OF, run_id="sync-day1", clock=clock)
    run_deadlines(config, as_of=AS_OF, run_id="deadlines-day1")
    digests = run_digests(config, as_of=AS_OF, run_id="digests-day1", retry=FAST, clock=clock)
    assert digests["sent"] == 3


def urgent(config, clock, run_id):
    return run_urgent(config, as_of=AS_OF, run_id=run_id, retry=FAST, clock=clock)


def with_code(rows, alert_id, code):
    return [{**r, "alert_code": code} if r["alert_id"] == alert_id else r for r in rows]


def test_an_urgent_code_added_in_north_reaches_its_contractors_and_the_call_handlers_once(
    databases, tmp_path, mail_server,
):
    """Dover 6.23, Karbon 6.3, Hexagon 1.2, Karbon 7.1-7.3."""
    clock = Ticking()
    config = deployment(databases, tmp_path, mail_server.port, digests={"duty_contact": {
        "name": "Duty housing manager", "phone": "01632 960999"}})
    day_one_with_digests(databases, config, clock)

    rows = [*SOURCE, NORTH_WPN]
    databases.write_source(rows)
    first = urgent(config, clock, "urgent-1")

    assert first["sync"]["inserted"] == 1
    assert (first["changes"], first["notices"], first["sent"], first["failed"], first["pending"]) == (1, 3, 3, 0, 0)
    # NORTH's contractors (Weekly Windows has had no digest yet: it is told too) and the call handlers.
    for email in (ACME, WEEKLY, NIGHT_DESK):
        assert len(urgent_sent(mail_server, email)) == 1, email
    assert urgent_sent(mail_server, SOUTHSIDE) == [] and mail_server.handler.messages_for(OFFICERS) == []
    [acme] = urgent_sent(mail_server, ACME)
    assert acme["Subject"] == "URGENT: new warning at 3 Heron Way, EW1 9ZZ (Example Homes)"
    text, html = text_of(acme.get_body(("plain",))), acme.get_body(("html",)).get_content()
    for part in (text, html):
        assert "3 Heron Way" in part and "WPN" in part and "Weapons: new warning" in part
        assert "Call Duty housing manager on 01632 960999" in part or "01632 960999" in part
        assert "Nina Ninefold" not in part and "NOTE-SECRET" not in part  # a contractor: no name, no note
    [night] = urgent_sent(mail_server, NIGHT_DESK)
    night_text = text_of(night.get_body(("plain",)))
    assert "Nina Ninefold" in night_text and "NOTE-SECRET" not in night.as_string()
    # The disclosure log: kind urgent, listed as current, with the code shown (what the digest reads).
    told = {(x["recipient_email"], x["alert_id"], x["listed_as"], x["shown"])
            for x in disclosures(databases) if x["kind"] == "urgent"}
    assert told == {(email, "N9", "current", json.dumps({"alert_code": "WPN"})) for email in (ACME, WEEKLY, NIGHT_DESK)}

    rerun = urgent(config, clock, "urgent-2")  # the next quarter of an hour: nothing new
    assert (rerun["changes"], rerun["already_notified"], rerun["notices"], rerun["sent"]) == (1, 3, 0, 0)

    databases.write_source(with_code(rows, "N1", "DNV"))  # N1, NORTH: visit in pairs -> do not visit
    escalated = urgent(config, clock, "urgent-3")
    assert (escalated["notices"], escalated["sent"]) == (3, 3)
    [_, acme_again] = urgent_sent(mail_server, ACME)
    assert "Do not visit: escalated from VIP" in text_of(acme_again.get_body(("plain",)))
    assert "3 Heron Way" not in text_of(acme_again.get_body(("plain",)))  # N9 was told already
    assert urgent_sent(mail_server, SOUTHSIDE) == []

    databases.write_source(with_code(rows, "N1", "VIP"))  # and back: a de-escalation is no urgent news
    calmer = urgent(config, clock, "urgent-4")
    assert (calmer["sync"]["updated"], calmer["notices"], calmer["sent"]) == (1, 0, 0)

    nfo = alert_row(alert_id="N10", alert_code="NFO", area="NORTH", address="4 Heron Way", person_ref="P0010")
    databases.write_source([*with_code(rows, "N1", "VIP"), nfo])  # a code that is not urgent waits for the digest
    quiet = urgent(config, clock, "urgent-5")
    assert (quiet["sync"]["inserted"], quiet["notices"], quiet["sent"]) == (1, 0, 0)
    assert len(urgent_sent(mail_server, ACME)) == 2 and len(urgent_sent(mail_server, NIGHT_DESK)) == 2

    # The next morning's digest lists the weapons warning as already notified, never as news unsaid;
    # SOUTH's contractor, never told of it, has nothing of it.
    next_day = AS_OF + dt.timedelta(days=1)
    run_deadlines(config, as_of=next_day, run_id="deadlines-day2")
    assert run_digests(config, as_of=next_day, run_id="digests-day2", retry=FAST, clock=clock)["sent"] == 3
    for email in (ACME, NIGHT_DESK):
        [digest] = [m for m in mail_server.handler.messages_for(email)
                    if m["X-Cautionflow-Kind"] != "urgent" and m["X-Cautionflow-As-Of"] == next_day.isoformat()]
        text = text_of(digest.get_body(("plain",)))
        heron = [line for line in text.splitlines() if "3 Heron Way" in line]
        assert heron and all("[ALREADY NOTIFIED: Urgent notice sent" in line for line in heron), (email, heron)
    [south] = [m for m in mail_server.handler.messages_for(SOUTHSIDE) if m["X-Cautionflow-As-Of"] == next_day.isoformat()]
    assert "Heron Way" not in south.as_string()


INSTRUCTION = "Call Priya Shah, Tenancy Officer, on 01632 960345 before any visit"
DUTY = {"name": "Duty housing manager", "phone": "01632 960999"}


def test_a_notice_shows_the_contact_instruction_column_exactly_where_the_digest_does(
    databases, tmp_path, mail_server,
):
    """Issue 15: an urgent notice shows the columns of its recipient's digest. Call handlers are told
    of every flag (Karbon 7.3), with how to make contact safely: the alert's instruction, or the duty
    contact where it has none. A contractor is given where and what to do (Karbon 7.1-7.2, Dover
    6.31), and the instruction, which can name an officer, only with
    `digests.contractors_see_instructions`."""
    clock = Ticking()
    config = deployment(databases, tmp_path, mail_server.port, digests={"duty_contact": DUTY})
    day_one_with_digests(databases, config, clock)
    with_instruction = alert_row(alert_id="N8", alert_code="DNV", area="NORTH", address="8 Heron Way",
                                 postcode="EW1 8ZZ", person_ref="P0008", contact_instruction=INSTRUCTION)
    rows = [*SOURCE, NORTH_WPN, with_instruction]  # N9 has no instruction
    databases.write_source(rows)

    assert urgent(config, clock, "urgent-1")["sent"] == 3
    [night] = urgent_sent(mail_server, NIGHT_DESK)
    night_text, night_html = text_of(night.get_body(("plain",))), night.get_body(("html",)).get_content()
    assert f"Contact instruction: {INSTRUCTION}" in night_text
    assert "Contact instruction: Call Duty housing manager on 01632 960999" in night_text  # N9's fallback
    assert night_html.count("<th align=\"left\" style=\"background:#eeeeee\">Contact instruction</th>") == 1
    assert INSTRUCTION in night_html and "<td>Call Duty housing manager on 01632 960999</td>" in night_html
    [acme] = urgent_sent(mail_server, ACME)
    for part in (text_of(acme.get_body(("plain",))), acme.get_body(("html",)).get_content()):
        assert "8 Heron Way" in part and "3 Heron Way" in part
        assert "Contact instruction" not in part and INSTRUCTION not in part

    # The landlord lets contractors see the instructions: the next notice has the column, as the digest would.
    shown = deployment(databases, tmp_path, mail_server.port,
                       digests={"duty_contact": DUTY, "contractors_see_instructions": True})
    another = alert_row(alert_id="N7", alert_code="AGY", area="NORTH", address="7 Heron Way", postcode="EW1 7ZZ",
                        person_ref="P0007")
    databases.write_source([*rows, another])
    assert urgent(shown, clock, "urgent-2")["sent"] == 3
    [_, acme_again] = urgent_sent(mail_server, ACME)
    acme_text, acme_html = text_of(acme_again.get_body(("plain",))), acme_again.get_body(("html",)).get_content()
    assert "7 Heron Way" in acme_text and "Contact instruction: Call Duty housing manager on 01632 960999" in acme_text
    assert "Contact instruction</th>" in acme_html


def test_a_change_the_digest_already_listed_is_not_sent_as_urgent(databases, tmp_path, mail_server):
    """An urgent alert synced before the morning's digest went is in that digest: no notice after it."""
    clock = Ticking()
    config = deployment(databases, tmp_path, mail_server.port)
    databases.write_source(SOURCE)
    run_sync(config, as_of=AS_OF, run_id="sync-first", clock=clock)
    databases.write_source([*SOURCE, NORTH_WPN])
    run_sync(config, as_of=AS_OF, run_id="sync-day1", clock=clock)
    run_deadlines(config, as_of=AS_OF, run_id="deadlines-day1")
    assert run_digests(config, as_of=AS_OF, run_id="digests", retry=FAST, clock=clock)["sent"] == 3

    after = urgent(config, clock, "urgent-after-digest")
    # Only the weekly contractor, whose digest is Friday's, has not been told of N9.
    assert (after["changes"], after["notices"], after["sent"]) == (1, 1, 1)
    assert [r.recipient for r in mail_server.handler.received if r.message["X-Cautionflow-Kind"] == "urgent"] \
        == [WEEKLY]


def test_a_refused_urgent_notice_is_resent_by_mail_resend_failed_once_the_server_accepts(
    databases, tmp_path, mail_server, capsys,
):
    from cautionflow.cli import main

    clock = Ticking()
    config = deployment(databases, tmp_path, mail_server.port)
    path = write_config(config, tmp_path)
    day_one_with_digests(databases, config, clock)
    databases.write_source([*SOURCE, NORTH_WPN])
    mail_server.handler.refuse[ACME] = REFUSED.format(ACME)

    first = urgent(config, clock, "urgent-1")
    assert (first["notices"], first["sent"], first["failed"]) == (3, 2, 1)
    assert first["failures"][0]["email"] == ACME
    # The next run composes nothing new for Acme: the failed notice is the one to resend.
    assert urgent(config, clock, "urgent-2")["notices"] == 0

    mail_server.handler.refuse.clear()
    code = main(["mail", "resend-failed", "--config", path, "--kind", "urgent"])
    out, err = capsys.readouterr()
    resent = json.loads(out.strip().splitlines()[-1])
    assert code == 0, resent
    assert resent["kinds"] == ["urgent"] and resent["unknown_kinds"] == [] and "never held" not in err
    assert (resent["requeued"], resent["sent"]) == (1, 1)
    assert [(m["kind"], m["email"]) for m in resent["requeued_messages"]] == [("urgent", ACME)]
    [acme] = urgent_sent(mail_server, ACME)
    [row] = [r for r in outbox_rows(databases) if r["kind"] == "urgent" and r["recipient_email"] == ACME]
    assert acme["Message-ID"] == row["message_id"] and row["status"] == "sent"
    assert [x["alert_id"] for x in disclosures(databases) if x["kind"] == "urgent" and x["recipient_email"] == ACME] \
        == ["N9"]

    code = main(["mail", "resend-failed", "--config", path])  # exactly once: nothing left to resend
    assert code == 0 and json.loads(capsys.readouterr().out.strip().splitlines()[-1])["sent"] == 0
    assert urgent(config, clock, "urgent-3")["sent"] == 0
    assert len(urgent_sent(mail_server, ACME)) == 1


def test_cautionflow_run_urgent_prints_its_summary_as_json_last(tmp_path, mail_server, capsys):
    from cautionflow.cli import main

    path = command_config(tmp_path, mail_server.port)
    assert main(["run", "sync", "--config", str(path), "--as-of", AS_OF.isoformat()]) == 0
    capsys.readouterr()
    write_sqlite_source(tmp_path / "housing.db", [*SOURCE, NORTH_WPN])

    code = main(["run", "urgent", "--config", str(path), "--as-of", AS_OF.isoformat()])

    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert code == 0, summary
    assert summary["step"] == "urgent" and summary["as_of"] == AS_OF.isoformat()
    assert (summary["changes"], summary["notices"], summary["sent"]) == (1, 3, 3)
    assert summary["sync"]["inserted"] == 1


def test_a_refused_sync_still_sends_what_the_register_has_and_tells_operations_once_a_day(
    databases, tmp_path, mail_server,
):
    """A broken export (empty: the mass-end guard refuses it) every 15 minutes: the urgent
    changes an earlier sync recorded still go, and operations hear of the refusal once that day."""
    ops = "ops@example.org"
    clock = Ticking()
    config = deployment(databases, tmp_path, mail_server.port, recipients=[
        {"name": "Acme Repairs", "email": ACME, "role": "contractor", "areas": ["NORTH"]},
        {"name": "Operations", "email": ops, "role": "operations"},
    ])
    databases.write_source(SOURCE)
    run_sync(config, as_of=AS_OF, run_id="sync-first", clock=clock)
    databases.write_source([*SOURCE, NORTH_WPN])
    run_sync(config, as_of=AS_OF, run_id="sync-day1", clock=clock)  # N9 recorded; no digest has told of it
    databases.write_source([])  # the export comes back empty: the guard refuses to end every alert

    broken = urgent(config, clock, "urgent-1")
    assert "refused" in broken["sync"] and "inserted" not in broken["sync"]
    assert broken["complete"] is False  # `run urgent` exits 3; the Airflow task still succeeds
    assert (broken["notices"], broken["sent"], broken["operations_told"]) == (1, 1, 1)
    assert len(urgent_sent(mail_server, ACME)) == 1
    [notice] = mail_server.handler.messages_for(ops)
    assert "urgent notices' sync refused" in notice["Subject"] and "Why:" in text_of(notice.get_body(("plain",)))
    assert "Nina Ninefold" not in notice.as_string()  # counts and reasons only

    again = urgent(config, clock, "urgent-2")  # still broken a quarter of an hour later
    assert "refused" in again["sync"] and (again["sent"], again["operations_told"]) == (0, 0)
    assert len(mail_server.handler.messages_for(ops)) == 1 and len(urgent_sent(mail_server, ACME)) == 1


def test_a_digests_delivery_in_progress_does_not_hold_up_an_urgent_notice(databases, tmp_path, mail_server):
    """Dover 6.23 (a threatened person warned at once): the outbox's delivery lock is per kind. A
    digests run still sending (1,000 digests at a provider's 30 a minute take over half an hour)
    holds the digests' lock only; the urgent cycle delivers beside it. Another urgent delivery does
    hold it up: that run leaves its notices pending, and the next cycle sends them once."""
    from sqlalchemy import create_engine

    from cautionflow.adapters.database import normalise_url
    from cautionflow.adapters.outbox import Outbox

    clock = Ticking()
    config = deployment(databases, tmp_path, mail_server.port)
    day_one_with_digests(databases, config, clock)
    databases.write_source([*SOURCE, NORTH_WPN])

    digests_run = Outbox(create_engine(normalise_url(databases.register_url)))
    try:
        assert digests_run.acquire_delivery_lock("digest")  # a digests run is still sending
        beside = urgent(config, clock, "urgent-1")
        assert (beside["notices"], beside["sent"], beside["pending"]) == (3, 3, 0)
        assert len(urgent_sent(mail_server, ACME)) == 1
        digests_run.release_delivery_lock()

        databases.write_source(with_code([*SOURCE, NORTH_WPN], "N1", "DNV"))
        assert digests_run.acquire_delivery_lock("urgent")  # another urgent cycle is delivering
        held = urgent(config, clock, "urgent-2")
        assert (held["notices"], held["sent"], held["pending"]) == (3, 0, 3)
        assert len(urgent_sent(mail_server, ACME)) == 1
    finally:
        digests_run.release_delivery_lock()
        digests_run.close()
        digests_run.engine.dispose()
    after = urgent(config, clock, "urgent-3")
    assert after["sent"] == 3 and len(urgent_sent(mail_server, ACME)) == 2  # sent once, by the next cycle
