"""Issue 18, finding 1: a broken export must never lift a warning. The mass-end guard against real
registers (SQLite and PostgreSQL), through the service, the command line and the Airflow task.

Policies README, "Principles": safety first, a warning about a risk to staff always reaches the
people who visit. Karbon 7.1-7.2, Dover 6.31, Hexagon 1.2: contractors are told about the alerts in
the areas they work in, so an alert in no contractor's area reaches no contractor.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, select

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.adapters.register import Register
from cautionflow.adapters.source import SqlAlertSource
from cautionflow.clock import FixedClock
from cautionflow.config import DEFAULT_SOURCE_QUERY
from cautionflow.services.sync import EmptySourceError, sync_register
from tests.deployment import write_config
from tests.support import alert_row

DAY1, DAY2, DAY3 = dt.date(2026, 11, 23), dt.date(2026, 11, 24), dt.date(2026, 11, 25)
CLOCK = FixedClock(dt.datetime(2026, 11, 23, 5, 31, tzinfo=dt.UTC))
COVERED = frozenset({"NORTH", "SOUTH"})  # the contractors' areas
ACTIVE = 40


def source_rows(**overrides) -> list[dict]:
    """ACTIVE well-formed alerts, half in each covered area; `overrides` apply to every row."""
    return [
        alert_row(**{"alert_id": f"A{i:03d}", "asset_ref": f"H{i:04d}", "area": ("NORTH", "SOUTH")[i % 2],
                     **overrides})
        for i in range(1, ACTIVE + 1)
    ]


def sync(dbs, as_of=DAY2, run_id="d2", **kwargs):
    """A sync as `run_sync` makes it, contractors covering COVERED unless the test says otherwise."""
    kwargs.setdefault("contractor_areas", COVERED)
    return plain_sync(dbs, as_of, run_id, **kwargs)


def plain_sync(dbs, as_of, run_id, **kwargs):
    register = Register(dbs.register_url)
    try:
        return sync_register(
            SqlAlertSource(dbs.source_url, DEFAULT_SOURCE_QUERY), register, as_of=as_of, run_id=run_id, clock=CLOCK,
            **kwargs,
        )
    finally:
        register.dispose()


def tables(dbs) -> dict[str, list[tuple]]:
    """Every table of the register, every row, sync_runs included."""
    engine = create_engine(normalise_url(dbs.register_url))
    try:
        with engine.connect() as conn:
            return {
                table.name: [tuple(r) for r in conn.execute(select(table).order_by(*table.primary_key.columns))]
                for table in schema.metadata.sorted_tables
            }
    finally:
        engine.dispose()


def alerts(dbs) -> dict[str, dict]:
    return {row[0]: dict(zip([c.name for c in schema.alerts.columns], row, strict=True))
            for row in tables(dbs)["alerts"]}


@pytest.fixture
def synced(databases):
    """A register whose first sync holds ACTIVE active alerts, all visible to a contractor."""
    databases.write_source(source_rows())
    summary = plain_sync(databases, DAY1, "d1")  # every area covered: as with contractor_areas=COVERED
    assert summary.active == ACTIVE and summary.flagged == 0
    return databases


def refused(dbs, error=None, **kwargs) -> str:
    """The sync is refused with `error` (MassEndError by default); the register is exactly as it was.
    Returns the message."""
    from cautionflow.services.sync import MassEndError

    error = error or MassEndError
    before = tables(dbs)
    with pytest.raises(error) as caught:
        sync(dbs, **kwargs)
    assert tables(dbs) == before  # nothing written, not even a sync_runs row
    message = str(caught.value)
    assert "\n" not in message and "--allow-mass-end" in message
    return message


def test_a_source_whose_rows_all_lack_alert_id_is_refused(synced):
    """The probe's mis-mapped column: every row read, none identifiable."""
    synced.write_source(source_rows(alert_id=None))

    message = refused(synced, error=EmptySourceError)

    assert message.startswith("the sync would end 40 of 40 active alerts: 40 of 40 rows read were quarantined "
                              "(missing alert_id)")


def test_a_source_returning_one_row_is_refused(synced):
    synced.write_source(source_rows()[:1])

    message = refused(synced)

    assert message.startswith("the sync would end 39 of 40 active alerts (the limit is 10% and 5): ")
    assert "39 active alerts are not among the 1 identifiable rows read" in message


def test_a_source_whose_area_is_null_everywhere_is_refused(synced):
    """Every alert would stay active but reach no contractor: counted as if it ended."""
    synced.write_source(source_rows(area=None))

    message = refused(synced)

    assert message.startswith("the sync would take out of every contractor's view 40 of 40 active alerts")
    assert "40 a contractor saw would have an area that is empty or in no contractor's areas" in message


def test_an_area_no_contractor_covers_counts_as_leaving_the_contractors(synced):
    rows = source_rows()
    for row in rows[:7]:
        row["area"] = "WEST"
    synced.write_source(rows)

    assert refused(synced).startswith("the sync would take out of every contractor's view 7 of 40 active alerts")


