"""`run digests` against a real SMTP server (aiosmtpd, in this process, on a free loopback port).

Every received message is parsed with the `email` package; the tests assert on what each
recipient did and did not receive, on SQLite and PostgreSQL. The handler counts distinct
Message-IDs per recipient: exactly once means one, whatever faults came before.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import io
import json
import os
import ssl
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path

import pytest
import yaml
from aiosmtpd.smtp import AuthResult
from sqlalchemy import create_engine, select

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.adapters.outbox import Outbox
from cautionflow.domain.codes import UNKNOWN_CODE_ACTION, required_action
from cautionflow.steps import run_deadlines, run_digests, run_sync
from tests.deployment import (
    ACME,
    DUE,
    FAST,
    MOMENT,
    NAMES,
    NIGHT_DESK,
    RECIPIENTS,
    SCRIPT_ADDRESS,
    SOURCE,
    SOUTHSIDE,
    command_config,
    deployment,
    disclosures,
    disclosures_at,
    outbox_rows,
    outbox_rows_at,
    prepare,
    resend_failed,
    text_of,
)
from tests.smtp_server import MailServer, serving
from tests.support import AS_OF, REPO, alert_row, migrated_airflow, write_sqlite_source

# --- helpers --------------------------------------------------------------------------------------


@dataclass
class Digest:
    subject: str
    plain: str
    html: str
    rows: list[dict[str, str]]
    message: EmailMessage

    @property
    def everything(self) -> str:
        return "\n".join((self.subject, self.plain, self.html, json.dumps(self.rows)))


def digest(message: EmailMessage) -> Digest:
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "text/csv"
    assert attachment.get_filename() == "example-homes-caution-alerts-2026-11-23.csv"
    rows = list(csv.DictReader(io.StringIO(text_of(attachment).lstrip("\ufeff"))))
    return Digest(
        message["Subject"], text_of(message.get_body(("plain",))), text_of(message.get_body(("html",))), rows, message
    )


def only_digest(server: MailServer, recipient: str) -> Digest:
    [message] = server.handler.messages_for(recipient)
    return digest(message)


def dq_flags(dbs, alert_id: str) -> str:
    engine = create_engine(normalise_url(dbs.register_url))
    with engine.connect() as conn:
        value = conn.execute(select(schema.alerts.c.dq_flags).where(schema.alerts.c.alert_id == alert_id)).scalar()
    engine.dispose()
    return value


def assert_exactly_once(server: MailServer, recipients=DUE) -> None:
    ids = server.handler.distinct_message_ids()
    assert set(ids) == set(recipients)
    assert all(len(found) == 1 for found in ids.values()), ids


# --- who receives what ----------------------------------------------------------------------------


def test_each_recipient_receives_only_what_it_may_see(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)

    summary = run_digests(config, as_of=AS_OF, run_id="digests-1", retry=FAST)

    assert {k: summary[k] for k in ("recipients", "queued", "sent", "already_sent", "failed", "pending", "complete")} == {
        "recipients": 3, "queued": 3, "sent": 3, "already_sent": 0, "failed": 0, "pending": 0, "complete": True,
    }
    # Officers get review reminders, not digests; the weekly contractor is due on Fridays.
    assert {r.recipient for r in mail_server.handler.received} == DUE
    assert_exactly_once(mail_server)

    # Contractors: their areas only; where and what to do, nothing about the person (Karbon 7.1-7.2, Dover 6.31).
    acme = only_digest(mail_server, ACME)
    assert acme.subject == "Confidential: Example Homes caution alerts for Acme Repairs, 23 November 2026 (2 flags)"
    assert acme.message["From"] == "Example Homes <alerts@example.org>"
    assert acme.message["To"] == f"Acme Repairs <{ACME}>"
    assert list(acme.rows[0]) == ["Alert ID", "Address", "Postcode", "Area", "Asset reference", "Alert code",
                                  "Required action", "Review due"]
    assert [r["Alert ID"] for r in acme.rows] == ["N1", "N2"]
    assert [(r["Address"], r["Alert code"], r["Required action"]) for r in acme.rows] == [
        ("1 Larkspur Close, Eastwick", "VIP", required_action("VIP")),
        (SCRIPT_ADDRESS, "DOG", required_action("DOG")),
    ]
    assert acme.rows[0]["Review due"] == "2027-03-02"  # Dover 6.16: 12 months from 2 March 2026; ISO in the CSV
    assert "Review due 2 March 2027." in acme.plain  # the email itself keeps the date as people write it
    southside = only_digest(mail_server, SOUTHSIDE)
    assert [(r["Address"], r["Area"], r["Required action"]) for r in southside.rows] == [
        ("9 Quay Street", "EAST", UNKNOWN_CODE_ACTION),  # flagged row, still a warning with an action
        ("5 Mill Lane", "SOUTH", required_action("NFO")),
    ]
    problem = dq_flags(databases, "E1")
    assert problem  # the row really is flagged
    for contractor in (acme, southside):
        text = contractor.everything
        assert not any(name in text for name in NAMES), text
        assert "NOTE-SECRET" not in text and problem not in text and "P0002" not in text
        assert "7 Ended Row" not in text  # ended alerts are not current
        assert "Confidential" in contractor.subject and "do not forward" in contractor.plain.lower()
        assert "as of 23 November 2026" in contractor.plain and "From Example Homes" in contractor.plain

    # Out-of-hours call handlers: every active alert with who it is about, never the note (Karbon 7.3).
    night = only_digest(mail_server, NIGHT_DESK)
    assert night.subject.endswith("(4 flags)")
    assert sorted(r["Name"] for r in night.rows) == ["", "Alex Example", "Eve Example", "Sam Sample"]
    assert {r["Subject type"] for r in night.rows} == {"person", "address"}
    assert "NOTE-SECRET" not in night.everything and problem not in night.everything
    assert "Olly Ended" not in night.everything

    # The address with markup arrives as text: escaped in the HTML, never a tag.
    for message in (acme, night):
        assert "<script>" not in message.html and "&lt;script&gt;alert(1)&lt;/script&gt;" in message.html
        assert SCRIPT_ADDRESS in message.plain
        assert message.plain.count("\n- ") == len(message.rows)  # the same rows in all three forms
        assert message.html.count("<tr><td>") == len(message.rows)

    # The outbox and the disclosure log: who was told about which alert, in which message.
    rows = outbox_rows(databases)
    assert {(r["recipient_email"], r["status"], r["attempts"]) for r in rows} == {(e, "sent", 1) for e in DUE}
    sent_ids = {r["recipient_email"]: r["message_id"] for r in rows}
    assert {k: v.pop() for k, v in mail_server.handler.distinct_message_ids().items()} == sent_ids
    told = {(x["alert_id"], x["recipient_email"], x["listed_as"]) for x in disclosures(databases)}
    assert told == {
        ("N1", ACME, "current"), ("N2", ACME, "current"), ("S1", SOUTHSIDE, "current"), ("E1", SOUTHSIDE, "current"),
        ("N1", NIGHT_DESK, "current"), ("N2", NIGHT_DESK, "current"), ("S1", NIGHT_DESK, "current"),
        ("E1", NIGHT_DESK, "current"),
    }
    outbox = Outbox(create_engine(normalise_url(databases.register_url)))
    try:
        who = outbox.disclosures_for_alert("S1")
        assert sorted((w.recipient_name, w.message_id, w.disclosed_on, w.listed_as) for w in who) == [
            ("Night Desk", sent_ids[NIGHT_DESK], AS_OF, "current"),
            ("Southside Gas", sent_ids[SOUTHSIDE], AS_OF, "current"),
        ]
        assert all(w.disclosed_at is not None for w in who)
        assert outbox.disclosures_for_alert("X1") == []
    finally:
        outbox.close()
        outbox.engine.dispose()


def test_rerunning_the_day_sends_nothing(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)
    run_digests(config, as_of=AS_OF, run_id="first", retry=FAST)

    again = run_digests(config, as_of=AS_OF, run_id="second", retry=FAST)

    assert (again["queued"], again["sent"], again["already_sent"], again["pending"], again["complete"]) == (
        0, 0, 3, 0, True,
    )
    assert len(mail_server.handler.received) == 3
    assert len(outbox_rows(databases)) == 3


def test_the_next_digest_lists_flags_added_and_lifted(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)
    run_digests(config, as_of=AS_OF, run_id="day-1", retry=FAST)
    next_day = AS_OF + dt.timedelta(days=1)
    changed = [r for r in SOURCE if r["alert_id"] != "N1"] + [
        alert_row(alert_id="N1", status="ended", area="NORTH", address="1 Larkspur Close, Eastwick"),
        alert_row(alert_id="N3", area="NORTH", alert_code="WPN", address="3 New Road", person_name="Nia New"),
    ]
    prepare(databases, config, changed, next_day)
    mail_server.handler.received.clear()

    summary = run_digests(config, as_of=next_day, run_id="day-2", retry=FAST)

    assert summary["sent"] == 3
    [acme] = mail_server.handler.messages_for(ACME)
    plain = text_of(acme.get_body(("plain",)))
    assert "CHANGES SINCE YOUR PREVIOUS DIGEST OF 23 NOVEMBER 2026" in plain
    added = plain.split("Added (1):")[1].split("Lifted")[0]
    lifted = plain.split("Lifted (1), these no longer apply to you:")[1].split("CURRENT FLAGS")[0]
    assert "3 New Road" in added and "WPN" in added
    assert "1 Larkspur Close, Eastwick" in lifted and "Review due" not in lifted
    assert "Nia New" not in plain  # a contractor never sees names, in changes either
    html = text_of(acme.get_body(("html",)))
    assert "Added (1)" in html and "Lifted (1)" in html
    [southside] = mail_server.handler.messages_for(SOUTHSIDE)
    assert "No flags added or lifted." in text_of(southside.get_body(("plain",)))
    lifted_log = [(x["alert_id"], x["recipient_email"]) for x in disclosures(databases) if x["listed_as"] == "lifted"]
    assert sorted(lifted_log) == sorted([("N1", ACME), ("N1", NIGHT_DESK)])


# --- the attachment in a spreadsheet, and review dates per role (issue 15) -------------------------


def stored_review_due(dbs, alert_id: str) -> dt.date:
    engine = create_engine(normalise_url(dbs.register_url))
    with engine.connect() as conn:
        value = conn.execute(
            select(schema.alert_deadlines.c.review_due).where(schema.alert_deadlines.c.alert_id == alert_id)
        ).scalar()
    engine.dispose()
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


@dataclass
class Received:
    plain: str
    html: str
    csv: str
    rows: dict[str, dict[str, str]]


def only_digest_on(server: MailServer, recipient: str) -> Received:
    """One recipient's digest, its CSV rows by alert id."""
    [message] = server.handler.messages_for(recipient)
    [attachment] = list(message.iter_attachments())
    text = attachment.get_payload(decode=True).decode("utf-8-sig")
    rows = {r["Alert ID"]: r for r in csv.DictReader(io.StringIO(text, newline=""))}
    return Received(text_of(message.get_body(("plain",))), text_of(message.get_body(("html",))), text, rows)


