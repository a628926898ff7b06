"""Dates at dispatch, telling recorded, and the dispatch export (issue 14), on SQLite and PostgreSQL
with a real SMTP server and the command line as an officer runs it. Synthetic data only.

A letter is dated the day it leaves: its date and its appeal deadline count from the day the
resident is told (Teign 9: "within 28 days of receiving notification"; Dover 6.34: "within 20
working days", counted in working days over the bank holidays, 6.35). Once an "alert added" letter
has gone, the register records the resident told that day (`alerts.told_on`), so the alert has its
appeal deadline and is never flagged "never told"; the housing system gets one export row per
dispatched letter (Dover 6.24/6.36, Teign 11: the decision recorded there).
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

from pypdf import PdfReader
from sqlalchemy import create_engine, select

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.domain.letters import FLAG_UNTOLD_OLD
from cautionflow.steps import run_deadlines, run_letters, run_sync
from tests.deployment import cli, deployment, letters_config, prepare, queued, translated_pdf, write_config
from tests.support import AS_OF, alert_row, pdf_text

D = AS_OF  # Monday 23 November 2026: the day the letters are queued
SENT = D + dt.timedelta(days=5)  # Saturday 28 November 2026: the day they leave
ADDED = alert_row(alert_id="ADD", person_ref="P1", person_name="Alex Added", address="1 Larkspur Close, Eastwick",
                  effective_from="2026-11-20")
WAITING = alert_row(alert_id="WAIT", person_ref="P2", person_name="Wyn Waiting", address="2 Mill Lane",
                    postcode="EW3 1CD", effective_from="2026-11-20")
MAILED = alert_row(alert_id="MAIL", alert_code="DOG", person_ref="P3", person_name="Erin Email", address="3 Ash Row",
                   effective_from="2026-11-19", preferred_channel="email", email="erin@example.com")
REMOVED = alert_row(alert_id="GONE", person_ref="P4", person_name="Rory Removed", address="4 Ash Row", status="ended",
                    effective_from="2025-11-01", notified_on="2025-11-02", last_reviewed_on="2026-11-05",
                    review_outcome="removed")


def day(value: dt.date) -> str:
    return value.isoformat()


def last_json(out: str) -> dict:
    return json.loads(out.strip().splitlines()[-1])


def register_rows(dbs, table, key: str = "alert_id") -> dict[str, dict]:
    """A register table read directly (not through the code under test), by alert id."""
    engine = create_engine(normalise_url(dbs.register_url))
    try:
        with engine.connect() as conn:
            return {r._mapping[key]: dict(r._mapping) for r in conn.execute(select(table))}
    finally:
        engine.dispose()


def as_date(value) -> dt.date | None:
    return None if value is None else value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def test_a_letter_queued_on_d_and_sent_on_d_plus_5_counts_its_appeal_from_d_plus_5(
    databases, tmp_path, mail_server, capsys,
):
    config = letters_config(databases, tmp_path, mail_server.port)  # Teign
    prepare(databases, config, rows=[ADDED, WAITING, MAILED, REMOVED], as_of=D)
    assert run_letters(config, as_of=D, run_id="letters-d")["queued"] == 4
    path = write_config(config, tmp_path)
    first = queued(databases)
    assert (first["ADD"].dated_on, first["ADD"].appeal_by) == (D, dt.date(2026, 12, 21))  # queued: D + 28

    # Approved the day they were queued, dispatched five days later: rendered again for that day.
    for alert in ("ADD", "MAIL", "GONE"):
        code, out = cli(capsys, "letters", "approve", "--config", path, "--id", str(first[alert].id), "--as-of", day(D))
        assert (code, last_json(out)["approved"]) == (0, 1)
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(SENT))
    result = last_json(out)
    assert code == 0, out
    assert (result["printed"], result["sent"], result["dated_on"], result["told"]) == (2, 1, day(SENT), 2)

    sent = queued(databases)
    added = sent["ADD"]
    assert (added.status, added.dated_on, added.appeal_by) == ("dispatched", SENT, dt.date(2026, 12, 26))
    text = pdf_text(tmp_path / "letters" / added.pdf_path)
    # Teign 9: 28 days from the day the resident is told, the day the letter is dated.
    assert "28 November 2026" in text and "by 26 December 2026" in text
    assert "23 November 2026" not in text and "21 December 2026" not in text
    assert not (tmp_path / "letters" / first["ADD"].pdf_path).exists()  # the letter dated D cannot be printed
    printed = pdf_text(result["print_batch"])
    assert "by 26 December 2026" in printed and "by 21 December 2026" not in printed
    [message] = mail_server.handler.messages_for("erin@example.com")
    [attachment] = list(message.iter_attachments())
    assert "by 26 December 2026" in pdf_text(io.BytesIO(attachment.get_content()))
    assert (sent["GONE"].dated_on, sent["GONE"].appeal_by) == (SENT, None)  # a removal gives no appeal
    assert (sent["WAIT"].status, sent["WAIT"].dated_on) == ("queued", D)  # not approved: not dated again

    # Telling recorded: the register's own column, the source's notified_on untouched.
    alerts = register_rows(databases, schema.alerts)
    # A removal letter tells of no new alert: GONE keeps only its source date.
    assert {k: as_date(v["told_on"]) for k, v in alerts.items()} == {"ADD": SENT, "MAIL": SENT, "WAIT": None, "GONE": None}
    assert [as_date(alerts[k]["notified_on"]) for k in ("ADD", "MAIL", "GONE")] == [None, None, dt.date(2025, 11, 2)]
    run_deadlines(config, as_of=SENT, run_id="deadlines-sent")
    deadlines = register_rows(databases, schema.alert_deadlines)
    assert as_date(deadlines["ADD"]["appeal_deadline"]) == dt.date(2026, 12, 26)  # as the letter says
    assert deadlines["WAIT"]["appeal_deadline"] is None  # never told: no deadline yet

    # Run 61 days later: the told alerts are not "never told"; the one whose letter never went is.
    later = run_letters(config, as_of=SENT + dt.timedelta(days=61), run_id="letters-later")
    untold = {o["alert_id"] for o in later["officers"] if o["flag"] == FLAG_UNTOLD_OLD}
    assert untold == {"WAIT"}

    # A second dispatch, another day, sends, prints and re-dates nothing.
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(SENT + dt.timedelta(days=1)))
    again = last_json(out)
    assert (again["approved"], again["printed"], again["sent"], again["told"]) == (0, 0, 0, 0)
    assert queued(databases)["ADD"] == added
    assert len(mail_server.handler.messages_for("erin@example.com")) == 1


def test_the_source_notified_on_is_never_overwritten_and_wins(databases, tmp_path, mail_server, capsys):
    config = letters_config(databases, tmp_path, mail_server.port)  # Teign
    prepare(databases, config, rows=[ADDED], as_of=D)
    run_letters(config, as_of=D, run_id="letters-d")
    path = write_config(config, tmp_path)
    cli(capsys, "letters", "approve", "--config", path, "--batch", day(D), "--as-of", day(SENT))
    assert cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(SENT))[0] == 0

    # The housing system records its own date later: the sync writes notified_on, never told_on.
    recorded = SENT + dt.timedelta(days=2)
    prepare(databases, config, rows=[{**ADDED, "notified_on": day(recorded)}], as_of=recorded)
    [alert] = register_rows(databases, schema.alerts).values()
    assert (as_date(alert["notified_on"]), as_date(alert["told_on"])) == (recorded, SENT)
    [deadline] = register_rows(databases, schema.alert_deadlines).values()
    assert as_date(deadline["appeal_deadline"]) == recorded + dt.timedelta(days=28)  # the source's date wins

    # And when the source clears it again, cautionflow's record of the letter still stands.
    cleared = recorded + dt.timedelta(days=1)
    prepare(databases, config, rows=[ADDED], as_of=cleared)
    [alert] = register_rows(databases, schema.alerts).values()
    assert (alert["notified_on"], as_date(alert["told_on"])) == (None, SENT)
    [deadline] = register_rows(databases, schema.alert_deadlines).values()
    assert as_date(deadline["appeal_deadline"]) == SENT + dt.timedelta(days=28)


def test_dover_counts_20_working_days_from_dispatch_over_christmas(databases, tmp_path, mail_server, capsys):
    """Dover 6.34: "within 20 working days". Queued Wednesday 9 December 2026, dispatched Monday 14
    December: the 20th working day after, skipping Christmas Day, Boxing Day's substitute (Monday 28
    December) and New Year's Day, is Thursday 14 January 2027 (counted from 9 December it would be
    11 January; in weekdays ignoring the bank holidays, 8 January)."""
    queued_on, sent_on = dt.date(2026, 12, 9), dt.date(2026, 12, 14)
    config = deployment(databases, tmp_path, mail_server.port, recipients=[], policy="dover",
                        letters={"output_dir": str(tmp_path / "letters")})
    prepare(databases, config, rows=[{**ADDED, "effective_from": "2026-12-08"}], as_of=queued_on)
    run_letters(config, as_of=queued_on, run_id="letters-dover")
    assert queued(databases)["ADD"].appeal_by == dt.date(2027, 1, 11)
    path = write_config(config, tmp_path)
    cli(capsys, "letters", "approve", "--config", path, "--batch", day(queued_on), "--as-of", day(queued_on))
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(sent_on))
    assert code == 0, out

    letter = queued(databases)["ADD"]
    assert (letter.dated_on, letter.appeal_by) == (sent_on, dt.date(2027, 1, 14))
    text = pdf_text(tmp_path / "letters" / letter.pdf_path)
    assert "14 December 2026" in text and "14 January 2027" in text and "11 January 2027" not in text
    run_deadlines(config, as_of=sent_on, run_id="deadlines-dover")
    [deadline] = register_rows(databases, schema.alert_deadlines).values()
    assert as_date(deadline["appeal_deadline"]) == dt.date(2027, 1, 14)  # the register agrees with the letter


def test_approve_as_of_dates_the_letter_and_show_prints_those_dates(databases, tmp_path, mail_server, capsys):
    config = letters_config(databases, tmp_path, mail_server.port)  # Teign
    prepare(databases, config, rows=[ADDED], as_of=D)
    run_letters(config, as_of=D, run_id="letters-d")
    path = write_config(config, tmp_path)
    before = queued(databases)["ADD"]
    approved_on = D + dt.timedelta(days=2)

    code, out = cli(capsys, "letters", "approve", "--config", path, "--id", str(before.id), "--as-of", day(approved_on))
    assert code == 0
    [row] = list(csv.DictReader(out.strip().splitlines()[:-1], delimiter="\t"))
    assert (row["alert"], row["dated_on"], row["appeal_by"]) == ("ADD", "2026-11-25", "2026-12-23")
    code, out = cli(capsys, "letters", "show", "--config", path, "--id", str(before.id))
    shown = " ".join(out.split())
    assert code == 0 and "25 November 2026" in shown and "23 December 2026" in shown and "21 December" not in shown
    approved = queued(databases)["ADD"]
    assert approved.pdf_path.startswith("2026-11-25/") and approved.batch == D  # the batch is still the day queued

    # Dispatched the same day: nothing to render again, the approved PDF is the one that goes.
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(approved_on))
    assert code == 0 and last_json(out)["printed"] == 1
    sent = queued(databases)["ADD"]
    assert (sent.status, sent.pdf_path, sent.dated_on) == ("dispatched", approved.pdf_path, approved_on)
    assert "23 December 2026" in pdf_text(last_json(out)["print_batch"])


def test_a_translated_letter_is_dated_again_with_its_translation_kept(databases, tmp_path, mail_server, capsys):
    """Karbon 12, Hexagon Appendix 1: a translation an officer supplied is kept as supplied; the English
    letter before it is the one dated again (a letter held for translation must not lose the resident's
    appeal window to the wait)."""
    config = letters_config(databases, tmp_path, mail_server.port)  # Teign
    prepare(databases, config, rows=[{**ADDED, "language": "pl"}], as_of=D)
    run_letters(config, as_of=D, run_id="letters-d")
    path = write_config(config, tmp_path)
    held = queued(databases)["ADD"]
    translation = translated_pdf(tmp_path / "add-pl.pdf", "TLUMACZENIE")
    assert cli(capsys, "letters", "translated", "--config", path, "--id", str(held.id), "--file", str(translation))[0] == 0
    english_pages = len(PdfReader(tmp_path / "letters" / held.pdf_path).pages)

    cli(capsys, "letters", "approve", "--config", path, "--id", str(held.id), "--as-of", day(SENT))
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(SENT))
    assert code == 0, out
    letter = queued(databases)["ADD"]
    assert (letter.status, letter.translation_file, letter.dated_on) == ("dispatched", "add-pl.pdf", SENT)
    combined = PdfReader(tmp_path / "letters" / letter.pdf_path)
    assert len(combined.pages) == english_pages + 1
    text = pdf_text(tmp_path / "letters" / letter.pdf_path)
    assert text.index("28 November 2026") < text.index("by 26 December 2026") < text.index("TLUMACZENIE")
    assert letter.english_pdf_path.startswith("2026-11-28/")
    assert not (tmp_path / "letters" / held.pdf_path).exists()


def test_a_letter_that_would_now_be_held_is_kept_back_not_sent_with_old_dates(databases, tmp_path, mail_server, capsys):
    """Hexagon 5.3, Teign Appendix E: the reason for the resident went from the register after approval.
    Rendered again it would be held, so it is not sent on the old date either: kept back, approved, the
    reason on the officers' list, until the next dispatch can date it."""
    config = letters_config(databases, tmp_path, mail_server.port)  # Teign
    prepare(databases, config, rows=[ADDED], as_of=D)
    run_letters(config, as_of=D, run_id="letters-d")
    path = write_config(config, tmp_path)
    cli(capsys, "letters", "approve", "--config", path, "--batch", day(D), "--as-of", day(D))
    prepare(databases, config, rows=[{**ADDED, "resident_reason": None}], as_of=SENT)

    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(SENT))
    result = last_json(out)
    assert (code, result["printed"], result["not_dispatched"]) == (3, 0, 1)
    letter = queued(databases)["ADD"]
    assert (letter.status, letter.dated_on) == ("approved", D)
    assert letter.hold_reason == "not dated again: it would now be held (no reason recorded for the resident)"

    prepare(databases, config, rows=[ADDED], as_of=SENT)  # the reason is back
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(SENT))
    assert (code, last_json(out)["printed"]) == (0, 1)
    assert queued(databases)["ADD"].dated_on == SENT