def test_the_empty_source_is_refused_even_below_the_minimum(databases):
    databases.write_source([alert_row(alert_id="A1")])
    sync(databases, as_of=DAY1, run_id="d1")
    databases.write_source([])

    message = refused(databases, error=EmptySourceError)

    assert message.startswith("the sync would end 1 of 1 active alerts: the housing database returned no rows")


def test_allow_mass_end_lets_an_officers_clean_up_through(synced):
    synced.write_source(source_rows()[:1])

    summary = sync(synced, allow_mass_end=True)

    assert (summary.ended, summary.active) == (39, 1)
    assert sum(a["register_state"] == "active" for a in alerts(synced).values()) == 1


def test_an_ordinary_clean_up_under_the_limit_goes_through(synced):
    """Four of forty (10%) end, within both the share and the minimum."""
    rows = source_rows()
    rows[0]["status"], rows[0]["ends_on"] = "ended", "2026-11-23"
    rows[1]["status"], rows[1]["ends_on"] = "ended", "2026-11-23"
    synced.write_source(rows[:-2])  # and two left the source

    summary = sync(synced)

    assert (summary.ended, summary.active) == (4, 36)


def test_the_share_and_the_minimum_come_from_the_caller(synced):
    from cautionflow.domain.guards import MassEndLimit

    synced.write_source(source_rows()[:-3])
    assert refused(synced, mass_end=MassEndLimit(share=0.05, minimum=2)).startswith(
        "the sync would end 3 of 40 active alerts (the limit is 5% and 2)"
    )
    assert sync(synced, mass_end=MassEndLimit(share=0.05, minimum=3)).ended == 3


def test_a_duplicated_id_is_not_counted_as_ending(synced):
    """Quarantined ids that are in the register keep their last good version (merge.py): not ending."""
    rows = source_rows()
    synced.write_source(rows + [dict(row) for row in rows])  # every id twice: all quarantined

    summary = sync(synced)

    assert (summary.quarantined, summary.ended, summary.active) == (80, 0, 40)


def test_an_alert_in_no_contractors_area_is_flagged(databases):
    databases.write_source([
        alert_row(alert_id="C1", area="NORTH"),
        alert_row(alert_id="U1", area="WEST"),
        alert_row(alert_id="U2", area=None, asset_ref="H0002"),
        alert_row(alert_id="E1", area="WEST", status="ended", ends_on="2026-11-01"),  # lifted: nobody to tell
    ])

    first = sync(databases, as_of=DAY1, run_id="d1")

    stored = alerts(databases)
    assert stored["C1"]["dq_flags"] is None and stored["E1"]["dq_flags"] is None
    assert stored["U1"]["dq_flags"] == "area: no contractor covers 'WEST', no contractor will be told"
    assert stored["U2"]["dq_flags"] == "area: missing, no contractor will be told"
    assert first.flagged == 2

    # A contractor now covers WEST: the next sync clears the flag, though the rows did not change.
    sync(databases, run_id="d2", contractor_areas=COVERED | {"WEST"})
    assert alerts(databases)["U1"]["dq_flags"] is None
    again = sync(databases, run_id="d3", contractor_areas=COVERED | {"WEST"})
    assert (again.updated, again.unchanged) == (0, 4)
    # Without any contractor in the config the check is off: nobody is told by area, by design.
    assert sync(databases, run_id="d4", contractor_areas=None).flagged == 0


def test_the_coverage_flag_joins_the_rows_other_flags_on_an_ordinary_sync(synced):
    rows = source_rows()
    rows.append(alert_row(alert_id="N1", asset_ref="H9999", area="EAST", alert_code="XXZ"))
    synced.write_source(rows)

    summary = sync(synced)

    assert (summary.inserted, summary.flagged) == (1, 1)
    assert alerts(synced)["N1"]["dq_flags"] == (
        "alert_code: unknown code 'XXZ'; area: no contractor covers 'EAST', no contractor will be told"
    )


# --- the command line ----------------------------------------------------------------------------


def cautionflow(folder: Path, *args: str) -> subprocess.CompletedProcess[str]:
    import os

    env = {k: v for k, v in os.environ.items() if k not in ("CAUTIONFLOW_CONFIG", "CAUTIONFLOW_REGISTER_URL")}
    return subprocess.run(
        [sys.executable, "-m", "cautionflow", *args, "--config", str(folder / "cautionflow.yaml")],
        cwd=folder, env={**env, "CAUTIONFLOW_HOME": str(folder)}, capture_output=True, text=True, timeout=120,
    )


def two_contractors(dbs, **extra) -> dict:
    """The config file's mapping: two contractors' deployment over `dbs`, with `extra` keys."""
    return {
        "organisation": "Example Homes", "policy": "dover", "register_url": dbs.register_url,
        "source": {"url": dbs.source_url},
        "recipients": [
            {"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor", "areas": ["NORTH"]},
            {"name": "Southside Gas", "email": "bookings@southside-gas.example", "role": "contractor",
             "areas": ["SOUTH"]},
        ],
        **extra,
    }