def test_the_csv_opens_in_excel_with_iso_dates_the_alert_id_and_no_live_formula(databases, tmp_path, mail_server):
    recipients = [r for r in RECIPIENTS if r["email"] in (ACME, NIGHT_DESK)]
    config = deployment(databases, tmp_path, mail_server.port, recipients=recipients)
    hyperlink = '=HYPERLINK("x")'
    prepare(databases, config, rows=[
        alert_row(alert_id="Z1", area="NORTH", address="Zoë's Cottage, 4 Mill Lane", person_name="Zoë Example"),
        # Dover 6.16: 12 months from 24 August 2025, so the review date is three months past on AS_OF.
        alert_row(alert_id="Z2", area="NORTH", address=hyperlink, person_ref="P0002", person_name="Sam Sample",
                  effective_from="2025-08-24"),
    ])
    past = stored_review_due(databases, "Z2")
    assert past < AS_OF  # the register really holds a past review date (the flag is still active)

    assert run_digests(config, as_of=AS_OF, run_id="digests", retry=FAST)["sent"] == 2

    for email in (ACME, NIGHT_DESK):
        [message] = mail_server.handler.messages_for(email)
        [attachment] = list(message.iter_attachments())
        data = attachment.get_payload(decode=True)
        assert data.startswith(b"\xef\xbb\xbf")  # the BOM: Excel reads the UTF-8, "Zoë" not "ZoÃ«"
        rows = {r["Alert ID"]: r for r in csv.DictReader(io.StringIO(data.decode("utf-8-sig"), newline=""))}
        assert sorted(rows) == ["Z1", "Z2"] and list(rows["Z1"])[0] == "Alert ID"  # the id first
        assert rows["Z1"]["Address"] == "Zoë's Cottage, 4 Mill Lane"
        assert rows["Z1"]["Review due"] == "2027-03-02"  # ISO 8601, not "2 March 2027"
        # OWASP CSV Injection: the address arrives as text behind a single quote, never a live formula.
        assert rows["Z2"]["Address"] == "'" + hyperlink
        assert not [c for r in rows.values() for c in r.values() if c.startswith(("=", "+", "-", "@", "\t", "\r"))]

    # A contractor never reads a past review date as "expired": the flag is under review and applies.
    acme = only_digest_on(mail_server, ACME)
    assert acme.rows["Z2"]["Review due"] == "under review"
    for text in (acme.plain, acme.html, acme.csv):
        assert past.isoformat() not in text and f"{past.day} {past:%B %Y}" not in text
    assert "Under review: this still applies." in acme.plain and "Review due 2 March 2027." in acme.plain
    assert "<td>under review</td>" in acme.html and "It still applies" in acme.html
    assert "Zoë Example" not in acme.csv + acme.plain + acme.html  # minimum disclosure unchanged
    # Call handlers still see the date (Karbon 7.3), in the email and the CSV.
    night = only_digest_on(mail_server, NIGHT_DESK)
    assert night.rows["Z2"]["Review due"] == past.isoformat() and night.rows["Z2"]["Name"] == "Sam Sample"
    assert f"Review due {past.day} {past:%B %Y}." in night.plain and "under review" not in night.plain.lower()


