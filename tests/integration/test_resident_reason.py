"""The reason for the resident (issue 14) end to end on SQLite and PostgreSQL: the source contract's
optional `resident_reason` through the sync, with and without the column; printed in every decision
letter and read back from its PDF (Hexagon 5.3: "explaining the reason for giving the cautionary
contact status"; Karbon 5.2: the incident(s) which led to the inclusion; Teign Appendix E: "Reason
for Decision", "Basis for the Decision"); a letter owed without one held and on the officers' flags
list until a later sync brings it; and never the internal `note` (minimum disclosure). Synthetic
data only."""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.adapters.register import Register
from cautionflow.config import parse_config
from cautionflow.domain.contract import SOURCE_COLUMNS
from cautionflow.steps import run_letters, run_sync
from tests.deployment import cli, letters_config, prepare, queued, translated_pdf, write_config
from tests.support import AS_OF, REPO, alert_row, pdf_text

NEXT_DAY = AS_OF + dt.timedelta(days=1)
TOLD = {"effective_from": "2025-11-01", "notified_on": "2025-11-02"}
NOTE = "NOTE-SECRET"  # every row's internal note starts with it: no letter may carry it


def reason(alert_id: str) -> str:
    return f"REASON-{alert_id}: on 14 November 2026 you shouted at our repairs operative at your door."


# One letter of each kind (Teign: every code here needs a decision letter, Teign 7), each alert
# with its own reason for the resident and its own internal note.
ROWS = [
    alert_row(alert_id="ADD", person_ref="P1", person_name="Alex Added", effective_from="2026-11-20"),
    alert_row(alert_id="KEPT", person_ref="P3", person_name="Kim Kept", address="3 Quay Street",
              last_reviewed_on="2026-11-02", review_outcome="retained", **TOLD),
    alert_row(alert_id="GONE", person_ref="P4", person_name="Rory Removed", address="4 Ash Row", status="ended",
              last_reviewed_on="2026-11-05", review_outcome="removed", **TOLD),
    alert_row(alert_id="UPHELD", person_ref="P5", person_name="Uma Upheld", address="5 Elm Road", status="ended",
              effective_from="2026-10-01", notified_on="2026-10-02", appeal_received_on="2026-10-05",
              appeal_decided_on="2026-10-20", appeal_outcome="upheld"),
    alert_row(alert_id="KEEP", person_ref="P6", person_name="Dee Dismissed", address="6 Oak Road",
              effective_from="2026-10-01", notified_on="2026-10-02", appeal_received_on="2026-10-05",
              appeal_decided_on="2026-11-10", appeal_outcome="dismissed"),
]
ROWS = [{**r, "resident_reason": reason(r["alert_id"]), "note": f"{NOTE}-{r['alert_id']} kicked the door"}
        for r in ROWS]
KINDS = {"ADD": "alert_added", "KEPT": "review_kept", "GONE": "review_removed", "UPHELD": "appeal_upheld",
         "KEEP": "appeal_dismissed"}


def stored_alerts(databases) -> dict[str, dict]:
    engine = create_engine(normalise_url(databases.register_url))
    with engine.connect() as conn:
        rows = {r.alert_id: r._asdict() for r in conn.execute(select(schema.alerts))}
    engine.dispose()
    return rows


def history(databases) -> list[dict]:
    engine = create_engine(normalise_url(databases.register_url))
    with engine.connect() as conn:
        rows = [r._asdict() for r in conn.execute(select(schema.alert_history).order_by(schema.alert_history.c.id))]
    engine.dispose()
    return rows


def letters_table(databases) -> list[tuple]:
    """Every letter row, as stored: a rerun must leave it exactly as it was."""
    engine = create_engine(normalise_url(databases.register_url))
    with engine.connect() as conn:
        rows = [tuple(r) for r in conn.execute(select(schema.letters).order_by(schema.letters.c.id))]
    engine.dispose()
    return rows


def files(folder: Path) -> dict[str, str]:
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def open_flags(config) -> list[tuple[str, str, str]]:
    from cautionflow.steps.letters import officer_flags

    return [(f.alert_id, f.flag, f.reason) for f in officer_flags(config, include_resolved=False)]


