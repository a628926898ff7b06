"""Retention: ended alerts' personal details anonymised after the profile's period, logged, idempotent.

A register built by the real pipeline (sync, deadlines, letters emailed and printed, digests through
a real SMTP server) over three days, on SQLite and PostgreSQL. Synthetic data only.
Teign 13: "When a sanction is removed, all details will be retained for a period in accordance
with the organisational data retention policy"; Dover 10.1: processed in line with data protection
legislation. Neither states the period: the landlord sets `retention_months_after_end`.
"""

from __future__ import annotations

import datetime as dt
import email
import json
from pathlib import Path

import pytest
import yaml
from sqlalchemy import create_engine, select

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.cli import main
from cautionflow.profiles import PROFILE_DIR
from cautionflow.services.retention import ANONYMISED, PERSONAL_FIELDS
from cautionflow.steps import run_digests, run_letters, run_retention, run_sync
from tests.deployment import FAST, deployment, prepare, write_config
from tests.support import AS_OF, alert_row

D1, D2, D3 = dt.date(2025, 6, 2), dt.date(2025, 7, 1), dt.date(2026, 3, 31)
RECIPIENTS = [
    {"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor", "areas": ["NORTH"]},
    {"name": "Night Desk", "email": "ooh@callcentre.example", "role": "out_of_hours"},
]
GONE = {"alert_id": "GONE", "person_ref": "P-GONE", "person_name": "Gwen Gone", "tenancy_ref": "T-GONE",
        "asset_ref": "H-GONE", "address": "3 Birch Way, Eastwick", "postcode": "EW9 9ZZ", "email": "gwen@example.net",
        "preferred_channel": "email", "effective_from": "2025-05-26", "note": "NOTE-GONE shouted at a surveyor"}
ENDED = {"status": "ended", "ends_on": "2025-06-30", "person_name": "Gwen Gone-Smith",
         "note": "NOTE-GONE shouted at a surveyor; resolved"}


def rows(day: dt.date) -> list[dict]:
    recent = alert_row(alert_id="RECENT", person_ref="P-RECENT", person_name="Rita Recent", address="4 Elm Road",
                       effective_from="2025-01-06", notified_on="2025-01-07", note="NOTE-RECENT")
    live = alert_row(alert_id="LIVE", person_ref="P-LIVE", person_name="Lee Live", address="5 Oak Road",
                     effective_from="2025-05-01", note="NOTE-LIVE")
    if day == D1:
        return [alert_row(**GONE), recent, live]
    if day == D2:
        return [alert_row(**{**GONE, **ENDED}), recent, live]
    # D3: RECENT ends; GONE, still ended in the source, now comes twice (both rows quarantined).
    gone = alert_row(**{**GONE, **ENDED})
    return [gone, {**gone, "note": "NOTE-GONE duplicate"}, {**recent, "status": "ended", "ends_on": "2026-03-31"}, live]


def profile_file(tmp_path: Path, months: int) -> str:
    data = yaml.safe_load((PROFILE_DIR / "teign.yaml").read_text())
    data["retention_months_after_end"] = months
    path = tmp_path / "teign-retention.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def build(databases, tmp_path: Path, port: int, policy: str):
    config = deployment(databases, tmp_path, port, recipients=RECIPIENTS, policy=policy,
                        letters={"output_dir": str(tmp_path / "letters"), "auto_approve": True})
    for day in (D1, D2, D3):
        prepare(databases, config, rows=rows(day), as_of=day)
        run_letters(config, as_of=day, run_id=f"letters-{day}", retry=FAST)
        run_digests(config, as_of=day, run_id=f"digests-{day}", retry=FAST)
    return config


