"""Governance reports (issue 7) on a register built for the test: equality monitoring, feedback
survey exclusions, non-notification decisions and stale alerts (SQLite and PostgreSQL), and the
`cautionflow governance` command. Every expected value is worked out by hand in the comments."""

from __future__ import annotations

import csv
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from sqlalchemy import inspect

from cautionflow.adapters.register import Register
from cautionflow.services.governance_reports import GovernanceError
from cautionflow.steps import run_sync
from tests.deployment import (
    EQUALITY_SQL,
    governance_config,
    run_reports,
    write_equality_table,
    write_governance_reports,
)
from tests.support import AS_OF, alert_row, write_sqlite_source

FIRST_SYNC = dt.date(2026, 6, 1)
SECOND_SYNC = dt.date(2026, 11, 16)

# Karbon: reviews every 6 months, "do not visit" monthly (8.1); no default duration.
BEFORE = [
    # Feedback survey exclusions (Wandle 5.0): active contact restrictions (CM, SPOC), tenancy refs only.
    alert_row(alert_id="S1", alert_code="CM", tenancy_ref="T100", person_name="Sam Restricted"),
    alert_row(alert_id="S2", alert_code="SPOC", tenancy_ref="T200"),
    alert_row(alert_id="S3", alert_code="CM", tenancy_ref="T100", subject_type="household"),  # same tenancy
    alert_row(alert_id="S4", alert_code="CM", tenancy_ref="T300", status="ended"),  # ended: surveys resume
    alert_row(alert_id="S5", alert_code="VIP", tenancy_ref="T400"),  # a visit measure, not a restriction
    alert_row(alert_id="S6", alert_code="CM", subject_type="address", person_ref=None, person_name=None,
              tenancy_ref=None),  # no tenancy to exclude
    # Non-notification decisions.
    alert_row(alert_id="N1", notify_resident=0, no_notify_reason="Police asked that the resident is not told.",
              effective_from="2026-01-10", tenancy_ref="T500"),
    alert_row(alert_id="N2", notify_resident=0, effective_from="2025-05-01", last_reviewed_on="2026-05-01",
              review_outcome="retained", tenancy_ref="T600"),
    alert_row(alert_id="N3", notify_resident=0, no_notify_reason="   ", effective_from="2026-09-01"),
    alert_row(alert_id="N4", notify_resident=1),
    alert_row(alert_id="N5", notify_resident=0, status="ended"),
    # Stale: more than twice the interval without a review (Karbon: 2 x 6 months; DNV 2 x 1 month).
    alert_row(alert_id="U1", effective_from="2025-05-01"),  # limit 2026-05-01: 206 days past on 23 Nov
    alert_row(alert_id="U2", effective_from="2025-06-01", last_reviewed_on="2026-06-01", review_outcome="retained"),
    alert_row(alert_id="U3", alert_code="DNV", effective_from="2026-09-01"),  # limit 2026-11-01: 22 days past
    alert_row(alert_id="U4", effective_from="2026-05-23"),  # limit 2026-11-23 = as of: not more than twice
    # Past expiry, still active in the source.
    alert_row(alert_id="E1", effective_from="2026-08-01", ends_on="2026-11-01"),  # 22 days past
    alert_row(alert_id="E2", effective_from="2026-08-01", ends_on="2026-11-23"),  # ends today: not past
    # Drift (changed below, between the two syncs).
    alert_row(alert_id="D1", effective_from="2026-03-01", ends_on="2026-12-01"),
    alert_row(alert_id="D2", effective_from="2026-03-01", ends_on="2026-12-01"),
    alert_row(alert_id="D3", effective_from="2026-03-01"),
    alert_row(alert_id="D4", effective_from="2026-03-01"),
]
CHANGES = {
    "D1": {"ends_on": "2027-06-01"},  # extended outside the review process: drift
    "D2": {"ends_on": "2027-06-01", "last_reviewed_on": "2026-11-10", "review_outcome": "retained"},  # reviewed
    "D3": {"effective_from": "2026-02-01"},  # start moved back without a review: drift
    "D4": {"note": "Further incident recorded."},  # no date changed
}
AFTER = [{**r, **CHANGES.get(r["alert_id"], {})} for r in BEFORE]

def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="", encoding="utf-8-sig") as f:  # the BOM is for Excel
        return list(csv.DictReader(f))


@pytest.fixture
def built(databases, tmp_path):
    databases.write_source(BEFORE)
    config = governance_config(databases, tmp_path)
    run_sync(config, as_of=FIRST_SYNC, run_id="first")
    databases.write_source(AFTER)
    run_sync(config, as_of=SECOND_SYNC, run_id="second")
    write_equality_table(databases.source_url)
    return databases, config