def test_the_dispatch_export_has_one_row_per_dispatched_letter_and_a_rerun_changes_nothing(
    databases, tmp_path, mail_server, capsys,
):
    """Dover 6.24/6.36, Teign 11: the decision recorded in the housing system, from this export."""
    config = letters_config(databases, tmp_path, mail_server.port)  # Teign
    prepare(databases, config, rows=[ADDED, WAITING, MAILED, REMOVED], as_of=D)
    run_letters(config, as_of=D, run_id="letters-d")
    path = write_config(config, tmp_path)
    ids = {k: v.id for k, v in queued(databases).items()}
    cli(capsys, "letters", "approve", "--config", path, "--id", str(ids["GONE"]), "--as-of", day(D))
    cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(D))
    for alert in ("ADD", "MAIL"):
        cli(capsys, "letters", "approve", "--config", path, "--id", str(ids[alert]), "--as-of", day(SENT))
    cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(SENT))
    letters = queued(databases)

    out_file = tmp_path / "export" / "dispatched.csv"
    code, out = cli(capsys, "letters", "export", "--config", path, "--since", day(D), "--out", str(out_file))
    assert (code, last_json(out)["rows"]) == (0, 3)
    first = out_file.read_bytes()
    with open(out_file, newline="", encoding="utf-8-sig") as f:
        rows = list(csv.DictReader(f))
    ref = {k: f"{k}/{v.letter_key[:8]}" for k, v in letters.items()}
    assert rows == [  # by date, then id; nobody's name, address or code
        {"alert_id": "GONE", "kind": "review_removed", "reference": ref["GONE"], "channels": "post",
         "dispatched_on": "2026-11-23", "appeal_by": ""},
        {"alert_id": "ADD", "kind": "alert_added", "reference": ref["ADD"], "channels": "post",
         "dispatched_on": "2026-11-28", "appeal_by": "2026-12-26"},
        {"alert_id": "MAIL", "kind": "alert_added", "reference": ref["MAIL"], "channels": "email",
         "dispatched_on": "2026-11-28", "appeal_by": "2026-12-26"},
    ]
    assert "Alex Added" not in first.decode("utf-8-sig")

    # A second dispatch and export: the same bytes. Since the later day: only its letters; to stdout.
    cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(SENT + dt.timedelta(days=3)))
    cli(capsys, "letters", "export", "--config", path, "--since", day(D), "--out", str(out_file))
    assert out_file.read_bytes() == first
    code, out = cli(capsys, "letters", "export", "--config", path, "--since", day(SENT))
    assert code == 0 and not out.startswith("\ufeff")
    assert [r["alert_id"] for r in csv.DictReader(io.StringIO(out))] == ["ADD", "MAIL"]
    code, out = cli(capsys, "letters", "export", "--config", path, "--since", day(SENT + dt.timedelta(days=1)))
    assert out.splitlines() == [out.splitlines()[0]] and out.startswith('"alert_id"')  # the header alone