def snapshot(url: str) -> dict[str, list[tuple]]:
    engine = create_engine(normalise_url(url))
    try:
        with engine.connect() as conn:
            return {
                t.name: sorted(tuple(str(v) for v in r) for r in conn.execute(select(t)))
                for t in schema.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def table(url: str, name: str, **where) -> list[dict]:
    engine = create_engine(normalise_url(url))
    t = schema.metadata.tables[name]
    try:
        with engine.connect() as conn:
            query = select(t).where(*(t.c[k] == v for k, v in where.items()))
            return [dict(r._mapping) for r in conn.execute(query)]
    finally:
        engine.dispose()


@pytest.fixture
def built(databases, tmp_path, mail_server):
    config = build(databases, tmp_path, mail_server.port, policy=profile_file(tmp_path, 12))
    return config


def test_without_a_retention_period_nothing_is_anonymised_and_the_summary_says_so(databases, tmp_path, mail_server):
    config = build(databases, tmp_path, mail_server.port, policy="teign")  # Teign 13 names no period
    before = snapshot(databases.register_url)
    summary = run_retention(config, as_of=AS_OF, run_id="retention-1")
    assert summary["configured"] is False and summary["anonymised"] == 0 and summary["alerts"] == []
    assert summary["message"].startswith("retention is not configured")
    assert (summary["ended_alerts"], summary["ended_with_personal_details"]) == (2, 2)
    assert snapshot(databases.register_url) == before


def test_a_dry_run_lists_what_would_be_anonymised_and_changes_nothing(built, databases):
    before = snapshot(databases.register_url)
    summary = run_retention(built, as_of=AS_OF, run_id="retention-dry", dry_run=True)
    assert summary["dry_run"] is True and summary["anonymised"] == 1
    assert [a["alert_id"] for a in summary["alerts"]] == ["GONE"]  # RECENT is kept until 31 March 2027
    assert summary["message"].startswith("would anonymise 1 alert(s)")
    assert snapshot(databases.register_url) == before


def test_ended_alerts_past_the_period_are_anonymised_everywhere_once(built, databases, tmp_path):
    url = databases.register_url
    [letter] = table(url, "letters", alert_id="GONE")
    pdf = tmp_path / "letters" / letter["pdf_path"]
    assert pdf.is_file() and letter["status"] == "dispatched"
    untouched = {r["id"]: r["message"] for r in table(url, "outbox") if "GONE" not in r["disclosed_alerts"]}

    summary = run_retention(built, as_of=AS_OF, run_id="retention-1")

    assert (summary["configured"], summary["retention_months"], summary["anonymised"]) == (True, 12, 1)
    [done] = summary["alerts"]
    assert done["alert_id"] == "GONE" and done["ended_on"] == "2025-06-30"  # the source's ends_on
    assert set(done["fields"]) == set(PERSONAL_FIELDS) - {"no_notify_reason"}  # those that held a value
    # Digests on D1 (2 recipients), the lifted digests on D2 (2), and the letter emailed to her.
    assert (done["outbox"], done["disclosures"], done["letters"], done["letter_pdfs"], done["quarantine"]) == (
        5, 1, 1, 1, 2)
    assert done["alert_history"] >= 1
    assert "Gwen" not in json.dumps(summary) and "NOTE-GONE" not in json.dumps(summary)  # XCom-safe

    [alert] = table(url, "alerts", alert_id="GONE")
    assert all(alert[c] is None for c in PERSONAL_FIELDS)
    # Statistics survive: code, area, dates, state.
    assert (alert["alert_code"], alert["area"], str(alert["effective_from"]), str(alert["ends_on"])) == (
        "VIP", "NORTH", "2025-05-26", "2025-06-30")
    assert alert["register_state"] == "ended" and alert["anonymised_on"] == AS_OF

    history = table(url, "alert_history", alert_id="GONE")
    assert "Gwen" not in json.dumps(history, default=str) and "NOTE-GONE" not in json.dumps(history, default=str)
    changed = [json.loads(h["changed_fields"]) for h in history if h["changed_fields"]]
    assert any(c.get("person_name") == [ANONYMISED, ANONYMISED] for c in changed)  # which field changed stays
    assert any(c.get("status") == ["active", "ended"] for c in changed)

    [letter] = table(url, "letters", alert_id="GONE")
    assert (letter["person_name"], letter["address_lines"], letter["email"], letter["person_ref"]) == (
        ANONYMISED, "", None, None)
    assert "Gwen" not in letter["html"] and letter["status"] == "dispatched"
    assert not pdf.exists()

    for message in table(url, "outbox"):
        if message["id"] in untouched:
            assert message["message"] == untouched[message["id"]]  # other alerts' messages unchanged
            continue
        assert message["message"].startswith("[removed by the retention run retention-1 on 2026-11-23")
        if message["kind"] == "letter":
            assert (message["recipient_name"], message["recipient_email"]) == (ANONYMISED, ANONYMISED)
    for message in table(url, "outbox"):
        parsed = email.message_from_string(message["message"])
        text = " ".join(str(p.get_payload(decode=True) or b"", "utf-8", "replace") for p in parsed.walk())
        assert "Gwen" not in text + message["recipient_name"]
    told = {(d["recipient_name"], d["recipient_role"]) for d in table(url, "disclosures", alert_id="GONE")}
    assert told == {("Acme Repairs", "contractor"), ("Night Desk", "out_of_hours"), (ANONYMISED, "resident")}
    # What the digests showed of it (hashes of the name and address among it) is gone from the
    # disclosure log and the outbox; other alerts' records stay for the next digest's "Changed".
    assert all(d["shown"] is None for d in table(url, "disclosures", alert_id="GONE"))
    kept = [json.loads(m["disclosed_alerts"]).get("shown", {}) for m in table(url, "outbox")]
    assert not any("GONE" in shown for shown in kept)
    assert any(shown for shown in kept)
    assert any(d["shown"] for d in table(url, "disclosures") if d["alert_id"] != "GONE")

    quarantined = table(url, "quarantine", alert_id="GONE")
    assert len(quarantined) == 2
    for q in quarantined:
        raw = json.loads(q["raw_row"])
        assert raw["person_name"] == ANONYMISED and raw["note"] == ANONYMISED and raw["alert_code"] == "VIP"

    [log] = table(url, "anonymisation_log")
    assert (log["alert_id"], log["run_id"], log["as_of"], log["ended_on"], log["retention_months"]) == (
        "GONE", "retention-1", AS_OF, dt.date(2025, 6, 30), 12)
    assert json.loads(log["fields_cleared"])["outbox"] == 5

    # Still held, not yet due, or still current: untouched.
    for alert_id, name in (("RECENT", "Rita Recent"), ("LIVE", "Lee Live")):
        [row] = table(url, "alerts", alert_id=alert_id)
        assert row["person_name"] == name and row["anonymised_on"] is None

    # Idempotent: a rerun, the next week, changes nothing.
    after = snapshot(url)
    again = run_retention(built, as_of=AS_OF + dt.timedelta(days=7), run_id="retention-2")
    assert again["anonymised"] == 0 and again["alerts"] == []
    assert snapshot(url) == after

    # The next sync reads GONE unchanged (still ended in the source): its details do not come back.
    run_sync(built, as_of=AS_OF + dt.timedelta(days=1), run_id="sync-after")
    [alert] = table(url, "alerts", alert_id="GONE")
    assert alert["person_name"] is None and alert["note"] is None

    # The register no longer holds anything about her: a subject access request finds nothing.
    path = write_config(built, tmp_path)
    assert main(["dsar", "--config", str(path), "--person-ref", "P-GONE"]) == 2


def test_the_command_line_dry_run(built, databases, tmp_path, capsys):
    path = write_config(built, tmp_path)
    before = snapshot(databases.register_url)
    code = main(["retention", "--config", str(path), "--as-of", AS_OF.isoformat(), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "would anonymise 1 alert(s) ended more than 12 month(s) before 2026-11-23" in out
    assert "GONE (ended 2025-06-30)" in out and "Gwen" not in out
    assert json.loads(out.splitlines()[-1])["anonymised"] == 1
    assert snapshot(databases.register_url) == before