def test_every_report_written_with_known_answers(built, tmp_path):
    databases, config = built
    register = Register(databases.register_url)
    try:
        tables_before = set(inspect(register.engine).get_table_names())
        paths = write_governance_reports(config, register, AS_OF, tmp_path / "reports")
        tables_after = set(inspect(register.engine).get_table_names())
    finally:
        register.dispose()
    folder = tmp_path / "reports"
    assert paths == {
        "equality_csv": folder / "equality-2026-Q4.csv", "equality_html": folder / "equality-2026-Q4.html",
        "survey_exclusions_csv": folder / "survey-exclusions-2026-11-23.csv",
        "survey_exclusions_html": folder / "survey-exclusions-2026-11-23.html",
        "non_notification_csv": folder / "non-notification-2026-11-23.csv",
        "non_notification_html": folder / "non-notification-2026-11-23.html",
        "stale_csv": folder / "stale-alerts-2026-11-23.csv", "stale_html": folder / "stale-alerts-2026-11-23.html",
    }
    assert all(p.is_file() for p in paths.values())
    # Equality counts are never copied into the register (Hexagon Appendix 1: aggregate only).
    assert tables_after == tables_before

    # Wandle 5.0: T100 once (two restrictions), T200 (SPOC); not T300 (ended), T400 (VIP), no address alert.
    survey = paths["survey_exclusions_csv"].read_bytes()
    assert survey == '\ufeff"tenancy_ref"\r\n"T100"\r\n"T200"\r\n'.encode()  # the one CSV writer's form
    assert "Sam Restricted" not in paths["survey_exclusions_html"].read_text()  # tenancy refs only

    # Non-notification: N2 (no reason, decided at its review 2026-05-01: 206 days) and N3 (blank reason,
    # from its start 2026-09-01: 83 days) first, oldest first; then N1 (reason, 2026-01-10: 317 days).
    # Not N4 (notified) or N5 (ended).
    rows = read_csv(paths["non_notification_csv"])
    assert [(r["alert_id"], r["reason_recorded"], r["decision_basis"], r["decided_on"], r["days_since_decision"])
            for r in rows] == [
        ("N2", "No", "last review", "2026-05-01", "206"),
        ("N3", "No", "effective from", "2026-09-01", "83"),
        ("N1", "Yes", "effective from", "2026-01-10", "317"),
    ]
    assert rows[2]["no_notify_reason"] == "Police asked that the resident is not told."
    assert rows[2]["tenancy_ref"] == "T500"

    # Stale: U1 (twice 6 months from 2025-05-01 = 2026-05-01, 206 days past), U3 (DNV, Karbon 8.1: twice
    # 1 month from 2026-09-01 = 2026-11-01, 22 days past); E1 past its end 2026-11-01 (22 days);
    # drift D1 (ends_on extended) and D3 (start moved), 7 days before the as-of date; not D2 (reviewed).
    stale = read_csv(paths["stale_csv"])
    assert [(r["check"], r["alert_id"], r["since"], r["days"]) for r in stale] == [
        ("unreviewed", "U1", "2025-05-01", "206"),
        ("unreviewed", "U3", "2026-09-01", "22"),
        ("past_expiry", "E1", "2026-11-01", "22"),
        ("drift", "D1", "2026-11-16", "7"),
        ("drift", "D3", "2026-11-16", "7"),
    ]
    assert stale[1]["detail"] == "effective from 2026-09-01; review every 1 months; twice that passed on 2026-11-01"
    assert stale[3]["detail"] == "ends_on 2026-12-01 -> 2027-06-01; last_reviewed_on unchanged"
    assert stale[4]["detail"] == "effective_from 2026-03-01 -> 2026-02-01; last_reviewed_on unchanged"

    equality = {(r["characteristic"], r["group"]): r for r in read_csv(paths["equality_csv"])}
    total = equality[("Age band", "(all households)")]
    assert (total["households"], total["flagged_households"], total["flagged_rate_pct"]) == ("2000", "75", "3.75")
    young = equality[("Age band", "16-34")]
    # a=30 of 400 (7.50%); outside 45 of 1600 (2.81%); RR = 0.075/0.028125 = 2.667; Katz 1.702 to 4.177
    assert (young["flagged_rate_pct"], young["flagged_rate_outside_pct"], young["rate_ratio"]) == ("7.50", "2.81", "2.667")
    assert (young["ci95_lower"], young["ci95_upper"], young["interval_above_1"]) == ("1.702", "4.177", "Yes")
    for key in (("Age band", "65 and over"), ("Age band", "Not recorded"), ("Sex", "Not recorded"), ("Sex", "Male")):
        row = equality[key]
        assert row["flagged_households"] == "suppressed", key
        assert row["rate_ratio"] == row["ci95_lower"] == row["flagged_rate_pct"] == "", key
    assert equality[("Sex", "Male")]["suppressed"].startswith("hidden so that")  # secondary suppression
    female = equality[("Sex", "Female")]
    # 40 of 1100 against 35 of 900: RR = 0.036364/0.038889 = 0.935; not above 1
    assert (female["rate_ratio"], female["interval_above_1"]) == ("0.935", "")
    page = paths["equality_html"].read_text()
    assert "<svg" in page and "<script" not in page and "http" not in page.replace("http://www.w3.org/2000/svg", "")