# --- exactly once ---------------------------------------------------------------------------------


def test_a_crash_between_acceptance_and_the_mark_never_makes_a_second_message(
    databases, tmp_path, mail_server, monkeypatch
):
    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)
    real_mark_sent = Outbox.mark_sent
    crashed: list[str] = []

    def crash_once(self, message, *, at):
        if not crashed:
            crashed.append(message.recipient_email)
            raise RuntimeError("simulated crash after the server accepted the message")
        return real_mark_sent(self, message, at=at)

    monkeypatch.setattr(Outbox, "mark_sent", crash_once)
    with pytest.raises(RuntimeError, match="simulated crash"):
        run_digests(config, as_of=AS_OF, run_id="crashing", retry=FAST)
    [victim] = crashed
    state = {r["recipient_email"]: r["status"] for r in outbox_rows(databases)}
    assert state[victim] == "sending"  # accepted by the server, not recorded: nothing disclosed yet
    assert victim not in {x["recipient_email"] for x in disclosures(databases)}

    summary = run_digests(config, as_of=AS_OF, run_id="next", retry=FAST)

    assert summary["complete"] and summary["pending"] == 0
    assert {r["status"] for r in outbox_rows(databases)} == {"sent"}
    # The victim got a second copy with the SAME Message-ID: receiving systems drop it.
    assert len(mail_server.handler.messages_for(victim)) == 2
    assert_exactly_once(mail_server)
    per_message = Counter((x["outbox_id"], x["alert_id"]) for x in disclosures(databases))
    assert set(per_message.values()) == {1}  # every disclosure recorded once


