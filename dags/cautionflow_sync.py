"""
### cautionflow_sync: the housing database into the caution alert register

Every morning this reads the caution alerts from the housing database (the source query in the
config), validates every row and merges it into the register in one transaction:

* new alerts are inserted, changed ones updated, alerts that ended or left the source are ended;
* a row that cannot be identified (no `alert_id`, no asset or address, a duplicated id) goes to
  the **quarantine** with its reason; a row with other faults stays in the register, **flagged**,
  so the warning still reaches the people who visit.

The task's XCom (and its log) holds the counts: `read`, `inserted`, `updated`, `unchanged`,
`ended`, `quarantined`, `flagged`. A failed run leaves the register as it was; rerunning a day
changes nothing.

**Mass-end guard**: a read that would end, or take out of every contractor's view, more than
`sync.mass_end_share` (10%) and more than `sync.mass_end_minimum` (5) of the active alerts (a
broken export: no `alert_id`, one row, `area` empty) is refused before anything is written; the
task fails without retries and operations are emailed why. For a real clean-up an officer
triggers this DAG with the param `allow_mass_end` set to true. An active alert whose area no
contractor covers is flagged "no contractor will be told".

On success the task updates the Asset `x-cautionflow://register`, which starts the DAGs that
depend on the register.

Configuration: the Variable `cautionflow_config` (path of the YAML file); the Connections
`housing_db` and `cautionflow_register` override the URLs in the file.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import Param, dag, task

from cautionflow.assets import REGISTER
from cautionflow.callbacks import notify_operations_of_failure


@dag(
    dag_id="cautionflow_sync",
    schedule="30 5 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    # One run at a time (issue 17): a manual trigger beside the scheduled run is queued by Airflow, in
    # plain sight, rather than holding a worker slot while it waits for the sync lock.
    max_active_runs=1,
    tags=["cautionflow", "register"],
    doc_md=__doc__,
    params={
        "allow_mass_end": Param(
            False, type="boolean",
            description="An officer confirms a real clean-up: let this run end (or take out of every "
            "contractor's view) more active alerts than the mass-end guard allows.",
        ),
    },
    default_args={"owner": "cautionflow", "retries": 2, "retry_delay": timedelta(minutes=5),
                  "on_failure_callback": notify_operations_of_failure},
)
def cautionflow_sync() -> None:
    @task(outlets=[REGISTER])
    def sync_register(**context) -> dict:
        """Merge the housing database into the register; returns the counts."""
        from cautionflow.integrations.airflow.tasks import run_sync_task

        return run_sync_task(context)

    sync_register()


cautionflow_sync()
