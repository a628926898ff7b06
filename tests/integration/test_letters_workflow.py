"""The letters queue's officer workflows on SQLite and PostgreSQL: the stored officers' list, a
translation an officer supplies, Dover's post-and-email dispatch, and names beyond Latin-1 in the
PDFs. Synthetic data only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

import pytest
from pypdf import PdfReader

from cautionflow.adapters.letters import LetterFlags
from cautionflow.adapters.register import Register
from cautionflow.cli import main
from cautionflow.domain import letters as d
from cautionflow.steps import run_letters
from tests.deployment import (
    FAST,
    cli,
    deployment,
    letters_config,
    prepare,
    queued,
    translated_pdf,
    write_config,
)
from tests.support import AS_OF, REPO, alert_row, pdf_text, placed_text

OLIVE = alert_row(alert_id="OLD", person_ref="P1", person_name="Olive Older", address="1 Ash Row",
                  effective_from="2026-01-05")  # untold, older than the 60-day look-back
NORA = alert_row(alert_id="NOREASON", person_ref="P2", person_name="Nora Noreason", address="2 Ash Row",
                 effective_from="2025-06-01", notify_resident=0)  # not to be told, no reason recorded
FINE = alert_row(alert_id="FINE", person_ref="P3", person_name="Fiona Fine", address="3 Ash Row",
                 effective_from="2025-06-01", notify_resident=0, no_notify_reason="risk of escalation")
PIOTR = alert_row(alert_id="POLSKI", person_ref="P7", person_name="Piotr Example", address="7 Bay View",
                  effective_from="2026-11-18", language="pl")
ALEX = alert_row(alert_id="ADD", person_ref="P8", person_name="Alex Added", address="8 Larkspur Close",
                 effective_from="2026-11-20")


def flags(databases, include_resolved=False):
    register = Register(databases.register_url)
    try:
        return LetterFlags(register.engine).list(include_resolved=include_resolved)
    finally:
        register.dispose()


# --- the officers' list ------------------------------------------------------------------------------


def test_the_officers_list_is_stored_once_per_alert_and_flag_and_resolves_when_fixed(databases, tmp_path, capsys):
    config = letters_config(databases, tmp_path, 9)
    prepare(databases, config, rows=[OLIVE, NORA, FINE], as_of=AS_OF)

    first = run_letters(config, as_of=AS_OF, run_id="letters-1")

    assert first["queued"] == 0 and first["flags"] == {"open": 2, "new": 2, "still_open": 0, "resolved": 0}
    stored = {(f.alert_id, f.flag): f for f in flags(databases)}
    assert set(stored) == {("OLD", d.FLAG_UNTOLD_OLD), ("NOREASON", d.FLAG_NO_REASON)}  # Hexagon 5.5: FINE has one
    assert stored["OLD", d.FLAG_UNTOLD_OLD].person_name == "Olive Older"  # read from the register, not copied
    assert {f.first_flagged_on for f in stored.values()} == {AS_OF}

    # The same day again: nothing new, nothing written twice (idempotent per day).
    again = run_letters(config, as_of=AS_OF, run_id="letters-2")
    assert again["flags"] == {"open": 2, "new": 0, "still_open": 2, "resolved": 0}
    assert len(flags(databases, include_resolved=True)) == 2

    # The next day the officer has recorded Nora's reason in the housing system: her flag resolves.
    fixed = {**NORA, "no_notify_reason": "risk of escalation", "updated_at": "2026-11-24T09:00:00"}
    prepare(databases, config, rows=[OLIVE, fixed, FINE], as_of=AS_OF + dt.timedelta(days=1))
    later = run_letters(config, as_of=AS_OF + dt.timedelta(days=1), run_id="letters-3")
    assert later["flags"] == {"open": 1, "new": 0, "still_open": 1, "resolved": 1}
    [olive] = flags(databases)
    assert (olive.alert_id, olive.first_flagged_on, olive.last_flagged_on) == ("OLD", AS_OF, AS_OF + dt.timedelta(1))

    code, out = cli(capsys, "letters", "flags", "--config", write_config(config, tmp_path), "--all")
    assert code == 0
    lines = out.splitlines()
    assert lines[0].split("\t")[:4] == ["alert", "name", "code", "flag"]
    assert any(line.startswith("OLD\tOlive Older\tVIP\tuntold_before_lookback\t") for line in lines)
    assert any(line.startswith("NOREASON\t") and line.endswith("\t2026-11-24") for line in lines)  # resolved
    assert json.loads(lines[-1]) == {"open": 1, "resolved": 1}


# --- translations --------------------------------------------------------------------------------------


def test_a_letter_held_for_translation_goes_with_the_officers_translation(databases, tmp_path, mail_server, capsys):
    # Karbon 12, Hexagon Appendix 1: letters in the resident's language, never machine-translated.
    config = letters_config(databases, tmp_path, mail_server.port)
    prepare(databases, config, rows=[PIOTR, ALEX], as_of=AS_OF)
    run_letters(config, as_of=AS_OF, run_id="letters-1")
    held = queued(databases)["POLSKI"]
    assert (held.status, held.hold_reason, held.translated) == ("held", "translation needed (pl)", False)
    path = write_config(config, tmp_path)
    translation = translated_pdf(tmp_path / "list-POLSKI-pl.pdf", "TLUMACZENIE: Szanowny Panie Piotrze")

    # What cannot be attached is refused with one line: not a PDF; a letter not held for translation.
    (tmp_path / "notes.txt").write_text("not a pdf")
    assert main(["letters", "translated", "--config", path, "--id", str(held.id), "--file",
                 str(tmp_path / "notes.txt")]) == 2
    assert "not a readable PDF" in capsys.readouterr().err
    alex = queued(databases)["ADD"]
    assert main(["letters", "translated", "--config", path, "--id", str(alex.id), "--file", str(translation)]) == 2
    assert f"letter {alex.id} is queued, not held for translation" in capsys.readouterr().err

    code, out = cli(capsys, "letters", "translated", "--config", path, "--id", str(held.id), "--file",
                    str(translation))
    assert code == 0 and json.loads(out)["status"] == "queued"
    letter = queued(databases)["POLSKI"]
    assert (letter.status, letter.hold_reason, letter.translation_file) == ("queued", None, "list-POLSKI-pl.pdf")
    assert letter.english_pdf_path == held.pdf_path  # the English letter is kept as it was
    combined = pdf_text(tmp_path / "letters" / letter.pdf_path)
    # English first (its page 1 carries the address for the envelope window), then the translation.
    assert combined.index("Piotr Example") < combined.index("We have added") < combined.index("TLUMACZENIE")
    # Attached once: a second attach is refused.
    assert main(["letters", "translated", "--config", path, "--id", str(held.id), "--file", str(translation)]) == 2
    capsys.readouterr()

    code, out = cli(capsys, "letters", "approve", "--config", path, "--id", str(held.id), "--as-of", AS_OF.isoformat())
    assert (code, json.loads(out.splitlines()[-1])["approved"]) == (0, 1)
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", AS_OF.isoformat())
    result = json.loads(out.splitlines()[-1])
    assert code == 0 and result["printed"] == 1
    assert "TLUMACZENIE" in pdf_text(result["print_batch"])
    with open(result["manifest"], newline="", encoding="utf-8-sig") as f:
        [row] = list(csv.DictReader(f))
    english_pages = len(PdfReader(tmp_path / "letters" / held.pdf_path).pages)
    assert (row["alert_id"], row["held"], row["language"], row["translated"], row["pages"]) == (
        "POLSKI", "no", "pl", "yes (list-POLSKI-pl.pdf)", str(english_pages + 1))
    assert queued(databases)["POLSKI"].status == "dispatched"


# --- Dover: by post and, where possible, email ----------------------------------------------------------


def test_dover_sends_a_letter_by_post_and_by_email(databases, tmp_path, mail_server, capsys):
    # Dover 6.12, 6.15, 6.19: "by post and where possible, email".
    config = deployment(databases, tmp_path, mail_server.port, recipients=[], policy="dover",
                        letters={"output_dir": str(tmp_path / "letters")})
    both = alert_row(alert_id="DOVER1", alert_code="CM", person_ref="P1", person_name="Dana Dover",
                     address="1 Cliff Road, Dover", postcode="CT16 1AA", effective_from="2026-11-20",
                     preferred_channel="post", email="dana@example.com")
    post_only = alert_row(alert_id="DOVER2", person_ref="P2", person_name="Pat Post", address="2 Cliff Road",
                          postcode="CT16 1AB", effective_from="2026-11-20")
    prepare(databases, config, rows=[both, post_only], as_of=AS_OF)
    summary = run_letters(config, as_of=AS_OF, run_id="letters-dover", retry=FAST)
    assert summary["queued"] == 2
    letters = queued(databases)
    assert letters["DOVER1"].channels == ("post", "email") and letters["DOVER2"].channels == ("post",)

    path = write_config(config, tmp_path)
    code, out = cli(capsys, "letters", "approve", "--config", path, "--batch", AS_OF.isoformat(), "--as-of", AS_OF.isoformat())
    assert (code, json.loads(out.splitlines()[-1])["approved"]) == (0, 2)
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", AS_OF.isoformat())
    result = json.loads(out.splitlines()[-1])
    assert code == 0, out
    assert (result["printed"], result["emailed"], result["sent"], result["complete"]) == (2, 1, 1, True)

    # The print batch: both letters in the combined PDF, both in the manifest.
    printed = pdf_text(result["print_batch"])
    assert "Dana Dover" in printed and "1 Cliff Road" in printed and "Pat Post" in printed
    assert "20 working days" in printed  # Dover 6.34
    with open(result["manifest"], newline="", encoding="utf-8-sig") as f:
        manifest = {row["alert_id"]: row for row in csv.DictReader(f)}
    assert set(manifest) == {"DOVER1", "DOVER2"}
    assert (manifest["DOVER1"]["name"], manifest["DOVER1"]["address_line_1"]) == ("Dana Dover", "1 Cliff Road")

    # And the same letter by email, the PDF attached.
    [message] = mail_server.handler.messages_for("dana@example.com")
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    emailed = pdf_text(io.BytesIO(attachment.get_content()))
    assert "Dana Dover" in emailed and "Contact restrictions" in emailed
    dispatched = queued(databases)["DOVER1"]
    assert dispatched.status == "dispatched"
    assert Path(result["print_batch"]).name in dispatched.dispatch_ref and message["Message-ID"] in dispatched.dispatch_ref



def test_a_dispatch_waits_for_one_already_running_and_writes_nothing_meanwhile(databases, tmp_path, mail_server,
                                                                                capsys, monkeypatch):
    """Two dispatches at once (the DAG's beside an officer's) would both write the same unfinished print
    batch: a dispatch holds the register while it runs, and another waits (issue 18)."""
    import cautionflow.services.letter_dispatch as service

    config = deployment(databases, tmp_path, mail_server.port, recipients=[], policy="dover",
                        letters={"output_dir": str(tmp_path / "letters")})
    prepare(databases, config, rows=[alert_row(alert_id="WAIT1", person_ref="P1", person_name="Wyn Waiting",
                                               address="1 Queue Street", effective_from="2026-11-20")], as_of=AS_OF)
    run_letters(config, as_of=AS_OF, run_id="letters-wait", retry=FAST)
    path = write_config(config, tmp_path)
    assert cli(capsys, "letters", "approve", "--config", path, "--batch", AS_OF.isoformat(), "--as-of", AS_OF.isoformat())[0] == 0
    monkeypatch.setattr(service, "DISPATCH_LOCK_WAIT_SECONDS", 1.0)
    holder = Register(config.register_url)
    try:
        with holder.dispatch_lock(wait_seconds=0):  # another dispatch is running
            code = main(["letters", "dispatch", "--config", path, "--as-of", AS_OF.isoformat()])
            assert code == 2
            assert "another dispatch has held it for over 1 s" in capsys.readouterr().err
            assert not list((tmp_path / "letters").rglob("print-batch-*"))  # nothing written meanwhile
            assert queued(databases)["WAIT1"].status == "approved"
    finally:
        holder.dispose()

    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", AS_OF.isoformat())  # the other one has finished
    assert code == 0 and json.loads(out.splitlines()[-1])["printed"] == 1


# --- names beyond Latin-1 ---------------------------------------------------------------------------------


def render_pdf(**overrides) -> bytes:
    from cautionflow.adapters.templates import renderer
    from cautionflow.config import parse_config
    from cautionflow.domain.letters import owed_letters
    from cautionflow.profiles import load_profile
    from cautionflow.services.letters import letter_pdf, render_html

    config = parse_config({"organisation": "Example Homes", "policy": "teign", "register_url": "sqlite://",
                           "source": {"url": "sqlite://"}}, home=REPO)
    row = {**ALEX, "register_state": "active", "review_due": "2027-11-20", **overrides}
    [letter] = owed_letters([row], load_profile("teign"), AS_OF).letters
    _, body = render_html(renderer(config), letter, organisation="Example Homes", reply_email=None)
    return letter_pdf(letter, body, organisation="Example Homes")


def fonts(pdf: bytes) -> set[str]:
    page = PdfReader(io.BytesIO(pdf)).pages[0]
    return {str(f.get_object()["/BaseFont"]).lstrip("/").split("+")[-1] for f in page["/Resources"]["/Font"].values()}


@pytest.mark.parametrize("name", ["Zoë Ó Briain-Łukasiewicz", "Ŵyn Ap Siôn"])
def test_names_beyond_latin_1_are_printed_as_recorded(name):
    pdf = render_pdf(person_name=name, address="Flat 2, Tŷ Siân, Heol y Bont")
    text = pdf_text(io.BytesIO(pdf))
    assert f"Dear {name}," in text and name in text  # in the window and in the greeting
    assert "Tŷ Siân" in text and "We have added a caution alert" in text
    assert fonts(pdf) == {"DejaVuSansBook", "DejaVuSansBold"}  # embedded (as a subset), include/fonts/
    window = [(x, y) for text, x, y, _size in placed_text(pdf) if text in (name, "Tŷ Siân")]
    assert len(window) == 2 and all(20 <= x <= 110 and 45 <= y <= 80 for x, y in window)  # the DL window


@pytest.mark.parametrize(("name", "printed"), [("Աշոտ Example", "Աշոտ Example"), ("王 Example", "? Example")])
def test_other_scripts_use_the_whole_font_and_what_it_lacks_is_a_question_mark(name, printed):
    from cautionflow.adapters.pdf import _unicode_font

    fonts_found = _unicode_font()
    assert ord("Ł") in fonts_found.quick_coverage and ord(name[0]) not in fonts_found.quick_coverage
    text = pdf_text(io.BytesIO(render_pdf(person_name=name)))
    assert f"Dear {printed}," in text  # Armenian from the whole font; DejaVu Sans has no Chinese


def test_a_latin_1_letter_keeps_the_core_font():
    pdf = render_pdf(person_name="Siân Ó Briain", address="1 Rue Zoë, Eastwick")
    text = pdf_text(io.BytesIO(pdf))
    assert "Siân Ó Briain" in text and "1 Rue Zoë" in text
    assert fonts(pdf) == {"Helvetica", "Helvetica-Bold"}  # nothing embedded: small and fast


def test_without_the_font_files_a_letter_still_goes_with_plain_letters(monkeypatch, tmp_path):
    from cautionflow.adapters import pdf

    monkeypatch.setattr(pdf, "FONTS_DIR", tmp_path / "no-fonts")
    monkeypatch.setenv("CAUTIONFLOW_HOME", str(tmp_path))
    pdf._unicode_font.cache_clear()
    try:
        text = pdf_text(io.BytesIO(render_pdf(person_name="Zoë Ó Briain-Łukasiewicz")))
    finally:
        pdf._unicode_font.cache_clear()
    assert "Zoë Ó Briain-Lukasiewicz" in text  # Latin-1 kept; Ł without its stroke, never dropped


def test_a_png_of_a_letter_with_a_name_beyond_latin_1(tmp_path):
    """For eyes, not asserts: tests/artefacts/letters/alert_added-unicode.png (git-ignored)."""
    import shutil
    import subprocess

    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (Debian poppler-utils) is not on PATH: no PNG of the letter was made")
    pdf = tmp_path / "unicode.pdf"
    pdf.write_bytes(render_pdf(person_name="Zoë Ó Briain-Łukasiewicz", address="Flat 2, Tŷ Siân, Heol y Bont"))
    folder = REPO / "tests" / "artefacts" / "letters"
    folder.mkdir(parents=True, exist_ok=True)
    stem = folder / "alert_added-unicode"
    subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem)],
                   check=True, timeout=60)
    assert stem.with_suffix(".png").is_file()