def test_acceptances_recorded_together_keep_those_before_a_failure(databases, tmp_path, mail_server, monkeypatch):
    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)
    outbox = Outbox(create_engine(normalise_url(databases.register_url)))
    try:
        assert outbox.acquire_delivery_lock("digest")  # the run below only queues
        run_digests(config, as_of=AS_OF, run_id="queue-only", retry=FAST)
        claimed = outbox.claim("digest", now=MOMENT)
        assert len(claimed) == 3
        real_mark_sent = Outbox.mark_sent

        def fail_on_second(self, message, *, at):
            if message.id == claimed[1].id:
                raise RuntimeError("simulated failure while recording")
            return real_mark_sent(self, message, at=at)

        monkeypatch.setattr(Outbox, "mark_sent", fail_on_second)
        with pytest.raises(RuntimeError, match="simulated failure"):
            outbox.mark_sent_many(claimed, at=MOMENT)
        state = {r["id"]: r["status"] for r in outbox_rows(databases)}
        assert [state[m.id] for m in claimed] == ["sent", "sending", "sending"]
        assert {x["outbox_id"] for x in disclosures(databases)} == {claimed[0].id}

        monkeypatch.setattr(Outbox, "mark_sent", real_mark_sent)
        assert outbox.mark_sent_many(claimed, at=MOMENT) == 2  # the first is not recorded twice
        assert outbox.mark_sent_many(claimed, at=MOMENT) == 0
    finally:
        outbox.release_delivery_lock()
        outbox.close()
        outbox.engine.dispose()
    assert {r["status"] for r in outbox_rows(databases)} == {"sent"}
    per_message = Counter((x["outbox_id"], x["alert_id"]) for x in disclosures(databases))
    assert set(per_message.values()) == {1}


