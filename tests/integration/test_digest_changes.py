"""Digests that show what changed, by severity (issue 15): day 1, then day 2 with an escalation from
VIP (visit in pairs) to WPN (weapons) at one NORTH address, through the real pipeline steps, a real
SMTP server and the register on SQLite and PostgreSQL.

Karbon 6.3 and Hexagon 1.2: staff check before every visit, so a changed warning must be as visible
as a new one; Dover 6.23: a threatened person is warned at once, and the urgent notice that did so is
shown in the next digest as already notified. Karbon 7.1-7.3, Dover 6.31: each recipient is told only
what its role and areas allow, in the changes as in the list.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from zoneinfo import ZoneInfo

from cautionflow.adapters.outbox import QueuedMessage
from cautionflow.adapters.register import Register
from cautionflow.domain.codes import required_action
from cautionflow.domain.digests import notified_text
from cautionflow.steps import run_digests
from tests.deployment import (
    ACME,
    FAST,
    NIGHT_DESK,
    SOUTHSIDE,
    deployment,
    disclosures,
    outbox_rows,
    prepare,
    text_of,
)
from tests.support import AS_OF, alert_row

DAY_2 = AS_OF + dt.timedelta(days=1)
DUTY = {"name": "Duty housing manager", "phone": "01632 960999"}
DUTY_TEXT = "Call Duty housing manager on 01632 960999"
SPOC_INSTRUCTION = "Arrange all contact through Pat Officer, 01632 960111"
NAMES = ("Alex Example", "Bea Example", "Cal Example", "Dee Example", "Sam Sample", "Nia New")

DAY_1 = [
    # NORTH, postcodes that a text sort puts in the order QE1, QE10, QE2.
    alert_row(alert_id="N1", area="NORTH", alert_code="VIP", address="10 Larkspur Close", postcode="QE10 1AA",
              person_name="Alex Example"),
    alert_row(alert_id="N2", area="NORTH", alert_code="SPOC", address="2 Larkspur Close", postcode="QE2 1AA",
              person_ref="P0002", person_name="Bea Example", contact_instruction=SPOC_INSTRUCTION),
    alert_row(alert_id="N3", area="NORTH", alert_code="NFO", address="10 Mill Lane", postcode="QE1 1AA",
              person_ref="P0003", person_name="Cal Example"),
    alert_row(alert_id="N5", area="NORTH", alert_code="DOG", address="2 Mill Lane", postcode="QE1 1AA",
              person_ref="P0005", person_name="Dee Example"),
    alert_row(alert_id="S1", area="SOUTH", alert_code="NFO", address="5 Quay Street", postcode="QE4 1CD",
              person_ref="P0009", person_name="Sam Sample"),
]


def day_2_source() -> list[dict]:
    rows = {r["alert_id"]: dict(r) for r in DAY_1}
    rows["N1"]["alert_code"] = "WPN"  # the escalation
    rows["N2"]["address"] = "2A Larkspur Close"  # a change only the hash of the address can see
    rows["N4"] = alert_row(alert_id="N4", area="NORTH", alert_code="HAZ", address="4 New Road", postcode="QE2 1AB",
                           person_ref="P0004", person_name="Nia New")
    return list(rows.values())


def csv_rows(message) -> list[dict[str, str]]:
    [attachment] = list(message.iter_attachments())
    return list(csv.DictReader(io.StringIO(text_of(attachment).lstrip("\ufeff"))))


def section(text: str, start: str, *ends: str) -> str:
    """The part of `text` after `start` up to the first of `ends` that follows."""
    assert start in text, (start, text)
    rest = text.split(start, 1)[1]
    cut = min((rest.index(end) for end in ends if end in rest), default=len(rest))
    return rest[:cut]


def send_urgent_notice(dbs, recipient_name: str, email: str, alert_ids: tuple[str, ...], at: dt.datetime) -> None:
    """An urgent notice as the urgent notices record one: through the outbox, kind "urgent",
    accepted by the server at `at` (the disclosure log then says so)."""
    register = Register(dbs.register_url)
    try:
        [queued] = register.outbox.enqueue(
            [QueuedMessage(
                idempotency_key=f"urgent-test-{email}", kind="urgent", recipient_name=recipient_name,
                recipient_email=email, recipient_role="out_of_hours", as_of=DAY_2, content_hash="u" * 64,
                message_id=f"<urgent.{email}@example.org>", subject="Urgent", message="Urgent notice",
                current_ids=alert_ids, shown={a: json.dumps({"alert_code": "WPN"}) for a in alert_ids},
            )],
            run_id="urgent-test", now=at, claim=True,
        )
        assert register.outbox.mark_sent(queued, at=at)
    finally:
        register.dispose()


def test_the_next_digest_shows_an_escalation_first_to_those_who_may_see_it(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, digests={"duty_contact": DUTY})
    prepare(databases, config, DAY_1, AS_OF)
    first = run_digests(config, as_of=AS_OF, run_id="day-1", retry=FAST)
    assert first["sent"] == 3
    day_1_sent = {r["recipient_email"]: r["sent_at"] for r in outbox_rows(databases)}
    night_desk_sent = day_1_sent[NIGHT_DESK]
    night_desk_sent = night_desk_sent.replace(tzinfo=night_desk_sent.tzinfo or dt.UTC)

    # Overnight an urgent notice told the call handlers of N1 (Dover 6.23), an hour after their digest.
    told_at = night_desk_sent + dt.timedelta(hours=1)
    send_urgent_notice(databases, "Night Desk", NIGHT_DESK, ("N1",), told_at)
    prepare(databases, config, day_2_source(), DAY_2)
    mail_server.handler.received.clear()

    summary = run_digests(config, as_of=DAY_2, run_id="day-2", retry=FAST)
    assert (summary["queued"], summary["sent"], summary["complete"]) == (3, 3, True)

    # --- Acme (NORTH contractor): the escalation under Changed, first, with both codes ---
    [acme] = mail_server.handler.messages_for(ACME)
    plain = text_of(acme.get_body(("plain",)))
    html = text_of(acme.get_body(("html",)))
    changed = section(plain, "Changed (2):", "Lifted (", "CURRENT FLAGS")
    entries = [e for e in changed.split("\n- ") if e.strip()]
    assert entries[0].lstrip("- ").startswith("ESCALATED: 10 Larkspur Close, QE10 1AA")
    assert "Alert code: VIP -> WPN" in entries[0]
    assert f"Required action: {required_action('VIP')} -> {required_action('WPN')}" in entries[0]
    # The address change was found through its hash only: the current row, "details changed".
    assert entries[1].startswith("2A Larkspur Close") and "Details changed. SPOC" in entries[1]
    assert "ESCALATED" not in entries[1]
    assert "VIP -&gt; WPN" in html and "ESCALATED" in html
    assert html.index("Changed (2)") < html.index("Current flags (")
    # Added: the day-2 flag, and it is marked new in the current list.
    assert "4 New Road" in section(plain, "Added (1):", "Changed (")
    current = section(plain, "CURRENT FLAGS (5)", "The attachment")
    assert "- [NEW] 4 New Road, QE2 1AB" in current
    assert "- [ESCALATED] [CHANGED] 10 Larkspur Close, QE10 1AA" in current
    assert "- [CHANGED] 2A Larkspur Close" in current
    assert "- 10 Mill Lane" in current and "ALREADY NOTIFIED" not in plain  # no urgent notice to Acme
    # Highest risk, before the changes and the list: the WPN row only (VIP, DOG, SPOC, NFO, HAZ rank lower).
    highest = section(plain, "HIGHEST RISK (1)", "CHANGES SINCE")
    assert "10 Larkspur Close" in highest and "WPN" in highest
    assert plain.index("HIGHEST RISK") < plain.index("CHANGES SINCE") < plain.index("CURRENT FLAGS")
    assert html.index("Highest risk (1)") < html.index("Changes since your previous digest")
    # Natural order: postcodes QE1, QE2, QE10; at one postcode, 2 Mill Lane before 10 Mill Lane.
    rows = csv_rows(acme)
    assert [(r["Postcode"], r["Address"]) for r in rows] == [
        ("QE1 1AA", "2 Mill Lane"), ("QE1 1AA", "10 Mill Lane"), ("QE2 1AA", "2A Larkspur Close"),
        ("QE2 1AB", "4 New Road"), ("QE10 1AA", "10 Larkspur Close"),
    ]
    # The duty contact near the top; contractors see no instruction column unless the config allows.
    assert f"Cannot follow an instruction, or it is missing? {DUTY_TEXT}." in plain
    assert plain.index(DUTY_TEXT) < plain.index("HIGHEST RISK")
    assert "Contact instruction" not in rows[0] and SPOC_INSTRUCTION not in plain + html
    assert not any(name in plain + html for name in NAMES)  # never a name, in the changes either

    # --- Night Desk (out of hours): the same escalation, and already notified by the urgent notice ---
    [desk] = mail_server.handler.messages_for(NIGHT_DESK)
    desk_plain = text_of(desk.get_body(("plain",)))
    desk_html = text_of(desk.get_body(("html",)))
    desk_changed = section(desk_plain, "Changed (2):", "Lifted (", "CURRENT FLAGS")
    assert desk_changed.strip().startswith("- ESCALATED: 10 Larkspur Close") and "VIP -> WPN" in desk_changed
    told = notified_text(told_at, ZoneInfo(config.timezone))
    assert re.fullmatch(r"Urgent notice sent \d\d:\d\d, \d{1,2} [A-Z][a-z]+", told), told
    desk_current = section(desk_plain, "CURRENT FLAGS (6)", "The attachment")
    assert f"[ALREADY NOTIFIED: {told}] 10 Larkspur Close" in desk_current
    assert desk_current.count("[ALREADY NOTIFIED:") == 1
    assert "ALREADY NOTIFIED" in desk_html and told in desk_html
    # Call handlers see the contact instruction: the alert's own, else the duty contact's number.
    instructions = {r["Alert ID"]: r["Contact instruction"] for r in csv_rows(desk)}
    assert instructions["N2"] == SPOC_INSTRUCTION and instructions["N1"] == DUTY_TEXT

    # --- Southside (SOUTH/EAST): nothing of the NORTH escalation ---
    [southside] = mail_server.handler.messages_for(SOUTHSIDE)
    south = "\n".join((text_of(southside.get_body(("plain",))), text_of(southside.get_body(("html",)))))
    assert "No flags added or lifted. None changed." in south
    for word in ("Larkspur", "WPN", "ESCALATED", "Changed (", "4 New Road", "HIGHEST RISK", "Highest risk"):
        assert word not in south, word

    # What each digest showed is kept for the next comparison, without the resident's personal data.
    logged = [x for x in disclosures(databases) if x["kind"] == "digest" and x["disclosed_on"] == DAY_2]
    assert logged and all(x["shown"] for x in logged)
    for x in logged:
        record = json.loads(x["shown"])
        assert record["alert_code"]
        assert not any(word in x["shown"] for word in (*NAMES, "Larkspur", "Mill Lane", "New Road", "QE"))
    assert {json.loads(x["shown"])["alert_code"] for x in logged if x["alert_id"] == "N1"} == {"WPN"}

    # A rerun of day 2 sends nothing (the marks are not part of what identifies a digest).
    mail_server.handler.received.clear()
    again = run_digests(config, as_of=DAY_2, run_id="day-2-again", retry=FAST)
    assert (again["queued"], again["sent"], again["already_sent"]) == (0, 0, 3)
    assert mail_server.handler.received == []


def test_a_digest_before_the_disclosure_log_kept_what_it_showed_reports_no_change(databases, tmp_path, mail_server):
    """A previous digest's disclosures from before migration 0009 hold no `shown`: an alert listed
    in both is never reported as changed (no false alarms), and added flags still are."""
    from sqlalchemy import create_engine, update

    from cautionflow.adapters import register_schema as schema
    from cautionflow.adapters.database import normalise_url

    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config, DAY_1, AS_OF)
    run_digests(config, as_of=AS_OF, run_id="day-1", retry=FAST)
    engine = create_engine(normalise_url(databases.register_url))
    with engine.begin() as conn:
        conn.execute(update(schema.disclosures).values(shown=None))
    engine.dispose()
    prepare(databases, config, day_2_source(), DAY_2)
    mail_server.handler.received.clear()

    run_digests(config, as_of=DAY_2, run_id="day-2", retry=FAST)

    [acme] = mail_server.handler.messages_for(ACME)
    plain = text_of(acme.get_body(("plain",)))
    assert "Changed (" not in plain and "- [CHANGED]" not in plain and "ESCALATED" not in plain
    assert "- [NEW] 4 New Road" in plain
    assert "4 New Road" in section(plain, "Added (1):", "CURRENT FLAGS")
    assert "HIGHEST RISK (1)" in plain  # the WPN row is still at the top, whatever the log held
