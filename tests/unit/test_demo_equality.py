"""The demo housing database's equality data (issue 7): aggregate counts in an `equality_counts`
view that the shipped include/sql/equality_counts.sql reads, consistent with the alerts."""

from __future__ import annotations

import sqlite3
from collections import defaultdict

from cautionflow.demo.housing import EQUALITY_VIEW, VIEW_NAME, build_housing_database
from cautionflow.domain.equality import EQUALITY_COLUMNS, equality_report, read_counts
from tests.support import AS_OF, REPO


def test_equality_counts_are_aggregates_consistent_with_the_alerts(tmp_path):
    summary = build_housing_database(tmp_path / "housing.db", homes=2_000, alerts=400, as_of=AS_OF)
    con = sqlite3.connect(tmp_path / "housing.db")
    try:
        cursor = con.execute((REPO / "include" / "sql" / "equality_counts.sql").read_text())
        columns = [d[0] for d in cursor.description]
        rows = cursor.fetchall()
        kinds = dict(con.execute("SELECT name, type FROM sqlite_master").fetchall())
        # Households flagged, worked out independently: distinct tenancies with an active alert.
        flagged = {
            r[0] for r in con.execute(f"SELECT tenancy_ref FROM {VIEW_NAME} WHERE status = 'active'") if r[0]
        }
    finally:
        con.close()
    assert kinds[EQUALITY_VIEW] == "view"
    assert tuple(columns) == EQUALITY_COLUMNS  # aggregate counts only, nothing about one person
    totals: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for characteristic, _, households, flagged_households in rows:
        totals[characteristic][0] += households
        totals[characteristic][1] += flagged_households
    # Every characteristic's groups cover every household exactly once (the README's contract).
    assert len(totals) == 5
    assert all(t == [summary.tenancies, len(flagged)] for t in totals.values()), (dict(totals), len(flagged))
    report = equality_report(read_counts(columns, rows))  # the shipped query satisfies the contract
    assert {r.characteristic for r in report} == set(totals)


def test_equality_data_does_not_change_the_rest_of_the_database(tmp_path, monkeypatch):
    # The characteristics come from their own generator: the alerts are the same with or without them.
    from cautionflow.demo import housing

    build_housing_database(tmp_path / "with.db", homes=300, alerts=100, as_of=AS_OF, seed=3)
    build_housing_database(tmp_path / "again.db", homes=300, alerts=100, as_of=AS_OF, seed=3)
    monkeypatch.setattr(housing, "_write_equality", lambda *args: None)
    build_housing_database(tmp_path / "without.db", homes=300, alerts=100, as_of=AS_OF, seed=3)

    def read(name: str, query: str) -> list[tuple]:
        con = sqlite3.connect(tmp_path / name)
        try:
            return con.execute(query).fetchall()
        finally:
            con.close()

    alerts = f"SELECT * FROM {VIEW_NAME}"
    assert read("with.db", alerts) == read("without.db", alerts)
    equality = f"SELECT * FROM {EQUALITY_VIEW}"
    assert read("with.db", equality) == read("again.db", equality)  # deterministic for a seed
