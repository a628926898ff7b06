"""The daily sync against real databases: SQLite, and the PostgreSQL server on 127.0.0.1:5432."""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import create_engine, select, text

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.adapters.register import Register, RegisterTransaction
from cautionflow.adapters.source import SourceError, SqlAlertSource
from cautionflow.config import DEFAULT_SOURCE_QUERY
from cautionflow.domain.validation import SourceShapeError
from cautionflow.services import sync as sync_service
from cautionflow.services.sync import EmptySourceError, sync_register
from tests.support import alert_row

DAY1, DAY2, DAY3 = dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25)


def run(dbs, as_of=DAY1, run_id="run-1", **kwargs):
    register = Register(dbs.register_url)
    try:
        return sync_register(
            SqlAlertSource(dbs.source_url, DEFAULT_SOURCE_QUERY), register, as_of=as_of, run_id=run_id, **kwargs
        )
    finally:
        register.dispose()


def register_value(dbs, statement: str):
    """One value the register's database answers `statement` with."""
    engine = create_engine(normalise_url(dbs.register_url))
    try:
        with engine.connect() as conn:
            return conn.execute(text(statement)).scalar_one()
    finally:
        engine.dispose()


def snapshot(dbs) -> dict[str, list[tuple]]:
    """Everything the register holds except the run log, for before/after comparisons."""
    engine = create_engine(normalise_url(dbs.register_url))
    with engine.connect() as conn:
        out = {
            table.name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
            for table in (schema.alerts, schema.alert_history, schema.quarantine)
        }
    engine.dispose()
    return out


def alerts_by_id(dbs) -> dict[str, dict]:
    engine = create_engine(normalise_url(dbs.register_url))
    with engine.connect() as conn:
        rows = {r.alert_id: r._asdict() for r in conn.execute(select(schema.alerts))}
    engine.dispose()
    return rows


def history(dbs, alert_id: str) -> list[tuple[str, dict | None]]:
    engine = create_engine(normalise_url(dbs.register_url))
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT change, changed_fields FROM alert_history WHERE alert_id = :a ORDER BY id"), {"a": alert_id}
        ).all()
    engine.dispose()
    return [(change, json.loads(fields) if fields else None) for change, fields in rows]


MIXED_SOURCE = [
    alert_row(alert_id="A1"),
    alert_row(alert_id="A2", alert_code="DOG", subject_type="address", person_ref=None, person_name=None),
    alert_row(alert_id="A3", alert_code="XXZ"),  # unknown code: kept, flagged
    alert_row(alert_id="A4", effective_from="2025-02-30"),  # impossible date: kept, flagged
    alert_row(alert_id="A5", effective_from="2026-05-01", ends_on="2026-01-01"),  # ends before it starts
    alert_row(alert_id=None),  # cannot be identified: quarantined
    alert_row(alert_id="A6", asset_ref=None, address=None),  # no place: quarantined
    alert_row(alert_id="A7", area="NORTH"),
    alert_row(alert_id="A7", area="SOUTH"),  # duplicated id: both quarantined
]


def test_first_sync_keeps_flags_and_quarantines_and_counts_every_row(databases):
    databases.write_source(MIXED_SOURCE)

    summary = run(databases)

    assert (summary.read, summary.inserted, summary.quarantined, summary.flagged) == (9, 5, 4, 3)
    assert summary.read == summary.inserted + summary.updated + summary.unchanged + summary.quarantined
    alerts = alerts_by_id(databases)
    assert set(alerts) == {"A1", "A2", "A3", "A4", "A5"}
    # Safety first: faulty rows are still active warnings, with the problem recorded.
    assert alerts["A3"]["register_state"] == "active"
    assert "unknown code 'XXZ'" in alerts["A3"]["dq_flags"]
    assert "impossible date '2025-02-30'" in alerts["A4"]["dq_flags"]
    assert alerts["A4"]["effective_from"] is None
    assert "ends_on is before effective_from" in alerts["A5"]["dq_flags"]
    assert alerts["A1"]["dq_flags"] is None
    assert alerts["A1"]["effective_from"] == dt.date(2026, 3, 2)
    assert history(databases, "A1") == [("inserted", None)]

    quarantined = snapshot(databases)["quarantine"]
    reasons = sorted(row[3] for row in quarantined)
    assert reasons == [
        "cannot be identified: neither asset_ref nor address",
        "duplicate alert_id in one read (2 rows)",
        "duplicate alert_id in one read (2 rows)",
        "missing alert_id",
    ]
    assert all(json.loads(row[4])["alert_code"] == "VIP" for row in quarantined)  # the raw row is kept