# --- the sync ----------------------------------------------------------------------------------------


def test_the_sync_keeps_the_reason_and_a_query_without_the_column_still_syncs(databases, tmp_path):
    config = letters_config(databases, tmp_path, 25)
    rows = [*ROWS, alert_row(alert_id="LINES", person_ref="P9", resident_reason="First line.\r\nSecond line.\x1b"),
            alert_row(alert_id="LONG", person_ref="P10", resident_reason="x" * 2_500)]
    databases.write_source(rows)
    first = run_sync(config, as_of=AS_OF, run_id="sync-1")
    assert (first["inserted"], first["quarantined"]) == (7, 0)
    stored = stored_alerts(databases)
    assert stored["ADD"]["resident_reason"] == reason("ADD")
    # Multi-line free text like the note: it keeps its line breaks, loses other control characters.
    assert stored["LINES"]["resident_reason"] == "First line.\nSecond line."
    assert stored["LINES"]["dq_flags"] == "resident_reason: control characters removed"
    assert len(stored["LONG"]["resident_reason"]) == 2_000  # the documented cap, flagged
    assert "resident_reason: longer than 2000 characters" in stored["LONG"]["dq_flags"]

    # The same rows through a query that does not return the column (a landlord who records no
    # reason yet): it still syncs, the column read as empty for every row; only the alerts that had
    # a reason change, and the history says what changed.
    query = tmp_path / "no_reason.sql"
    query.write_text("SELECT " + ", ".join(c for c in SOURCE_COLUMNS if c != "resident_reason")
                     + " FROM caution_alerts_export")
    without = parse_config({**config.model_dump(mode="json", exclude={"home"}),
                            "source": {"url": databases.source_url, "query": str(query)}}, home=REPO)
    second = run_sync(without, as_of=NEXT_DAY, run_id="sync-2")
    assert (second["read"], second["updated"], second["unchanged"], second["quarantined"]) == (7, 7, 0, 0)
    assert {a["resident_reason"] for a in stored_alerts(databases).values()} == {None}
    changes = [json.loads(h["changed_fields"]) for h in history(databases) if h["run_id"] == "sync-2"]
    assert len(changes) == 7 and all(list(c) == ["resident_reason"] for c in changes)
    assert {c["resident_reason"][1] for c in changes} == {None}
    again = run_sync(without, as_of=NEXT_DAY, run_id="sync-3")
    assert (again["updated"], again["unchanged"]) == (0, 7)  # idempotent without the column too


def test_a_register_of_alerts_without_reasons_is_unchanged_by_the_new_column(databases, tmp_path):
    """Alerts with no reason keep the fingerprint they had before the column existed, so the first sync
    after the upgrade does not rewrite (and re-history) every alert of a landlord who records none."""
    config = letters_config(databases, tmp_path, 25)
    query = tmp_path / "no_reason.sql"
    query.write_text("SELECT " + ", ".join(c for c in SOURCE_COLUMNS if c != "resident_reason")
                     + " FROM caution_alerts_export")
    without = parse_config({**config.model_dump(mode="json", exclude={"home"}),
                            "source": {"url": databases.source_url, "query": str(query)}}, home=REPO)
    databases.write_source([{**r, "resident_reason": None} for r in ROWS])
    assert run_sync(without, as_of=AS_OF, run_id="without")["inserted"] == 5
    # The column returned, empty: nothing changed.
    assert run_sync(config, as_of=AS_OF, run_id="with-empty")["unchanged"] == 5


# --- the letters ---------------------------------------------------------------------------------------