def test_the_sync_never_writes_told_on(databases, tmp_path):
    """The register's own column: a sync that changes every source column leaves it as it was."""
    from cautionflow.adapters.register import Register

    config = letters_config(databases, tmp_path, 25)
    prepare(databases, config, rows=[ADDED], as_of=D)
    register = Register(databases.register_url)
    try:
        with register.engine.begin() as conn:
            conn.execute(schema.alerts.update().values(told_on=D))
    finally:
        register.dispose()
    databases.write_source([{**ADDED, "alert_code": "DOG", "address": "9 New Road", "notified_on": day(D)}])
    run_sync(config, as_of=SENT, run_id="sync-sent")
    [alert] = register_rows(databases, schema.alerts).values()
    assert (alert["alert_code"], as_date(alert["notified_on"]), as_date(alert["told_on"])) == ("DOG", D, D)


def test_a_released_held_letter_gets_fresh_dates_and_again_when_it_leaves(databases, tmp_path, mail_server, capsys):
    """Hexagon 5.3, Teign Appendix E: held for want of a reason for the resident, released when a sync
    brings one: dated the day it is released, and again the day it leaves (Teign 9: 28 days from then)."""
    config = letters_config(databases, tmp_path, mail_server.port)  # Teign
    prepare(databases, config, rows=[{**ADDED, "resident_reason": None}], as_of=D)
    run_letters(config, as_of=D, run_id="letters-d")
    assert queued(databases)["ADD"].status == "held"
    released_on = D + dt.timedelta(days=1)
    prepare(databases, config, rows=[ADDED], as_of=released_on)
    assert run_letters(config, as_of=released_on, run_id="letters-released")["released"] == 1
    released = queued(databases)["ADD"]
    assert (released.status, released.dated_on, released.appeal_by) == ("queued", released_on, dt.date(2026, 12, 22))

    path = write_config(config, tmp_path)
    cli(capsys, "letters", "approve", "--config", path, "--batch", day(released_on), "--as-of", day(SENT))
    assert cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day(SENT))[0] == 0
    sent = queued(databases)["ADD"]
    assert (sent.status, sent.dated_on, sent.appeal_by) == ("dispatched", SENT, dt.date(2026, 12, 26))
    assert "by 26 December 2026" in pdf_text(tmp_path / "letters" / sent.pdf_path)