def test_one_report_at_a_time_and_equality_needs_its_section(built, tmp_path):
    databases, _ = built
    config = governance_config(databases, tmp_path, equality=False)
    register = Register(databases.register_url)
    try:
        result = run_reports(config, register, AS_OF, reports=("survey-exclusions",))
        assert set(result.paths) == {"survey_exclusions_csv", "survey_exclusions_html"}
        assert result.counts == {"survey_exclusions": 2}
        everything = run_reports(config, register, AS_OF)  # "all" leaves equality out quietly
        assert everything.counts["equality"] == "not configured"
        assert everything.counts["stale"] == {"unreviewed": 2, "past_expiry": 1, "drift": 2}
        assert everything.counts["non_notification"] == {"alerts": 3, "no_reason_recorded": 2}
        with pytest.raises(GovernanceError, match="no equality section"):
            run_reports(config, register, AS_OF, reports=("equality",))
    finally:
        register.dispose()


def cautionflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAUTIONFLOW_HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "cautionflow", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def test_the_governance_command_prints_paths_then_json(tmp_path):
    (tmp_path / "var").mkdir()
    write_sqlite_source(tmp_path / "var" / "housing.db", BEFORE)
    write_equality_table(f"sqlite:///{tmp_path / 'var' / 'housing.db'}")
    (tmp_path / "equality.sql").write_text(EQUALITY_SQL)
    config = {
        "organisation": "Example Homes", "policy": "karbon", "register_url": "sqlite:///var/register.db",
        "source": {"url": "sqlite:///var/housing.db"}, "output_dir": "var/reports",
        "equality": {"query": "equality.sql", "period": "monthly"},
    }
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(config))
    synced = cautionflow("run", "sync", "--config", "cautionflow.yaml", "--as-of", "2026-06-01", cwd=tmp_path)
    assert synced.returncode == 0, synced.stderr

    done = cautionflow("governance", "--config", "cautionflow.yaml", "--as-of", "2026-11-23", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    summary = json.loads(lines[-1])
    assert lines[0] == f"equality_csv: {tmp_path / 'var' / 'reports' / 'equality-2026-11.csv'}"
    assert summary["survey_exclusions"] == 2 and summary["equality"]["period"] == "2026-11"
    assert summary["equality"]["interval_above_1"] == ["Age band: 16-34"]
    assert len(summary["reports"]) == 8

    one = cautionflow("governance", "--config", "cautionflow.yaml", "--as-of", "2026-11-23", "--report", "stale",
                      cwd=tmp_path)
    assert one.returncode == 0 and set(json.loads(one.stdout.splitlines()[-1])["reports"]) == {"stale_csv", "stale_html"}

    config.pop("equality")
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(config))
    refused = cautionflow("governance", "--config", "cautionflow.yaml", "--report", "equality", cwd=tmp_path)
    assert refused.returncode == 2
    assert refused.stderr.strip().splitlines() == [
        "cautionflow: error: equality: the config has no equality section (query, url, period)"
    ]


def test_an_equality_query_returning_individuals_is_refused(tmp_path):
    # Hexagon Appendix 1 / Teign 11 ask for monitoring, not a copy of anyone's characteristics.
    (tmp_path / "var").mkdir()
    housing = tmp_path / "var" / "housing.db"
    write_sqlite_source(housing, BEFORE)
    write_equality_table(f"sqlite:///{housing}")
    (tmp_path / "people.sql").write_text(
        "SELECT characteristic, group_label, households, flagged_households, 'P0001' AS person_ref FROM equality_counts"
    )
    config = {
        "organisation": "Example Homes", "policy": "karbon", "register_url": "sqlite:///var/register.db",
        "source": {"url": "sqlite:///var/housing.db"}, "output_dir": "var/reports",
        "equality": {"query": "people.sql"},
    }
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(config))
    refused = cautionflow("governance", "--config", "cautionflow.yaml", "--report", "equality", cwd=tmp_path)
    assert refused.returncode == 2
    [line] = refused.stderr.strip().splitlines()
    assert line.startswith("cautionflow: error: equality query on sqlite:///") and "aggregate counts only" in line
    assert not (tmp_path / "var" / "reports").exists()