def test_every_decision_letter_gives_the_reason_and_never_the_note(databases, tmp_path, mail_server, capsys):
    config = letters_config(databases, tmp_path, mail_server.port)
    mail = {**ROWS[0], "alert_id": "MAIL", "person_ref": "P2", "person_name": "Erin Email", "address": "2 Mill Lane",
            "preferred_channel": "email", "email": "erin@example.com", "resident_reason": reason("MAIL"),
            "note": f"{NOTE}-MAIL bit the postman"}
    prepare(databases, config, rows=[*ROWS, mail])

    summary = run_letters(config, as_of=AS_OF, run_id="letters-1")
    assert (summary["queued"], summary["held"]) == (6, 0)
    letters = queued(databases)
    assert {k: v.kind for k, v in letters.items()} == {**KINDS, "MAIL": "alert_added"}
    register = Register(databases.register_url)
    try:
        for alert_id, letter in letters.items():
            html = register.letter_queue.html(letter.id)
            text = pdf_text(tmp_path / "letters" / letter.pdf_path)
            # Hexagon 5.3, Karbon 5.2, Teign Appendix E: the reason is in the letter, HTML and PDF alike.
            assert "Why we have made this decision" in text and reason(alert_id) in text, alert_id
            assert reason(alert_id) in html, alert_id
            assert NOTE not in html and NOTE not in text, alert_id  # the note never leaves the register
    finally:
        register.dispose()

    # The emailed letter too: neither the message nor its attachment carries the note.
    path = write_config(config, tmp_path)
    assert cli(capsys, "letters", "approve", "--config", path, "--batch", AS_OF.isoformat(),
               "--as-of", AS_OF.isoformat())[0] == 0
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", AS_OF.isoformat())
    assert code == 0, out
    [message] = mail_server.handler.messages_for("erin@example.com")
    assert NOTE not in message.as_string()
    [attachment] = list(message.iter_attachments())
    emailed = pdf_text(io.BytesIO(attachment.get_content()))
    assert reason("MAIL") in emailed and NOTE not in emailed
    assert NOTE not in pdf_text(json.loads(out.splitlines()[-1])["print_batch"])


def test_a_letter_owed_without_a_reason_is_held_flagged_and_released_by_a_later_sync(
    databases, tmp_path, mail_server, capsys
):
    config = letters_config(databases, tmp_path, mail_server.port)
    day_one = [{**ROWS[0], "resident_reason": None}, ROWS[1]]
    prepare(databases, config, rows=day_one)

    first = run_letters(config, as_of=AS_OF, run_id="letters-1")
    assert (first["queued"], first["held"], first.get("released")) == (2, 1, 0)
    letters = queued(databases)
    assert (letters["ADD"].status, letters["ADD"].hold_reason) == ("held", "no reason recorded for the resident")
    assert letters["KEPT"].status == "queued"
    held_pdf = tmp_path / "letters" / letters["ADD"].pdf_path
    assert "Why we have made this decision" not in pdf_text(held_pdf)
    # On the officers' flags list while it is held (and nothing else is).
    assert open_flags(config) == [
        ("ADD", "resident_reason_missing", "decision letter held: no reason recorded for the resident")]
    path = write_config(config, tmp_path)
    code, out = cli(capsys, "letters", "approve", "--config", path, "--batch", AS_OF.isoformat(),
                    "--as-of", AS_OF.isoformat())
    assert (code, json.loads(out.splitlines()[-1])["approved"]) == (0, 1)  # a held letter is never approved

    # Day 2: the housing system now holds the reason; the sync brings it and the letter goes.
    prepare(databases, config, rows=ROWS[:2], as_of=NEXT_DAY)
    second = run_letters(config, as_of=NEXT_DAY, run_id="letters-2")
    assert (second["queued"], second["released"]) == (0, 1)
    released = queued(databases)["ADD"]
    assert (released.status, released.hold_reason, released.batch) == ("queued", None, NEXT_DAY)
    assert released.id == letters["ADD"].id and released.letter_key == letters["ADD"].letter_key
    text = pdf_text(tmp_path / "letters" / released.pdf_path)
    assert "Why we have made this decision" in text and reason("ADD") in text
    assert "24 November 2026" in text  # dated the day it was released, not the day it was held
    assert Path(released.pdf_path).name == Path(letters["ADD"].pdf_path).name  # the same file name
    assert not held_pdf.exists()  # the letter without its reason is gone, so it cannot be sent by mistake
    assert open_flags(config) == []  # the flag resolves with the hold

    # A rerun changes nothing: no letter row, no file.
    before, written = letters_table(databases), files(tmp_path / "letters")
    again = run_letters(config, as_of=NEXT_DAY, run_id="letters-3")
    assert (again["queued"], again["released"]) == (0, 0)
    assert letters_table(databases) == before and files(tmp_path / "letters") == written

    code, out = cli(capsys, "letters", "approve", "--config", path, "--batch", NEXT_DAY.isoformat(),
                    "--as-of", NEXT_DAY.isoformat())
    assert (code, json.loads(out.splitlines()[-1])["approved"]) == (0, 1)  # in the day it was released