def test_the_first_load_leaves_every_index_in_place_and_one_history_row_per_alert(databases):
    """The first sync loads without index upkeep (speed); the register must end up the same."""
    import pendulum
    from sqlalchemy import inspect

    databases.write_source(MIXED_SOURCE)
    run(databases, as_of=pendulum.date(2026, 11, 23))  # as Airflow's logical date gives it
    run(databases, as_of=DAY2, run_id="run-2")  # a later sync takes the ordinary path

    engine = create_engine(normalise_url(databases.register_url))
    try:
        inspector = inspect(engine)
        for table in (schema.alerts, schema.alert_history):
            present = {index["name"] for index in inspector.get_indexes(table.name)}
            if engine.dialect.name == "sqlite":  # SQLAlchemy does not reflect SQLite's expression indexes
                with engine.connect() as conn:
                    present |= set(conn.execute(
                        text("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = :t"), {"t": table.name}
                    ).scalars())
            assert {index.name for index in table.indexes} <= present
        with engine.connect() as conn:
            changes = conn.execute(text("SELECT alert_id, run_id, as_of, change FROM alert_history ORDER BY alert_id"))
            rows = [(r.alert_id, r.run_id, str(r.as_of)[:10], r.change) for r in changes]
    finally:
        engine.dispose()
    assert rows == [(a, "run-1", "2026-11-23", "inserted") for a in ("A1", "A2", "A3", "A4", "A5")]


def test_the_first_load_on_postgresql_leaves_the_planner_its_statistics(databases):
    """A register loaded in one go must not wait for autovacuum (off on some servers, this project's
    CI one among them) before its look-ups get a good plan: the first load runs ANALYZE."""
    if databases.backend != "postgresql":
        pytest.skip("SQLite's planner needs no statistics for these indexes")
    databases.write_source(MIXED_SOURCE)

    run(databases)

    analysed = register_value(
        databases, "SELECT count(*) FROM pg_stats WHERE schemaname = current_schema() AND tablename = 'alerts'"
    )
    assert analysed > 0  # a row per column ANALYZE has seen; none before it ever ran


def test_a_later_sync_that_changes_much_of_the_register_gathers_the_statistics_again(databases):
    """As autovacuum would (its default threshold: 50 rows + 10% of the table), for a server where it
    is off: the first load's statistics would describe a register no longer there. `reltuples` is
    what ANALYZE (or a vacuum, or an index build) last counted; plain inserts never change it."""
    if databases.backend != "postgresql":
        pytest.skip("SQLite's planner needs no statistics for these indexes")

    def counted() -> float:
        return register_value(databases, "SELECT reltuples FROM pg_class WHERE oid = 'alerts'::regclass")

    first = [alert_row(alert_id=f"A{n:03d}", asset_ref=f"H{n:03d}") for n in range(200)]
    databases.write_source(first)
    run(databases, run_id="first")
    assert counted() == 200

    small = [*first, *(alert_row(alert_id=f"B{n:03d}", asset_ref=f"J{n:03d}") for n in range(60))]
    databases.write_source(small)  # 60 new rows: under 50 + 10% of 260
    assert run(databases, as_of=DAY2, run_id="small").inserted == 60
    assert counted() == 200  # no ANALYZE for a small change

    large = [*small, *(alert_row(alert_id=f"C{n:03d}", asset_ref=f"K{n:03d}") for n in range(120))]
    databases.write_source(large)  # 120 more: over 50 + 10% of 380
    assert run(databases, as_of=DAY3, run_id="large").inserted == 120
    assert counted() == 380


def test_rerunning_the_same_day_changes_nothing(databases):
    databases.write_source(MIXED_SOURCE)
    run(databases, run_id="first")
    before = snapshot(databases)

    again = run(databases, run_id="second")

    assert (again.inserted, again.updated, again.ended) == (0, 0, 0)
    assert again.unchanged == 5
    assert snapshot(databases) == before