def test_a_server_that_refuses_connections_leaves_digests_pending_until_it_is_back(databases, tmp_path):
    server = MailServer()  # not started: connections are refused
    config = deployment(databases, tmp_path, server.port)
    prepare(databases, config)

    down = run_digests(config, as_of=AS_OF, run_id="down", retry=FAST)

    assert (down["sent"], down["failed"], down["pending"], down["complete"]) == (0, 0, 3, False)
    assert all("connect" in w["error"].lower() for w in down["waiting"]), down["waiting"]
    assert {r["status"] for r in outbox_rows(databases)} == {"pending"}
    assert disclosures(databases) == []  # nothing went, so nothing was disclosed
    server.start()
    try:
        up = run_digests(config, as_of=AS_OF, run_id="up", retry=FAST)
        again = run_digests(config, as_of=AS_OF, run_id="again", retry=FAST)
    finally:
        server.stop()
    assert (up["sent"], up["pending"], up["complete"]) == (3, 0, True)
    assert (again["sent"], again["already_sent"]) == (0, 3)
    assert_exactly_once(server)
    assert len(server.handler.received) == 3


def test_a_connection_dropped_mid_batch_is_resumed(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, smtp={"max_concurrency": 1})
    prepare(databases, config)
    mail_server.handler.drop_after = 1  # one accepted, then the connection goes

    summary = run_digests(config, as_of=AS_OF, run_id="drop", retry=FAST)

    assert mail_server.handler.drops == 1
    assert (summary["sent"], summary["pending"], summary["complete"]) == (3, 0, True)
    assert_exactly_once(mail_server)
    assert len(mail_server.handler.received) == 3


def test_temporary_replies_are_retried_and_then_left_pending(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)
    mail_server.handler.data_replies.extend(["451 4.3.0 Temporary local problem"] * 100)

    busy = run_digests(config, as_of=AS_OF, run_id="busy", retry=FAST)

    assert (busy["sent"], busy["failed"], busy["pending"], busy["complete"]) == (0, 0, 3, False)
    assert {w["error"] for w in busy["waiting"]} == {"451 4.3.0 Temporary local problem"}
    assert {r["status"] for r in outbox_rows(databases)} == {"pending"}

    # The server recovers, apart from a few last hiccups, which the retries absorb.
    mail_server.handler.data_replies.clear()
    mail_server.handler.mail_replies.extend(["421 4.7.0 Too busy, try later", "451 4.7.1 Greylisted"])
    mail_server.handler.data_replies.append("452 4.3.1 Insufficient storage")
    recovered = run_digests(config, as_of=AS_OF, run_id="recovered", retry=FAST)

    assert (recovered["sent"], recovered["pending"], recovered["complete"]) == (3, 0, True)
    assert_exactly_once(mail_server)
    assert len(mail_server.handler.received) == 3


def test_a_permanent_refusal_fails_that_recipient_only_and_is_not_resent(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)
    mail_server.handler.refuse[SOUTHSIDE] = "550 5.1.1 <bookings@southside-gas.example>: Mailbox unavailable"

    summary = run_digests(config, as_of=AS_OF, run_id="refused", retry=FAST)

    assert (summary["sent"], summary["failed"], summary["pending"], summary["complete"]) == (2, 1, 0, False)
    assert summary["failures"] == [{
        "recipient": "Southside Gas", "email": SOUTHSIDE, "as_of": "2026-11-23",
        "error": "550 5.1.1 <bookings@southside-gas.example>: Mailbox unavailable",
    }]
    assert_exactly_once(mail_server, {ACME, NIGHT_DESK})
    failed = [r for r in outbox_rows(databases) if r["status"] == "failed"]
    assert [(r["recipient_email"], r["attempts"]) for r in failed] == [(SOUTHSIDE, 1)]
    assert SOUTHSIDE not in {x["recipient_email"] for x in disclosures(databases)}

    again = run_digests(config, as_of=AS_OF, run_id="rerun", retry=FAST)
    assert (again["sent"], again["failed"], again["already_sent"]) == (0, 1, 2)  # still shown, not resent
    assert len(mail_server.handler.received) == 2


