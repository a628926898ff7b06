"""Issue 18, findings 3, 4 and 7's 12 MB: one hostile value never stops the day, on SQLite and
PostgreSQL, against a real SMTP server (aiosmtpd). Synthetic data only.

Policies README, "Principles": a warning about a risk to staff always reaches the people who visit,
so a row with a hostile value is kept (cleaned and flagged), never the reason a sync, a dispatch or
the day's digests fail.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.adapters.letters import LetterQueue
from cautionflow.adapters.mail import SmtpSettings
from cautionflow.adapters.register import Register
from cautionflow.cli import main
from cautionflow.clock import FixedClock
from cautionflow.services.letter_dispatch import dispatch_letters
from cautionflow.steps import run_deadlines, run_digests, run_letters, run_sync
from tests.deployment import FAST, deployment, write_config
from tests.smtp_server import serving
from tests.support import AS_OF, alert_row, write_sqlite_source

CLOCK_AT = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)
ATTACKER = "attacker@evil.example"


def stored_alerts(register_url: str) -> dict[str, dict]:
    engine = create_engine(normalise_url(register_url))
    try:
        with engine.connect() as conn:
            return {r.alert_id: r._asdict() for r in conn.execute(select(schema.alerts))}
    finally:
        engine.dispose()


def prepare(databases, config, rows, clock, as_of=AS_OF) -> dict:
    databases.write_source(rows)
    summary = run_sync(config, as_of=as_of, run_id=f"sync-{as_of}", clock=clock)
    run_deadlines(config, as_of=as_of, run_id=f"deadlines-{as_of}")
    return summary


# --- finding 4: one NUL byte ------------------------------------------------------------------------


def test_a_nul_byte_is_stripped_and_flagged_on_the_first_load_and_on_a_later_sync(databases, tmp_path):
    # The probe's housing database held the byte; PostgreSQL cannot even store it, so the source is a
    # SQLite file here on both backends and the register is the backend under test. The first sync
    # into an empty register takes the first-load path (COPY text on PostgreSQL), the second the merge.
    source = tmp_path / "housing-with-nul.db"
    dbs = dataclasses.replace(databases, source_url=f"sqlite:///{source}",
                              _writer=lambda rows: write_sqlite_source(source, rows))
    config = deployment(dbs, tmp_path, 25, recipients=[])
    clock = FixedClock(CLOCK_AT)
    first = [
        alert_row(alert_id="CLEAN", person_ref="P1", person_name="Clara Clean"),
        alert_row(alert_id="NUL1", person_ref="P2", person_name="Nina\x00 Nul", asset_ref="H0002",
                  note="Shouted at\x00 an operative.\r\nSecond line."),
    ]
    summary = prepare(dbs, config, first, clock)

    assert (summary["read"], summary["quarantined"], summary["flagged"]) == (2, 0, 1), summary
    stored = stored_alerts(dbs.register_url)
    assert stored["NUL1"]["person_name"] == "Nina Nul"
    assert stored["NUL1"]["note"] == "Shouted at an operative.\nSecond line."  # a note keeps its lines
    assert stored["NUL1"]["dq_flags"] == (
        "person_name: control characters removed; note: control characters removed")
    assert stored["CLEAN"]["dq_flags"] is None

    # The next day a new weapons alert arrives with the byte in its name and its area: it is in the
    # register that day (the probe's lost WPN), and the earlier rows are untouched.
    wpn = alert_row(alert_id="WPN1", alert_code="WPN", person_ref="P3", person_name="Walt\x00er Weapon",
                    area="NORTH\x00", asset_ref="H0003", updated_at="2026-11-24T08:00:00")
    later = prepare(dbs, config, [*first, wpn], clock.advance(days=1), as_of=AS_OF + dt.timedelta(days=1))

    assert later["read"] == 3, later
    stored = stored_alerts(dbs.register_url)
    assert (stored["WPN1"]["person_name"], stored["WPN1"]["area"], stored["WPN1"]["register_state"]) == (
        "Walter Weapon", "NORTH", "active")
    assert stored["WPN1"]["dq_flags"] == (
        "person_name: control characters removed; area: control characters removed")
    assert not any("\x00" in str(value) for row in stored.values() for value in row.values())


# --- finding 7: a 12 MB free-text value -----------------------------------------------------------------


def test_a_12_mb_value_is_capped_and_flagged_and_every_digest_still_goes(databases, tmp_path):
    # The probe's server refused the two digests that carried it (552). Contractor digests carry the
    # address; the out-of-hours desk's also the name (Karbon 7.3); none carries the note.
    with serving(data_size_limit=1_048_576) as server:  # answers 552 to a message over 1 MiB
        huge = "x" * (12 * 1024 * 1024)
        recipients = [
            {"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor", "areas": ["NORTH"]},
            {"name": "Night Desk", "email": "ooh@callcentre.example", "role": "out_of_hours"},
        ]
        config = deployment(databases, tmp_path, server.port, recipients=recipients)
        clock = FixedClock(CLOCK_AT)
        rows = [
            alert_row(alert_id="NOTE", person_ref="P1", asset_ref="H1", note="Long. " + huge),
            alert_row(alert_id="ADDR", person_ref="P2", asset_ref="H2", address="2 Long Road " + huge),
            alert_row(alert_id="NAME", person_ref="P3", asset_ref="H3", person_name="Nell " + huge),
        ]
        prepare(databases, config, rows, clock)

        summary = run_digests(config, as_of=AS_OF, run_id="digests-12mb", retry=FAST, clock=clock)

        assert (summary["sent"], summary["failed"], summary["complete"]) == (2, 0, True), summary
        received = {r.recipient: r.message for r in server.handler.received}
        assert set(received) == {"rota@acme.example", "ooh@callcentre.example"}
        assert all(len(m.as_bytes()) < 1_048_576 for m in received.values())
        assert "2 Long Road xxx" in received["rota@acme.example"].as_string()
        stored = stored_alerts(databases.register_url)
        assert len(stored["NOTE"]["note"]) == 8_000 and stored["NOTE"]["note"].startswith("Long. xxx")
        assert len(stored["ADDR"]["address"]) == 500 and len(stored["NAME"]["person_name"]) == 200
        assert stored["NOTE"]["dq_flags"] == "note: longer than 8000 characters, only the first 8000 kept"
        assert stored["ADDR"]["dq_flags"] == "address: longer than 500 characters, only the first 500 kept"
        assert stored["NAME"]["dq_flags"] == "person_name: longer than 200 characters, only the first 200 kept"


# --- finding 3: one CR/LF or quote in a resident's name ---------------------------------------------------


CARLA = alert_row(alert_id="CRLF", person_ref="P1", person_name=f"Carla Crlf\r\nBcc: {ATTACKER}",
                  address="1 Ash Row", effective_from="2026-11-20", preferred_channel="email",
                  email="carla@example.com")
QUINN = alert_row(alert_id="QUOTE", person_ref="P2", person_name=f'Quinn "Q" O\'Neil, <{ATTACKER}>',
                  address="2 Ash Row", effective_from="2026-11-20", preferred_channel="email",
                  email="quinn@example.com")
PAT = alert_row(alert_id="POST", person_ref="P3", person_name="Pat Post", address="3 Ash Row",
                effective_from="2026-11-20")
BEA = alert_row(alert_id="BADMAIL", person_ref="P4", person_name="Bea Bad", address="4 Ash Row",
                effective_from="2026-11-20", preferred_channel="email", email=f"bea@example.com, {ATTACKER}")


def letters_config(databases, tmp_path, port, **letters):
    return deployment(databases, tmp_path, port, recipients=[], policy="teign",
                      letters={"output_dir": str(tmp_path / "letters"), **letters})


def letters_of(databases):
    register = Register(databases.register_url)
    try:
        return {x.alert_id: x for x in LetterQueue(register.engine).list()}
    finally:
        register.dispose()


def dispatch(databases, config, clock):
    register = Register(databases.register_url)
    try:
        return asyncio.run(dispatch_letters(
            register, SmtpSettings.from_config(config.smtp), organisation=config.organisation,
            output_dir=config.path(config.letters.output_dir), retry=FAST, clock=clock,
        )).as_dict()
    finally:
        register.dispose()


def batch_files(tmp_path: Path) -> list[str]:
    return sorted(p.name for p in (tmp_path / "letters" / "dispatch").glob("print-batch-*"))


def test_hostile_names_add_no_address_and_one_bad_letter_stops_no_other(databases, tmp_path, mail_server):
    config = letters_config(databases, tmp_path, mail_server.port)
    clock = FixedClock(CLOCK_AT)
    prepare(databases, config, [CARLA, QUINN, PAT, BEA], clock)
    stored = stored_alerts(databases.register_url)
    # Cleaned and flagged at validation; a quote and a comma are a name's own characters.
    assert stored["CRLF"]["person_name"] == f"Carla Crlf Bcc: {ATTACKER}"
    assert stored["CRLF"]["dq_flags"] == "person_name: control characters removed"
    assert (stored["QUOTE"]["person_name"], stored["QUOTE"]["dq_flags"]) == (QUINN["person_name"], None)

    assert run_letters(config, as_of=AS_OF, run_id="letters-1", clock=clock)["queued"] == 4
    register = Register(databases.register_url)
    LetterQueue(register.engine).approve(now=clock(), batch=AS_OF)
    register.dispose()

    first = dispatch(databases, config, clock.advance(minutes=5))

    # Bea's address is two addresses: her letter stays approved with the reason; the others go.
    assert (first["printed"], first["emailed"], first["sent"]) == (1, 2, 2), first
    assert (first["not_dispatched"], first["complete"]) == (1, False)
    [problem] = first["problems"]
    assert problem["alert_id"] == "BADMAIL" and "is not one email address" in problem["reason"]
    letters = letters_of(databases)
    assert {k: v.status for k, v in letters.items()} == {
        "CRLF": "dispatched", "QUOTE": "dispatched", "POST": "dispatched", "BADMAIL": "approved"}
    assert letters["BADMAIL"].hold_reason.startswith("not emailed: ")

    # Exactly one mailbox in each To header, and nothing ever reached the attacker.
    assert {r.recipient for r in mail_server.handler.received} == {"carla@example.com", "quinn@example.com"}
    [carla] = mail_server.handler.messages_for("carla@example.com")
    [quinn] = mail_server.handler.messages_for("quinn@example.com")
    for message, address in ((carla, "carla@example.com"), (quinn, "quinn@example.com")):
        [to] = message["To"].addresses
        assert to.addr_spec == address
        assert message["Bcc"] is None and message["Cc"] is None
        assert ATTACKER not in {a.addr_spec for header in ("To", "Cc", "Bcc") for a in
                                getattr(message[header], "addresses", ())}
    assert carla["To"].addresses[0].display_name == f"Carla Crlf Bcc: {ATTACKER}"
    assert quinn["To"].addresses[0].display_name == QUINN["person_name"]  # the name whole, as one mailbox

    # A rerun writes no second print batch, sends nothing twice, and still reports Bea's letter.
    assert len(batch_files(tmp_path)) == 2  # one PDF and its manifest
    again = dispatch(databases, config, clock.advance(minutes=5))
    assert (again["printed"], again["emailed"], again["sent"], again["not_dispatched"]) == (0, 0, 0, 1), again
    assert len(batch_files(tmp_path)) == 2
    assert len(mail_server.handler.received) == 2


def test_a_dispatch_that_died_mid_batch_is_finished_under_the_same_batch_not_a_second(
    databases, tmp_path, mail_server
):
    # Dover 6.12: post and, where possible, email. A dispatch that died after giving its letters a
    # batch (say, killed while writing the PDF) leaves them naming it; the next writes that batch.
    config = deployment(databases, tmp_path, mail_server.port, recipients=[], policy="dover",
                        letters={"output_dir": str(tmp_path / "letters")})
    clock = FixedClock(CLOCK_AT)
    both = {**PAT, "alert_id": "BOTH", "email": "dana@example.com"}
    prepare(databases, config, [PAT, both], clock)
    run_letters(config, as_of=AS_OF, run_id="letters-1", clock=clock)
    register = Register(databases.register_url)
    queue = LetterQueue(register.engine)
    queue.approve(now=clock(), batch=AS_OF)
    ids = [x.id for x in queue.list(status="approved")]
    assert queue.claim_for_print(ids, "print-batch-20261123T060000000000Z.pdf") == 2
    register.dispose()

    result = dispatch(databases, config, clock.advance(hours=1))

    assert (result["printed"], result["sent"], result["complete"]) == (2, 1, True), result
    assert Path(result["print_batch"]).name == "print-batch-20261123T060000000000Z.pdf"
    assert batch_files(tmp_path) == ["print-batch-20261123T060000000000Z-manifest.csv",
                                     "print-batch-20261123T060000000000Z.pdf"]
    letters = letters_of(databases)
    assert {x.status for x in letters.values()} == {"dispatched"}
    assert letters["BOTH"].dispatch_ref.startswith("print-batch-20261123T060000000000Z.pdf; <")
    assert dispatch(databases, config, clock.advance(hours=1))["printed"] == 0
    assert len(batch_files(tmp_path)) == 2


def test_run_all_goes_on_to_the_digests_past_a_letter_it_cannot_send(databases, tmp_path, mail_server, capsys):
    # The probe: one CR/LF in a name stopped `run all` before the digests, so no contractor heard
    # of that day's warnings (policies README, "Principles": safety first).
    config_file = tmp_path / "cautionflow.yaml"
    recipients = [{"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor", "areas": ["NORTH"]}]
    config = letters_config(databases, tmp_path, mail_server.port, auto_approve=True)
    config = config.model_copy(update={"recipients": deployment(
        databases, tmp_path, mail_server.port, recipients=recipients).recipients})
    write_config(config, tmp_path)
    databases.write_source([CARLA, BEA])

    code = main(["run", "all", "--config", str(config_file), "--as-of", AS_OF.isoformat()])

    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    assert code == 3  # Bea's letter is left undone, and says so
    assert summary["letters"]["dispatch"]["not_dispatched"] == 1
    assert summary["digests"]["sent"] == 1
    assert len(mail_server.handler.messages_for("rota@acme.example")) == 1
    assert len(mail_server.handler.messages_for("carla@example.com")) == 1
    assert ATTACKER not in {r.recipient for r in mail_server.handler.received}


@pytest.mark.parametrize("name", ["Zo\u00eb Z\u00fcrich", "A\u202eB", "\udcffSurrogate"])
def test_any_name_gives_one_mailbox_in_a_built_message(name):
    # The hand-built messages (digests, reminders, operations notices) share the same header helper.
    import email
    from email import policy

    from cautionflow.adapters.mail import build_message

    raw = build_message(
        sender="Example Homes <alerts@example.org>", to_name=f"{name}\r\nBcc: {ATTACKER}, \"x\" <{ATTACKER}>",
        to_email="desk@example.org", subject="s", message_id="<1@example.org>", date=CLOCK_AT, text="t",
    )
    message = email.message_from_string(raw, policy=policy.default)
    [to] = message["To"].addresses
    assert to.addr_spec == "desk@example.org" and message["Bcc"] is None
    assert raw.isascii()


@pytest.mark.parametrize("email", [f"bea@example.com, {ATTACKER}", f"Bea <{ATTACKER}>", "bea@example.com\r\nBcc: x@y.z",
                                   "no-at-sign", "", "b\u00e9a@example.com", "a b@example.com"])
def test_what_is_not_one_address_is_refused_not_sent(email):
    from cautionflow.adapters.mail import safe_address

    with pytest.raises(ValueError, match="is not one email address"):
        safe_address("Bea Bad", email)