def test_changes_are_applied_and_recorded_in_history(databases):
    databases.write_source([alert_row(alert_id="A1"), alert_row(alert_id="A2"), alert_row(alert_id="A3")])
    run(databases, as_of=DAY1, run_id="d1")

    databases.write_source(
        [
            alert_row(alert_id="A1", alert_code="NFO", last_reviewed_on="2026-11-20", review_outcome="retained"),
            alert_row(alert_id="A2", status="ended", ends_on="2026-11-23"),
            alert_row(alert_id="A4", alert_code="DOG"),
        ]
    )
    summary = run(databases, as_of=DAY2, run_id="d2")

    assert (summary.inserted, summary.updated, summary.unchanged, summary.ended) == (1, 2, 0, 2)
    alerts = alerts_by_id(databases)
    assert alerts["A1"]["alert_code"] == "NFO" and alerts["A1"]["last_changed_run"] == "d2"
    assert alerts["A2"]["register_state"] == "ended" and alerts["A2"]["ended_reason"] == "ended_in_source"
    assert alerts["A3"]["register_state"] == "ended" and alerts["A3"]["ended_reason"] == "left_source"
    assert alerts["A4"]["register_state"] == "active"
    assert history(databases, "A1")[-1] == (
        "updated",
        {
            "alert_code": ["VIP", "NFO"],
            "last_reviewed_on": [None, "2026-11-20"],
            "review_outcome": [None, "retained"],
        },
    )
    assert history(databases, "A2")[-1][0] == "ended"
    assert history(databases, "A3")[-1] == (
        "ended", {"register_state": ["active", "ended"], "ended_reason": [None, "left_source"]}
    )

    databases.write_source([alert_row(alert_id="A3"), alert_row(alert_id="A4", alert_code="DOG")])
    back = run(databases, as_of=DAY3, run_id="d3")
    assert history(databases, "A3")[-1] == ("reopened", {"register_state": ["ended", "active"]})
    assert alerts_by_id(databases)["A3"]["register_state"] == "active"
    assert back.ended == 1  # A1 left the source; A2 was already ended


def test_a_duplicated_id_never_lifts_an_existing_warning(databases):
    databases.write_source([alert_row(alert_id="A1")])
    run(databases, run_id="d1")

    databases.write_source([alert_row(alert_id="A1"), alert_row(alert_id="A1", area="SOUTH")])
    summary = run(databases, as_of=DAY2, run_id="d2")

    assert summary.quarantined == 2 and summary.ended == 0
    assert alerts_by_id(databases)["A1"]["register_state"] == "active"


def test_resolved_quarantine_rows_are_marked_resolved(databases):
    databases.write_source([alert_row(alert_id=None)])
    run(databases, run_id="d1")
    databases.write_source([alert_row(alert_id="A1")])
    run(databases, as_of=DAY2, run_id="d2")

    (row,) = snapshot(databases)["quarantine"]
    assert row[7] == "d2" and row[8] == DAY2  # resolved_run_id, resolved_on


def test_a_failed_run_leaves_the_register_as_it_was(databases, monkeypatch):
    databases.write_source([alert_row(alert_id="A1"), alert_row(alert_id="A2")])
    run(databases, run_id="d1")
    before = snapshot(databases)
    databases.write_source([alert_row(alert_id="A1", alert_code="DOG"), alert_row(alert_id="A3")])

    def crash(self, **kwargs):
        raise RuntimeError("the disk filled up")

    monkeypatch.setattr(RegisterTransaction, "record_run", crash)  # fails after the alerts were written
    with pytest.raises(RuntimeError):
        run(databases, as_of=DAY2, run_id="d2")

    assert snapshot(databases) == before


def test_an_empty_source_does_not_end_every_alert(databases):
    databases.write_source([alert_row(alert_id="A1")])
    run(databases, run_id="d1")
    databases.write_source([])

    with pytest.raises(EmptySourceError, match="the sync would end 1 of 1 active alerts: the housing database"):
        run(databases, as_of=DAY2, run_id="d2")
    assert alerts_by_id(databases)["A1"]["register_state"] == "active"

    summary = run(databases, as_of=DAY2, run_id="d3", allow_mass_end=True)
    assert summary.ended == 1


def test_a_source_without_the_contract_columns_is_a_clear_error(databases):
    source = SqlAlertSource(databases.source_url, "SELECT alert_id, alert_code FROM caution_alerts_export")
    register = Register(databases.register_url)
    with pytest.raises(SourceShapeError, match="subject_type, person_ref"):
        sync_register(source, register, as_of=DAY1, run_id="x")
    register.dispose()


def test_a_broken_source_query_is_a_one_line_source_error(databases):
    with pytest.raises(SourceError) as caught:
        SqlAlertSource(databases.source_url, "SELECT * FROM no_such_view").read()
    assert "no_such_view" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_the_source_is_only_read(databases):
    source = SqlAlertSource(databases.source_url, "DELETE FROM caution_alerts_export")
    with pytest.raises(SourceError):
        source.read()


AWKWARD_TEXT = [
    alert_row(alert_id="W1", note="Tab\there, line\nbreak, carriage\rreturn, back\\slash"),
    alert_row(alert_id="W2", note="\\N", person_name="Zoë Ó Briain-Łukasiewicz", address="Flat 1\\2, Mill Lane"),
    alert_row(alert_id="W3", note="\\.", email=None, no_notify_reason="  padded  "),
    alert_row(alert_id="W4", alert_code="XXZ", status="ended", updated_at="2024-02-29 10:00:00"),
    alert_row(alert_id="W5", updated_at="2026-03-02T09:15:00.250+00:00"),
    alert_row(alert_id="W6", area="A" * 70, alert_code="TOOLONGFORACODECOLUMN", tenancy_ref="T" * 65),
    alert_row(alert_id="W" * 65),  # too long to identify: quarantined, not a crash
]