def test_only_one_run_delivers_at_a_time(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)
    other = Outbox(create_engine(normalise_url(databases.register_url)))
    assert other.acquire_delivery_lock("digest")  # another run is delivering
    try:
        skipped = run_digests(config, as_of=AS_OF, run_id="second", retry=FAST)
    finally:
        other.release_delivery_lock()
        other.close()
        other.engine.dispose()
    assert (skipped["queued"], skipped["sent"], skipped["pending"], skipped["delivery"]) == (
        3, 0, 3, "skipped: another run is delivering",
    )
    assert mail_server.handler.received == []

    after = run_digests(config, as_of=AS_OF, run_id="third", retry=FAST)
    assert (after["queued"], after["sent"], after["complete"]) == (0, 3, True)
    assert_exactly_once(mail_server)


# --- TLS ------------------------------------------------------------------------------------------


def make_certificate(folder: Path) -> tuple[Path, Path]:
    """A throwaway self-signed certificate for localhost and 127.0.0.1."""
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "cautionflow test mail server")])
    now = dt.datetime.now(dt.UTC)  # the TLS handshake checks validity against the machine's clock, so must this
    cert = (
        x509.CertificateBuilder()
        .subject_name(name).issuer_name(name).public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(hours=1)).not_valid_after(now + dt.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = folder / "cert.pem", folder / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_file, key_file


def test_starttls_and_login_with_a_self_signed_certificate(databases, tmp_path, monkeypatch, caplog):
    cert_file, key_file = make_certificate(tmp_path)
    server_context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_context.load_cert_chain(cert_file, key_file)
    logins: list[tuple[bytes, bytes]] = []

    def authenticator(server, session, envelope, mechanism, auth_data):
        logins.append((auth_data.login, auth_data.password))
        return AuthResult(success=auth_data.password == b"s3cret-smtp-pw")

    with serving(tls_context=server_context, require_starttls=True, authenticator=authenticator,
                 auth_require_tls=True) as server:
        monkeypatch.setenv("CF_TEST_SMTP_PASSWORD", "s3cret-smtp-pw")
        config = deployment(databases, tmp_path, server.port, smtp={
            "security": "starttls", "username": "cautionflow", "password_env": "CF_TEST_SMTP_PASSWORD"})
        prepare(databases, config)
        client_context = ssl.create_default_context(cafile=str(cert_file))
        caplog.set_level("DEBUG")
        untrusted = run_digests(config, as_of=AS_OF, run_id="untrusted", retry=FAST)  # system CAs only
        trusted = run_digests(config, as_of=AS_OF, run_id="trusted", retry=FAST, tls_context=client_context)

    assert (untrusted["sent"], untrusted["pending"]) == (0, 3)
    assert all("certificate" in w["error"].lower() for w in untrusted["waiting"]), untrusted["waiting"]
    assert (trusted["sent"], trusted["pending"], trusted["complete"]) == (3, 0, True)
    assert all(r.tls and r.authenticated for r in server.handler.received)
    assert_exactly_once(server)
    assert logins and set(logins) == {(b"cautionflow", b"s3cret-smtp-pw")}
    secrets = ("s3cret-smtp-pw", base64.b64encode(b"s3cret-smtp-pw").decode(),
               base64.b64encode(b"\0cautionflow\0s3cret-smtp-pw").decode())
    assert not any(secret in caplog.text for secret in secrets)  # credentials never logged, not even encoded


# --- the command line -----------------------------------------------------------------------------


def test_the_command_prints_its_summary_last_and_exits_3_when_something_failed(tmp_path, mail_server):
    write_sqlite_source(tmp_path / "housing.db", SOURCE)
    config = {
        "organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///register.db",
        "source": {"url": "sqlite:///housing.db"}, "output_dir": "reports",
        "smtp": {"host": "127.0.0.1", "port": mail_server.port, "security": "none",
                 "sender": "Example Homes <alerts@example.org>"},
        "recipients": RECIPIENTS,
    }
    path = tmp_path / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(config))
    env = {**os.environ, "CAUTIONFLOW_HOME": str(tmp_path)}

    def cautionflow(*args):
        return subprocess.run([sys.executable, "-m", "cautionflow", *args], cwd=tmp_path, env=env,
                              capture_output=True, text=True, timeout=120)

    for step in ("sync", "deadlines"):
        assert cautionflow("run", step, "--config", str(path), "--as-of", "2026-11-23").returncode == 0
    mail_server.handler.refuse[SOUTHSIDE] = "550 5.1.1 Mailbox unavailable"
    result = cautionflow("run", "digests", "--config", str(path), "--as-of", "2026-11-23")
    assert result.returncode == 3, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("recipients", "sent", "already_sent", "failed", "pending")} == {
        "recipients": 3, "sent": 2, "already_sent": 0, "failed": 1, "pending": 0,
    }

    mail_server.handler.refuse.clear()
    path.write_text(yaml.safe_dump({**config, "recipients": [r for r in RECIPIENTS if r["email"] != SOUTHSIDE]}))
    fine = cautionflow("run", "digests", "--config", str(path), "--as-of", "2026-11-23")
    assert fine.returncode == 0, fine.stdout + fine.stderr
    assert json.loads(fine.stdout.strip().splitlines()[-1])["already_sent"] == 2