def error_lines(result: subprocess.CompletedProcess[str]) -> list[str]:
    assert "Traceback" not in result.stderr, result.stderr
    return [line for line in result.stderr.splitlines() if line.startswith("cautionflow: error:")]


@pytest.mark.parametrize("broken", ["no alert_id", "one row", "area null"])
def test_run_sync_refuses_with_exit_2_and_one_line(synced, tmp_path, broken):
    write_config(two_contractors(synced), tmp_path)
    synced.write_source({
        "no alert_id": source_rows(alert_id=None), "one row": source_rows()[:1], "area null": source_rows(area=None),
    }[broken])
    before = tables(synced)

    result = cautionflow(tmp_path, "run", "sync", "--as-of", "2026-11-24")

    assert result.returncode == 2, result.stderr
    [line] = error_lines(result)
    assert line.startswith("cautionflow: error: the sync would ") and "of 40 active alerts" in line
    assert line.endswith("rerun with --allow-mass-end")
    assert result.stdout == ""
    assert tables(synced) == before

    allowed = cautionflow(tmp_path, "run", "sync", "--as-of", "2026-11-24", "--allow-mass-end")
    assert allowed.returncode == 0, allowed.stderr
    assert "allowed by --allow-mass-end: the sync would" in allowed.stderr
    assert tables(synced) != before


def test_run_all_stops_at_a_refused_sync_and_the_old_flag_still_works(synced, tmp_path):
    write_config(two_contractors(synced), tmp_path)
    synced.write_source([])

    result = cautionflow(tmp_path, "run", "all", "--as-of", "2026-11-24")
    assert result.returncode == 2 and len(error_lines(result)) == 1

    assert cautionflow(tmp_path, "run", "sync", "--as-of", "2026-11-24", "--allow-empty-source").returncode == 0
    assert sum(a["register_state"] == "active" for a in alerts(synced).values()) == 0


def test_the_configured_limit_is_used_and_a_bad_one_is_one_line(synced, tmp_path):
    synced.write_source(source_rows()[:-3])
    write_config(two_contractors(synced, sync={"mass_end_share": 0.05, "mass_end_minimum": 2}), tmp_path)
    result = cautionflow(tmp_path, "run", "sync", "--as-of", "2026-11-24")
    assert result.returncode == 2
    assert "the sync would end 3 of 40 active alerts (the limit is 5% and 2)" in error_lines(result)[0]

    write_config(two_contractors(synced, sync={"mass_end_share": 1.5}), tmp_path)
    [line] = error_lines(bad := cautionflow(tmp_path, "run", "sync", "--as-of", "2026-11-24"))
    assert bad.returncode == 2 and "sync.mass_end_share" in line


# --- Airflow --------------------------------------------------------------------------------------


def test_the_sync_dag_has_the_allow_mass_end_param():
    from airflow.dag_processing.dagbag import DagBag

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags" / "cautionflow_sync.py"))
    params = bag.dags["cautionflow_sync"].params
    assert params["allow_mass_end"] is False
    assert params.get_param("allow_mass_end").schema["type"] == "boolean"


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_the_airflow_task_fails_without_retries_and_the_param_allows(synced, tmp_path, monkeypatch):
    """A refused sync is an AirflowFailException (no retry: it would read the same export); the task's
    on_failure_callback then emails operations, as for any failed task (test_failure_notice.py)."""
    from types import SimpleNamespace

    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.integrations.airflow.tasks import run_sync_task

    write_config(two_contractors(synced), tmp_path)
    monkeypatch.setenv("AIRFLOW_VAR_CAUTIONFLOW_CONFIG", str(tmp_path / "cautionflow.yaml"))
    monkeypatch.setenv("CAUTIONFLOW_HOME", str(tmp_path))
    for name in ("AIRFLOW_CONN_CAUTIONFLOW_REGISTER", "AIRFLOW_CONN_HOUSING_DB", "CAUTIONFLOW_REGISTER_URL"):
        monkeypatch.delenv(name, raising=False)
    synced.write_source(source_rows()[:1])
    before = tables(synced)

    def context(allow: bool) -> dict:
        return {"dag": SimpleNamespace(dag_id="cautionflow_sync"), "run_id": "manual__2026-11-24",
                "logical_date": dt.datetime(2026, 11, 24, 5, 30, tzinfo=dt.UTC), "params": {"allow_mass_end": allow}}

    with pytest.raises(AirflowFailException, match="the sync would end 39 of 40 active alerts.*allow_mass_end"):
        run_sync_task(context(False))
    assert tables(synced) == before

    summary = run_sync_task(context(True))
    assert (summary["ended"], summary["active"]) == (39, 1)
    assert json.loads(json.dumps(summary)) == summary  # the XCom