def test_a_letter_held_for_a_reason_and_a_translation_waits_for_both(databases, tmp_path, mail_server):
    from cautionflow.services.letters import TranslationError
    from cautionflow.steps.letters import attach_translated_letter

    config = letters_config(databases, tmp_path, mail_server.port)
    polish = {**ROWS[0], "language": "pl", "resident_reason": None}
    prepare(databases, config, rows=[polish])
    run_letters(config, as_of=AS_OF, run_id="letters-1")
    held = queued(databases)["ADD"]
    # The reason first: a translation is of the whole letter, reason included (Karbon 12).
    assert held.hold_reason == "no reason recorded for the resident"
    translation = translated_pdf(tmp_path / "pl.pdf", "Tlumaczenie")
    with pytest.raises(TranslationError, match="not held for translation"):
        attach_translated_letter(config, letter_id=held.id, file=translation)

    prepare(databases, config, rows=[{**polish, "resident_reason": reason("ADD")}], as_of=NEXT_DAY)
    assert run_letters(config, as_of=NEXT_DAY, run_id="letters-2")["released"] == 1
    waiting = queued(databases)["ADD"]
    assert (waiting.status, waiting.hold_reason) == ("held", "translation needed (pl)")
    assert reason("ADD") in pdf_text(tmp_path / "letters" / waiting.pdf_path)
    assert open_flags(config) == []  # nothing more for the reason: the translation hold is the queue's
    attached = attach_translated_letter(config, letter_id=held.id, file=translation)
    assert (attached.status, attached.hold_reason) == ("queued", None)


def test_with_auto_approve_a_released_letter_is_dispatched_the_day_its_reason_arrives(
    databases, tmp_path, mail_server
):
    from tests.deployment import FAST

    config = letters_config(databases, tmp_path, mail_server.port, auto_approve=True)
    prepare(databases, config, rows=[{**ROWS[0], "resident_reason": None}])
    first = run_letters(config, as_of=AS_OF, run_id="letters-1", retry=FAST)
    assert (first["held"], first["dispatched"]) == (1, 0)

    prepare(databases, config, rows=[ROWS[0]], as_of=NEXT_DAY)
    second = run_letters(config, as_of=NEXT_DAY, run_id="letters-2", retry=FAST)
    assert (second["released"], second["dispatched"]) == (1, 1)
    letter = queued(databases)["ADD"]
    assert letter.status == "dispatched"
    assert reason("ADD") in pdf_text(second["dispatch"]["print_batch"])


def test_the_reason_is_for_the_resident_alone_never_in_a_digest(databases, tmp_path, mail_server):
    """Minimum disclosure (policies README, "Principles"): contractors see where and what to do; the
    reason told to the resident narrates an incident, so no digest carries it (Karbon 7.3: call
    handlers get who and what to do, not why)."""
    from cautionflow.steps import run_digests
    from tests.deployment import DUE, FAST, SOURCE, deployment

    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config, rows=[{**r, "resident_reason": reason(r["alert_id"])} for r in SOURCE])
    run_digests(config, as_of=AS_OF, run_id="digests-1", retry=FAST)
    received = mail_server.handler.received
    assert {r.recipient for r in received} >= DUE  # the digests went
    for r in received:
        texts = [part.get_content() for part in r.message.walk() if part.get_content_maintype() == "text"]
        assert texts and not any("REASON-" in text for text in texts), r.recipient
    # The check reads what the recipient reads: the decoded text, which names the alerts it lists.
    [acme] = [r.message for r in received if r.recipient == "rota@acme.example"]
    assert any("1 Larkspur Close" in part.get_content() for part in acme.walk() if part.get_content_maintype() == "text")