def test_resend_failed_sends_the_latest_refused_digest_once_the_mailbox_is_fixed(tmp_path, mail_server, capsys):
    from cautionflow.config import load_config

    path = command_config(tmp_path, mail_server.port)
    config = load_config(path)
    mail_server.handler.refuse[SOUTHSIDE] = "550 5.1.1 <bookings@southside-gas.example>: Mailbox unavailable"
    for day in (AS_OF, AS_OF + dt.timedelta(days=1)):  # refused two days running
        run_sync(config, as_of=day, run_id=f"sync-{day}")
        run_deadlines(config, as_of=day, run_id=f"deadlines-{day}")
        assert run_digests(config, as_of=day, run_id=f"digests-{day}", retry=FAST)["failed"] == 1

    code, still = resend_failed(capsys, path)  # not fixed yet: tried once more, refused again
    assert code == 3
    assert (still["requeued"], still["retired"], still["sent"], still["failed"]) == (1, 1, 0, 1)
    assert still["failures"][0]["error"].startswith("550 5.1.1")
    assert still["retired_messages"][0]["as_of"] == "2026-11-23"  # the day after's digest replaces it

    mail_server.handler.refuse.clear()  # the contractor's mailbox is back
    code, preview = resend_failed(capsys, path, "--dry-run")
    assert code == 0 and (preview["requeued"], preview["sent"]) == (1, 0)
    assert mail_server.handler.messages_for(SOUTHSIDE) == []
    code, fixed = resend_failed(capsys, path, "--since", "2026-11-24")

    assert code == 0, fixed
    assert (fixed["requeued"], fixed["retired"], fixed["sent"], fixed["failed"], fixed["pending"]) == (1, 0, 1, 0, 0)
    [message] = mail_server.handler.messages_for(SOUTHSIDE)  # one digest, the latest, exactly once
    assert message["X-Cautionflow-As-Of"] == "2026-11-24"
    plain = text_of(message.get_body(("plain",)))
    assert "5 Mill Lane" in plain and "9 Quay Street" in plain and "Larkspur" not in plain
    assert not any(secret in plain for secret in ("NOTE-SECRET", *NAMES))
    told = {(x["recipient_email"], x["disclosed_on"]) for x in disclosures_at(tmp_path)}
    assert (SOUTHSIDE, dt.date(2026, 11, 24)) in told and (SOUTHSIDE, dt.date(2026, 11, 23)) not in told

    code, again = resend_failed(capsys, path)
    assert code == 0 and (again["requeued"], again["retired"], again["sent"]) == (0, 0, 0)
    rerun = run_digests(config, as_of=AS_OF + dt.timedelta(days=1), run_id="rerun", retry=FAST)
    assert (rerun["sent"], rerun["already_sent"], rerun["failed"], rerun["complete"]) == (0, 3, 0, True)
    assert len(mail_server.handler.messages_for(SOUTHSIDE)) == 1


