"""`run deadlines`: every active alert's dates stored, counted and reported (SQLite and PostgreSQL)."""

from __future__ import annotations

import csv
import datetime as dt
from pathlib import Path

from sqlalchemy import create_engine, select

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.config import parse_config
from cautionflow.steps import run_deadlines, run_sync
from tests.support import AS_OF, REPO, alert_row


def config_for(dbs, tmp_path, policy="dover"):
    return parse_config(
        {
            "organisation": "Example Homes",
            "policy": policy,
            "register_url": dbs.register_url,
            "source": {"url": dbs.source_url},
            "output_dir": str(tmp_path / "reports"),
        },
        home=REPO,
    )


def stored(dbs) -> dict[str, dict]:
    engine = create_engine(normalise_url(dbs.register_url))
    with engine.connect() as conn:
        rows = {r.alert_id: r._asdict() for r in conn.execute(select(schema.alert_deadlines))}
    engine.dispose()
    return rows


SOURCE = [
    # Dover 6.16: 12 months from effective_from; 6.21: review on a non-working day moves past it.
    # 2025-11-23 + 12 months = Mon 23 Nov 2026 -> due today, not overdue.
    alert_row(alert_id="D1", effective_from="2025-11-23"),
    # 2025-11-01 + 12 months = Sun 1 Nov 2026 -> moves to Mon 2 Nov 2026 -> overdue on 23 Nov.
    alert_row(alert_id="D2", effective_from="2025-11-01"),
    # Reviewed and kept on 10 Dec 2025: a new period from the review -> due Thu 10 Dec 2026.
    alert_row(alert_id="D3", effective_from="2024-06-01", last_reviewed_on="2025-12-10", review_outcome="retained"),
    # Dover 6.34-6.35: appeal within 20 working days of the decision, answered within 10 working days.
    alert_row(alert_id="D4", effective_from="2026-11-02", notified_on="2026-11-02", appeal_received_on="2026-11-20"),
    # Unknown code: a live warning with an error, no dates.
    alert_row(alert_id="D5", alert_code="XXZ", effective_from="2026-01-05", address="<script>alert(1)</script>"),
    # Ended alerts have no deadlines.
    alert_row(alert_id="D6", status="ended", effective_from="2025-01-01"),
]


def test_deadlines_are_stored_counted_and_reported(databases, tmp_path):
    databases.write_source(SOURCE)
    config = config_for(databases, tmp_path)
    run_sync(config, as_of=AS_OF, run_id="sync")

    summary = run_deadlines(config, as_of=AS_OF, run_id="deadlines")

    assert {k: summary[k] for k in ("alerts", "overdue", "due_within_30_days", "errors", "appeals_awaiting_answer")} == {
        "alerts": 5, "overdue": 1, "due_within_30_days": 2, "errors": 1, "appeals_awaiting_answer": 1,
    }
    rows = stored(databases)
    assert set(rows) == {"D1", "D2", "D3", "D4", "D5"}
    assert rows["D1"]["review_due"] == dt.date(2026, 11, 23) and rows["D1"]["overdue"] == 0
    assert rows["D2"]["review_due"] == dt.date(2026, 11, 2) and rows["D2"]["overdue"] == 1  # Dover 6.21
    assert rows["D2"]["expires_on"] == dt.date(2026, 11, 1)  # the expiry itself does not move
    assert rows["D3"]["review_due"] == dt.date(2026, 12, 10)
    assert rows["D3"]["review_window_opens"] == dt.date(2026, 11, 30)  # 10 days' lead in the Dover profile
    assert rows["D4"]["appeal_deadline"] == dt.date(2026, 11, 30)  # 20 working days after 2 Nov (6.34)
    assert rows["D4"]["appeal_response_due"] == dt.date(2026, 12, 4)  # 10 working days after 20 Nov (6.35)
    assert rows["D5"]["review_due"] is None and "XXZ" in rows["D5"]["error"]
    assert all(r["evaluated_on"] == AS_OF and r["policy"] == "dover" for r in rows.values())

    # The All Alerts report: Teign Appendix F's columns, one row per active alert.
    with open(summary["reports"]["all_alerts_csv"], newline="", encoding="utf-8-sig") as handle:
        report = list(csv.DictReader(handle))
    assert [r["Alert ID"] for r in report] == ["D1", "D2", "D3", "D4", "D5"]
    d2 = report[1]
    assert (d2["Contact Name"], d2["Group Name"], d2["Review Period"], d2["Review Due Date"], d2["Overdue"]) == (
        "Alex Example", "Visit in pairs (VIP)", "12 Months", "02/11/2026", "Yes",
    )
    assert report[2]["Latest Review Completion Date"] == "10/12/2025"
    assert report[0]["Review Last Evaluated"] == "23/11/2026"
    html = Path(summary["reports"]["all_alerts_html"]).read_text()
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html  # text, never markup
    assert "Confidential" in html

    with open(summary["reports"]["overdue_csv"], newline="", encoding="utf-8-sig") as handle:
        overdue = list(csv.DictReader(handle))
    assert [(r["alert_id"], r["review_due"], r["days_overdue"]) for r in overdue] == [("D2", "2026-11-02", "21")]


def test_rerunning_the_day_changes_nothing(databases, tmp_path):
    databases.write_source(SOURCE)
    config = config_for(databases, tmp_path)
    run_sync(config, as_of=AS_OF, run_id="sync")
    first = run_deadlines(config, as_of=AS_OF, run_id="one")
    before = stored(databases), Path(first["reports"]["all_alerts_csv"]).read_text()

    second = run_deadlines(config, as_of=AS_OF, run_id="two")

    assert (stored(databases), Path(second["reports"]["all_alerts_csv"]).read_text()) == before


def test_a_later_day_recomputes_overdue(databases, tmp_path):
    databases.write_source(SOURCE)
    config = config_for(databases, tmp_path)
    run_sync(config, as_of=AS_OF, run_id="sync")
    later = run_deadlines(config, as_of=dt.date(2026, 11, 24), run_id="next")
    assert later["overdue"] == 2  # D1 was due on the 23rd


def test_each_landlords_profile_drives_the_dates(databases, tmp_path):
    databases.write_source([alert_row(alert_id="K1", alert_code="DNV", effective_from="2026-10-31")])
    config = config_for(databases, tmp_path, policy="karbon")
    run_sync(config, as_of=AS_OF, run_id="sync")
    run_deadlines(config, as_of=AS_OF, run_id="deadlines")
    # Karbon 8.1: "do not visit" is reviewed monthly; 31 Oct + 1 month = 30 Nov.
    assert stored(databases)["K1"]["review_due"] == dt.date(2026, 11, 30)
