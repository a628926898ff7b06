"""`cautionflow dsar`: a subject access export from a register built for the test, with known answers.

The register is built the way production builds it (sync, deadlines, letters, digests through a
real SMTP server, on two days) on SQLite and PostgreSQL. Synthetic data only.
Hexagon 5.5 (withheld under a decision not to notify, with the exemption named), Karbon 9.1 and
Teign 13 (the right of access).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from pypdf import PdfReader

from cautionflow.cli import main
from cautionflow.steps import run_letters
from tests.deployment import FAST, deployment, prepare, write_config
from tests.support import alert_row

D1 = dt.date(2026, 10, 5)
D2 = dt.date(2026, 11, 2)
PERSON = "P-DSAR"
NAME = "Dana Subject"
EXEMPTION = "DPA 2018 Sch 2 para 2 (crime and taxation)"
ACME, NIGHT_DESK = "rota@acme.example", "ooh@callcentre.example"
RECIPIENTS = [
    {"name": "Acme Repairs", "email": ACME, "role": "contractor", "areas": ["NORTH"]},
    {"name": "Night Desk", "email": NIGHT_DESK, "role": "out_of_hours"},
]


def rows(day: dt.date) -> list[dict]:
    second = day == D2
    return [
        # Current: an alert-added letter (Teign 7: VIP needs one), sent to both recipients both days.
        alert_row(alert_id="CUR", person_ref=PERSON, person_name=NAME, effective_from="2026-09-28",
                  note="NOTE-CUR kicked the door" + (" twice" if second else "")),
        # Past: ended at a review on 30 October (a review-removed letter), lifted in the second digest.
        alert_row(alert_id="PAST", alert_code="DOG", person_ref=PERSON, person_name=NAME, effective_from="2025-09-01",
                  notified_on="2025-09-02", note="NOTE-PAST the dog bit a surveyor",
                  **({"status": "ended", "ends_on": "2026-10-30", "last_reviewed_on": "2026-10-30",
                      "review_outcome": "removed"} if second else {})),
        # Withheld: a recorded decision not to notify (Hexagon 5.4-5.5), still sent to the contractors.
        alert_row(alert_id="SECRETIVE", alert_code="WPN", person_ref=PERSON, person_name=NAME,
                  effective_from="2026-09-30", notify_resident=0, no_notify_reason=EXEMPTION,
                  note="NOTE-WITHHELD police intelligence"),
        alert_row(alert_id="OTHER", person_ref="P-OTHER", person_name="Olive Other", address="9 Other Street",
                  note="NOTE-OTHER"),
        # The same id twice: both rows quarantined, naming the person.
        alert_row(alert_id="DUP", person_ref=PERSON, person_name=NAME, note="NOTE-DUP-A"),
        alert_row(alert_id="DUP", person_ref=PERSON, person_name=NAME, note="NOTE-DUP-B", area="SOUTH"),
    ]


def build_register(databases, tmp_path: Path, port: int, *, policy: str = "teign"):
    """Two days of the pipeline: sync, deadlines, letters, digests. Returns the config."""
    from cautionflow.steps import run_digests

    config = deployment(databases, tmp_path, port, recipients=RECIPIENTS, policy=policy,
                        letters={"output_dir": str(tmp_path / "letters")})
    for day in (D1, D2):
        prepare(databases, config, rows=rows(day), as_of=day)
        run_letters(config, as_of=day, run_id=f"letters-{day}")
        sent = run_digests(config, as_of=day, run_id=f"digests-{day}", retry=FAST)
        assert sent["sent"] == 2, sent
    return config


def dsar(capsys, config_path: str, *args: str) -> tuple[int, str, str]:
    code = main(["dsar", "--config", config_path, "--person-ref", PERSON, "--as-of", D2.isoformat(), *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def pdf_text(path: Path) -> str:
    text = "\n".join(page.extract_text() for page in PdfReader(path).pages)
    return re.sub(r"\s+", " ", text)


@pytest.fixture
def register_config(databases, tmp_path, mail_server):
    config = build_register(databases, tmp_path, mail_server.port)
    return write_config(config, tmp_path)


def test_the_residents_copy_holds_everything_but_the_withheld_alert(register_config, tmp_path, capsys):
    out_path = tmp_path / "resident.json"
    code, out, err = dsar(capsys, register_config, "--output", str(out_path))
    assert code == 0, err
    summary = json.loads(out.splitlines()[-1])
    assert summary["path"] == str(out_path) and summary["copy"] == "resident"
    text = out_path.read_text()
    export = json.loads(text)

    assert export["person_ref"] == PERSON and export["names"] == [NAME] and export["copy"] == "resident"
    assert [a["alert_id"] for a in export["alerts"]] == ["PAST", "CUR"]  # oldest first
    assert [a["current"] for a in export["alerts"]] == [False, True]
    cur, past = export["alerts"][1], export["alerts"][0]
    assert cur["facts"]["note"] == "NOTE-CUR kicked the door twice"  # the facts recorded
    assert cur["required_action"].lower().startswith("visit in pairs")
    assert cur["deadlines"]["review_due"] == "2027-09-28"  # Teign 8: annual review
    assert past["deadlines"] is None  # ended alerts keep no dates
    assert past["register"]["register_state"] == "ended"
    assert [h["change"] for h in cur["history"]] == ["first recorded", "changed"]
    assert cur["history"][1]["changed_fields"]["note"] == ["NOTE-CUR kicked the door", "NOTE-CUR kicked the door twice"]
    assert [h["change"] for h in past["history"]][0] == "first recorded" and len(past["history"]) == 2

    # Letters queued (Teign 7 alert added; Hexagon 5.11 review outcome).
    assert [(x["kind"], x["status"]) for x in cur["letters"]] == [("alert_added", "queued")]
    assert [(x["kind"], x["status"]) for x in past["letters"]] == [("review_removed", "queued")]

    # Every disclosure: who was sent which alert, when, as current or lifted.
    told = {(d["recipient_name"], d["disclosed_on"], d["listed_as"]) for d in cur["disclosures"]}
    assert told == {("Acme Repairs", "2026-10-05", "current"), ("Night Desk", "2026-10-05", "current"),
                    ("Acme Repairs", "2026-11-02", "current"), ("Night Desk", "2026-11-02", "current")}
    told = {(d["recipient_name"], d["disclosed_on"], d["listed_as"]) for d in past["disclosures"]}
    assert told == {("Acme Repairs", "2026-10-05", "current"), ("Night Desk", "2026-10-05", "current"),
                    ("Acme Repairs", "2026-11-02", "lifted"), ("Night Desk", "2026-11-02", "lifted")}
    assert all(d["recipient_role"] in ("contractor", "out_of_hours") for d in cur["disclosures"])

    # The quarantined rows that name the person are part of what is held.
    assert sorted(q["facts"]["note"] for q in export["quarantined"]) == ["NOTE-DUP-A", "NOTE-DUP-B"]

    # Hexagon 5.5: the withheld alert is left out, the exemption relied on is named.
    assert "SECRETIVE" not in text and "NOTE-WITHHELD" not in text and "WPN" not in text
    assert export["withheld"] == {"exemption_references": [EXEMPTION]}
    assert "count" not in export["withheld"] and "officer_warnings" not in export
    assert "NOTE-OTHER" not in text and "Olive Other" not in text  # nobody else's data
    assert export["counts"] == {"alerts": 2, "current_alerts": 1, "past_alerts": 1, "letters": 2, "disclosures": 8,
                                "history_entries": 4, "quarantined": 2, "withheld": 1, "lookups": 0}


def test_the_officers_copy_includes_the_withheld_alert_marked_with_its_exemption(register_config, tmp_path, capsys):
    out_path = tmp_path / "officer.json"
    code, out, err = dsar(capsys, register_config, "--include-withheld", "--output", str(out_path))
    assert code == 0, err
    export = json.loads(out_path.read_text())
    assert export["copy"] == "officer"
    by_id = {a["alert_id"]: a for a in export["alerts"]}
    assert set(by_id) == {"PAST", "CUR", "SECRETIVE"}
    withheld = by_id["SECRETIVE"]
    assert (withheld["withheld"], withheld["exemption_reference"]) == (True, EXEMPTION)
    assert withheld["facts"]["note"] == "NOTE-WITHHELD police intelligence"
    assert {d["recipient_name"] for d in withheld["disclosures"]} == {"Acme Repairs", "Night Desk"}
    assert len(withheld["disclosures"]) == 4 and withheld["letters"] == []  # not told: no letter
    assert by_id["CUR"]["withheld"] is False and by_id["CUR"]["exemption_reference"] is None
    assert export["withheld"] == {"exemption_references": [EXEMPTION], "count": 1}
    assert export["officer_warnings"] == []


def test_pdf_and_html_say_the_same_and_leave_out_the_withheld_alert(register_config, tmp_path, capsys):
    code, out, err = dsar(capsys, register_config, "--format", "pdf")
    assert code == 0, err
    path = Path(json.loads(out.splitlines()[-1])["path"])
    assert path.name == f"dsar-{PERSON}-{D2.isoformat()}-resident.pdf" and path.parent.name == "dsar"
    text = pdf_text(path)
    for expected in (f"person reference {PERSON}", NAME, "NOTE-CUR kicked the door twice", "NOTE-PAST the dog bit",
                     "Acme Repairs", "Night Desk", "as an alert that had been lifted", "alert added",
                     "review removed", "2 November 2026", EXEMPTION, "NOTE-DUP-A"):
        assert expected in text, expected
    assert "NOTE-WITHHELD" not in text and "SECRETIVE" not in text

    code, out, err = dsar(capsys, register_config, "--format", "html", "--include-withheld")
    assert code == 0, err
    html = Path(json.loads(out.splitlines()[-1])["path"]).read_text()
    assert "Officer&#39;s copy" in html or "Officer's copy" in html
    assert "NOTE-WITHHELD police intelligence" in html and "Withheld from the resident" in html
    assert html.count("<h2>Alert ") == 3


def test_an_unknown_reference_is_a_clear_error_and_no_file(register_config, tmp_path, capsys):
    out_path = tmp_path / "nobody.json"
    code = main(["dsar", "--config", register_config, "--person-ref", "P-NOBODY", "--output", str(out_path)])
    captured = capsys.readouterr()
    assert code == 2
    assert "holds nothing about person reference 'P-NOBODY'" in captured.err
    assert "No file written" in captured.err and captured.out == ""
    assert not out_path.exists() and not (tmp_path / "reports" / "dsar").exists()