@pytest.fixture
def other_register(databases, tmp_path):
    """A second, empty register on the same backend."""
    if databases.backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'other.db'}"
        return
    from tests.support import temporary_postgres_database

    with temporary_postgres_database("cf_register_other") as url:
        yield url


def test_the_first_load_stores_exactly_what_an_ordinary_sync_stores(databases, other_register, monkeypatch):
    """The first sync validates and writes a chunk at a time, in bulk (on PostgreSQL COPY text built
    column by column, streamed by a helper thread); a later sync inserts through the driver.
    Awkward text must come out the same both ways."""
    monkeypatch.setattr(sync_service, "FIRST_LOAD_CHUNK", 3)  # several chunks, a duplicate split across two
    databases.write_source([*MIXED_SOURCE, *AWKWARD_TEXT])
    first_load = run(databases)

    databases.write_source([alert_row(alert_id="Z0")])
    other = Register(other_register)
    source = SqlAlertSource(databases.source_url, DEFAULT_SOURCE_QUERY)
    try:
        sync_register(source, other, as_of=DAY1, run_id="run-0")
        databases.write_source([*MIXED_SOURCE, *AWKWARD_TEXT, alert_row(alert_id="Z0")])
        ordinary = sync_register(source, other, as_of=DAY1, run_id="run-1")
    finally:
        other.dispose()

    assert (first_load.inserted, first_load.flagged, first_load.active) == (ordinary.inserted, ordinary.flagged, 10)
    bulk = alerts_by_id(databases)
    by_driver = alerts_by_id(type(databases)(databases.backend, databases.source_url, other_register, None))
    assert set(bulk) == set(by_driver) - {"Z0"}
    for alert_id, stored in bulk.items():
        assert stored == by_driver[alert_id], alert_id
    # A note keeps its line breaks (a lone CR as LF) and loses its tab, flagged (issue 18).
    assert bulk["W1"]["note"] == "Tab here, line\nbreak, carriage\nreturn, back\\slash"
    assert bulk["W2"]["note"] == "\\N" and bulk["W2"]["person_name"] == "Zoë Ó Briain-Łukasiewicz"
    assert bulk["W3"]["note"] == "\\." and bulk["W3"]["email"] is None and bulk["W3"]["no_notify_reason"] == "padded"
    assert (bulk["W4"]["register_state"], bulk["W4"]["ended_reason"]) == ("ended", "ended_in_source")
    assert str(bulk["W5"]["updated_at"])[:19] == "2026-03-02 09:15:00"
    assert (bulk["W6"]["area"], bulk["W6"]["alert_code"]) == ("A" * 64, "TOOLONGFORACODEC")
    assert "tenancy_ref: longer than 64 characters" in bulk["W6"]["dq_flags"]
    assert first_load.quarantined == ordinary.quarantined == 5


def test_the_sync_turns_the_garbage_collector_back_on_even_when_it_fails(databases):
    import gc

    databases.write_source([alert_row(alert_id="A1")])
    run(databases)
    assert gc.isenabled()
    databases.write_source([])
    with pytest.raises(EmptySourceError):
        run(databases, as_of=DAY2, run_id="d2")
    assert gc.isenabled()


@pytest.mark.parametrize("databases", ["postgresql"], indirect=True)  # SQLite inserts in the sync's own thread
def test_a_failure_while_the_first_load_streams_rolls_everything_back(databases, monkeypatch):
    """On PostgreSQL a helper thread streams the first load to the server; when it fails, the sync
    fails with its error and the register stays empty, as with any other failure."""
    import cautionflow.adapters.database as database

    real_copy_in, tables = database._copy_in, []

    def server_goes_away(dbapi, table, columns, pieces):
        tables.append(table)
        if len(tables) == 3:
            raise RuntimeError("the server went away")
        real_copy_in(dbapi, table, columns, pieces)

    monkeypatch.setattr(database, "_copy_in", server_goes_away)
    monkeypatch.setattr(sync_service, "FIRST_LOAD_CHUNK", 2)
    databases.write_source(MIXED_SOURCE)
    with pytest.raises(RuntimeError, match="the server went away"):
        run(databases)

    assert tables[:3] == ["alerts", "alert_history", "alerts"]
    assert snapshot(databases) == {"alerts": [], "alert_history": [], "quarantine": []}
    monkeypatch.setattr(database, "_copy_in", real_copy_in)
    assert run(databases, run_id="retry").inserted == 5  # and the next sync loads it all
