"""The resident letters queue end to end on SQLite and PostgreSQL: sync -> deadlines -> letters,
approve, dispatch (print batch and email through a real SMTP server). Synthetic data only."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import shutil
import subprocess
from pathlib import Path

import pytest
from pypdf import PdfReader

from cautionflow.adapters.letters import LetterQueue
from cautionflow.adapters.register import Register
from cautionflow.steps import run_letters
from tests.deployment import FAST, cli, letters_config, prepare, queued, write_config
from tests.support import AS_OF, REPO, alert_row, pdf_text, placed_text

ARTEFACTS = REPO / "tests" / "artefacts" / "letters"
SCRIPT = "<script>alert(1)</script> 3 Quay Street"
ERIN = "erin@example.com"
TOLD = {"effective_from": "2025-11-01", "notified_on": "2025-11-02"}

SOURCE = [
    alert_row(alert_id="ADD", person_ref="P1", person_name="Alex Added", address="1 Larkspur Close, Eastwick",
              effective_from="2026-11-20", note="NOTE-SECRET-ADD"),
    alert_row(alert_id="MAIL", alert_code="DOG", person_ref="P2", person_name="Erin Email", address="2 Mill Lane",
              postcode="EW3 1CD", effective_from="2026-11-16", preferred_channel="email", email=ERIN),
    alert_row(alert_id="KEPT", person_ref="P3", person_name="Kim Kept", address=SCRIPT, postcode="EW4 5EF",
              last_reviewed_on="2026-11-02", review_outcome="retained", large_print=1, **TOLD),
    alert_row(alert_id="GONE", person_ref="P4", person_name="Rory Removed", address="4 Ash Row", status="ended",
              last_reviewed_on="2026-11-05", review_outcome="removed", **TOLD),
    alert_row(alert_id="UPHELD", person_ref="P5", person_name="Uma Upheld", address="5 Elm Road", status="ended",
              effective_from="2026-10-01", notified_on="2026-10-02", appeal_received_on="2026-10-05",
              appeal_decided_on="2026-10-20", appeal_outcome="upheld"),
    alert_row(alert_id="KEEP", person_ref="P6", person_name="Dee Dismissed", address="6 Oak Road",
              effective_from="2026-10-01", notified_on="2026-10-02", appeal_received_on="2026-10-05",
              appeal_decided_on="2026-11-10", appeal_outcome="dismissed"),
    alert_row(alert_id="POLSKI", person_ref="P7", person_name="Piotr Example", address="7 Bay View",
              effective_from="2026-11-18", language="pl"),
    # Suppressed: not to be told (no reason recorded), agency information (Teign 4), address only.
    alert_row(alert_id="SECRET", person_ref="P8", person_name="Nadia Notell", effective_from="2026-11-19",
              notify_resident=0),
    alert_row(alert_id="POLICE", person_ref="P9", person_name="Pat Police", effective_from="2026-11-19",
              source="police"),
    alert_row(alert_id="PLACE", alert_code="DOG", subject_type="address", person_ref=None, person_name=None,
              address="8 Kennel Lane", effective_from="2026-11-19"),
]
SENDABLE = {"ADD", "MAIL", "KEPT", "GONE", "UPHELD", "KEEP"}


def test_letters_are_queued_once_approved_and_dispatched_by_post_and_email(databases, tmp_path, mail_server, capsys):
    config = letters_config(databases, tmp_path, mail_server.port)
    prepare(databases, config, rows=SOURCE, as_of=AS_OF)

    summary = run_letters(config, as_of=AS_OF, run_id="letters-1")
    assert (summary["queued"], summary["held"], summary["already_queued"], summary["suppressed"]) == (7, 1, 0, 3)
    assert summary["suppressed_by_reason"] == {"address_only": 1, "agency_information": 1, "not_to_be_notified": 1}
    assert [o["alert_id"] for o in summary["officers"]] == ["SECRET"]  # Hexagon 5.5: no reason recorded

    again = run_letters(config, as_of=AS_OF, run_id="letters-2")
    assert (again["queued"], again["already_queued"]) == (0, 7)  # one letter per key, ever
    later = run_letters(config, as_of=AS_OF + dt.timedelta(days=1), run_id="letters-3")
    assert later["queued"] == 0  # the same state the next day owes nothing new

    letters = queued(databases)
    assert {k: v.kind for k, v in letters.items()} == {
        "ADD": "alert_added", "MAIL": "alert_added", "KEPT": "review_kept", "GONE": "review_removed",
        "UPHELD": "appeal_upheld", "KEEP": "appeal_dismissed", "POLSKI": "alert_added",
    }
    assert letters["POLSKI"].status == "held" and letters["POLSKI"].hold_reason == "translation needed (pl)"
    assert {k for k, v in letters.items() if v.status == "queued"} == SENDABLE
    assert letters["MAIL"].channels == ("email",) and letters["KEPT"].large_print

    register = Register(databases.register_url)
    html = LetterQueue(register.engine).html(letters["KEPT"].id)
    register.dispose()
    assert "&lt;script&gt;" in html and "<script>" not in html  # an address is text, never markup
    assert "NOTE-SECRET" not in json.dumps([LetterQueue.__name__, html])

    # The PDFs say what the letter is, to whom, and the dates spelled out.
    # The queue keeps paths relative to letters.output_dir: any worker finds them on the shared folder.
    assert not any(Path(x.pdf_path).is_absolute() for x in letters.values())
    added = pdf_text(tmp_path / "letters" / letters["ADD"].pdf_path)
    assert "Alex Added" in added and "1 Larkspur Close" in added and "EW1 2AB" in added
    assert "We have added a caution alert" in added and "Visit in pairs" in added
    assert "by 21 December 2026" in added and "23 November 2026" in added  # Teign 9: 28 days
    assert "emergency" in added  # Wandle 3.6
    kept = pdf_text(tmp_path / "letters" / letters["KEPT"].pdf_path)
    assert "<script>alert(1)</script> 3 Quay Street" in kept and "stay in place" in kept
    assert "2 November 2027" in kept and "by 21 December 2026" in kept
    assert "removed it" in pdf_text(tmp_path / "letters" / letters["GONE"].pdf_path)
    assert "remove the alert" in pdf_text(tmp_path / "letters" / letters["UPHELD"].pdf_path)
    dismissed = pdf_text(tmp_path / "letters" / letters["KEEP"].pdf_path)
    assert "stays in place" in dismissed and "complaints procedure" in dismissed  # Teign: not final
    large = PdfReader(tmp_path / "letters" / letters["KEPT"].pdf_path).pages[0].extract_text(extraction_mode="layout")
    assert "Kim Kept" in large

    path = write_config(config, tmp_path)
    code, out = cli(capsys, "letters", "list", "--config", path, "--status", "held")
    assert code == 0 and "POLSKI" in out and json.loads(out.splitlines()[-1])["letters"] == 1
    day = AS_OF.isoformat()  # approved and dispatched the day they were queued: dated that day
    code, out = cli(capsys, "letters", "approve", "--config", path, "--batch", day, "--as-of", day)
    assert (code, json.loads(out.splitlines()[-1])["approved"]) == (0, 6)  # held letters stay held

    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day)
    result = json.loads(out.splitlines()[-1])
    assert code == 0, out
    assert (result["approved"], result["printed"], result["emailed"], result["sent"]) == (6, 5, 1, 1)
    combined = PdfReader(result["print_batch"])
    assert len(combined.pages) >= 5
    everything = pdf_text(result["print_batch"])
    for name in ("Alex Added", "Kim Kept", "Rory Removed", "Uma Upheld", "Dee Dismissed"):
        assert name in everything
    assert "Erin Email" not in everything  # she chose email
    with open(result["manifest"], newline="", encoding="utf-8-sig") as f:
        manifest = list(csv.DictReader(f))
    assert {r["alert_id"]: r["held"] for r in manifest} == {
        "ADD": "no", "KEPT": "no", "GONE": "no", "UPHELD": "no", "KEEP": "no", "POLSKI": "yes"}
    assert manifest[-1]["alert_id"] == "POLSKI" and manifest[-1]["pages"] == "0"  # listed, not printed
    kept_row = next(r for r in manifest if r["alert_id"] == "KEPT")
    assert (kept_row["name"], kept_row["large_print"], kept_row["address_line_1"]) == (
        "Kim Kept", "yes", "<script>alert(1)</script> 3 Quay Street")
    assert next(r for r in manifest if r["alert_id"] == "POLSKI")["hold_reason"] == "translation needed (pl)"

    [message] = mail_server.handler.messages_for(ERIN)
    assert message["Subject"] == "A letter from Example Homes"  # nothing about the alert in a subject line
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    emailed = pdf_text(io.BytesIO(attachment.get_content()))
    assert "Erin Email" in emailed and "Dangerous animal" in emailed and "by 21 December 2026" in emailed

    assert {x.status for k, x in queued(databases).items() if k in SENDABLE} == {"dispatched"}
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", day)
    rerun = json.loads(out.splitlines()[-1])
    assert (code, rerun["approved"], rerun["sent"]) == (0, 0, 0)
    assert len(mail_server.handler.messages_for(ERIN)) == 1  # never twice


def test_auto_approve_dispatches_at_queue_time(databases, tmp_path, mail_server):
    config = letters_config(databases, tmp_path, mail_server.port, auto_approve=True)
    prepare(databases, config, rows=SOURCE[:2], as_of=AS_OF)

    summary = run_letters(config, as_of=AS_OF, run_id="auto", retry=FAST)

    assert (summary["queued"], summary["approved"], summary["dispatched"], summary["complete"]) == (2, 2, 2, True)
    assert summary["dispatch"]["printed"] == 1 and summary["dispatch"]["sent"] == 1
    assert {x.status for x in queued(databases).values()} == {"dispatched"}
    assert len(mail_server.handler.messages_for(ERIN)) == 1


def test_a_png_of_page_one_of_each_kind(tmp_path):
    """For eyes, not asserts: tests/artefacts/letters/*.png (git-ignored)."""
    if shutil.which("pdftoppm") is None:
        pytest.skip("pdftoppm (Debian poppler-utils) is not on PATH: no PNGs of the letters were made")
    from cautionflow.adapters.templates import renderer
    from cautionflow.config import parse_config
    from cautionflow.domain.letters import owed_letters
    from cautionflow.profiles import load_profile
    from cautionflow.services.letters import letter_pdf, render_html

    config = parse_config({"organisation": "Example Homes", "policy": "teign", "register_url": "sqlite://",
                           "source": {"url": "sqlite://"}}, home=REPO)
    rows = [{**r, "register_state": "active" if r["status"] == "active" else "ended", "review_due": "2027-11-02"}
            for r in SOURCE]
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    for letter in owed_letters(rows, load_profile("teign"), AS_OF).letters:
        _, body = render_html(renderer(config), letter, organisation="Example Homes", reply_email=None)
        pdf = tmp_path / f"{letter.kind}.pdf"
        pdf.write_bytes(letter_pdf(letter, body, organisation="Example Homes"))
        stem = ARTEFACTS / f"{letter.kind}{'-large-print' if letter.large_print else ''}"
        subprocess.run(["pdftoppm", "-png", "-r", "60", "-f", "1", "-l", "1", "-singlefile", str(pdf), str(stem)],
                       check=True, timeout=60)
        assert stem.with_suffix(".png").is_file()


@pytest.mark.parametrize("large_print", [0, 1])
def test_the_address_sits_in_a_dl_window_and_large_print_is_16_point(large_print):
    from cautionflow.adapters.templates import renderer
    from cautionflow.config import parse_config
    from cautionflow.domain.letters import owed_letters
    from cautionflow.profiles import load_profile
    from cautionflow.services.letters import letter_pdf, render_html

    config = parse_config({"organisation": "Example Homes", "policy": "teign", "register_url": "sqlite://",
                           "source": {"url": "sqlite://"}}, home=REPO)
    row = {**SOURCE[0], "register_state": "active", "review_due": "2027-11-20", "large_print": large_print}
    [letter] = owed_letters([row], load_profile("teign"), AS_OF).letters
    _, body = render_html(renderer(config), letter, organisation="Example Homes", reply_email=None)
    placed = placed_text(letter_pdf(letter, body, organisation="Example Homes"))

    address = [p for p in placed if p[0] in ("Alex Added", "1 Larkspur Close", "Eastwick", "EW1 2AB")]
    assert [p[0] for p in address] == ["Alex Added", "1 Larkspur Close", "Eastwick", "EW1 2AB"]
    for _text, x, baseline, size in address:
        # The window: 20 mm from the left, 45 mm from the top, 90 x 35 mm (cap height above the baseline).
        assert 20 <= x <= 110 and 45 + size * 0.26 <= baseline <= 80
    body_sizes = {size for text, _x, y, size in placed if y > 85}
    assert min(body_sizes) >= (16 if large_print else 11)