def test_resend_failed_never_sends_to_an_address_corrected_in_the_config(tmp_path, mail_server, capsys):
    from cautionflow.config import load_config

    path = command_config(tmp_path, mail_server.port)
    config = load_config(path)
    run_sync(config, as_of=AS_OF, run_id="sync")
    run_deadlines(config, as_of=AS_OF, run_id="deadlines")
    mail_server.handler.refuse[SOUTHSIDE] = "550 5.1.1 Mailbox unavailable"
    assert run_digests(config, as_of=AS_OF, run_id="refused", retry=FAST)["failed"] == 1
    mail_server.handler.refuse.clear()
    corrected = "gas-jobs@southside-gas.example"
    recipients = [{**r, "email": corrected} if r["email"] == SOUTHSIDE else r for r in RECIPIENTS]
    path = command_config(tmp_path, mail_server.port, recipients)

    code, summary = resend_failed(capsys, path)

    assert code == 0, summary
    assert (summary["requeued"], summary["retired"], summary["sent"]) == (0, 1, 0)
    assert "no longer a digest recipient" in summary["retired_messages"][0]["reason"]
    assert mail_server.handler.messages_for(SOUTHSIDE) == []
    assert {r["recipient_email"]: r["status"] for r in outbox_rows_at(tmp_path)}[SOUTHSIDE] == "superseded"
    after = run_digests(load_config(path), as_of=AS_OF, run_id="corrected", retry=FAST)
    assert (after["queued"], after["sent"], after["already_sent"], after["failed"]) == (1, 1, 2, 0)
    assert_exactly_once(mail_server, {ACME, NIGHT_DESK, corrected})


# --- Airflow --------------------------------------------------------------------------------------


def test_the_digests_dag_runs_after_deadlines_with_an_async_task():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "cautionflow_digests.py")).dags[
        "cautionflow_digests"
    ]
    assert [a.uri for a in dag.timetable.asset_condition.objects] == ["x-cautionflow://deadlines"]
    task = dag.get_task("send_digests")
    assert [o.uri for o in task.outlets] == ["x-cautionflow://digests"]
    assert task.is_async  # runs in an event loop on the worker (Airflow 3.x async PythonOperator)
    assert task.retries >= 1


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> dict[str, str]:
    return migrated_airflow(tmp_path_factory.mktemp("airflow_digests"))


@pytest.mark.airflow
def test_airflow_sends_the_digests_with_the_smtp_connection(airflow_home, tmp_path, mail_server):
    write_sqlite_source(tmp_path / "housing.db", SOURCE)
    config = {
        "organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///register.db",
        "source": {"url": "sqlite:///housing.db"}, "output_dir": "reports",
        # The file names no usable server: the Airflow connection supplies the port and the password.
        "smtp": {"host": "127.0.0.1", "port": 9, "security": "none", "sender": "Example Homes <alerts@example.org>"},
        "recipients": RECIPIENTS,
    }
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(config))
    env = {**airflow_home, "CAUTIONFLOW_HOME": str(tmp_path),
           "AIRFLOW_VAR_CAUTIONFLOW_CONFIG": str(tmp_path / "cautionflow.yaml"),
           "AIRFLOW_CONN_CAUTIONFLOW_SMTP": json.dumps({
               "conn_type": "smtp", "host": "127.0.0.1", "port": mail_server.port, "password": "airflow-conn-pw-1",
               "extra": {"security": "none"}})}
    for step in ("sync", "deadlines"):
        ran = subprocess.run([sys.executable, "-m", "cautionflow", "run", step, "--config", "cautionflow.yaml",
                              "--as-of", "2026-11-23"], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120)
        assert ran.returncode == 0, ran.stderr

    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", "cautionflow_digests", "2026-11-23"],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )

    log_text = result.stdout + result.stderr
    assert result.returncode == 0, log_text[-4000:]
    assert "'sent': 3" in log_text and "state=success" in log_text
    assert_exactly_once(mail_server)
    assert "airflow-conn-pw-1" not in log_text
