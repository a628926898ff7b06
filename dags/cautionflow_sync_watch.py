"""
### cautionflow_sync_watch: tell operations when the daily sync is late

Runs every day at 07:00 Europe/London. If the register has no finished sync for the day by then
(`cautionflow_sync` is scheduled at 05:30), or the day's sync finished only after 07:00, the config's
`operations` recipients get one plain-text email: the day, the deadline, the latest finished sync
and a link to the DAG. Dates and times only, no personal data. It reads the register's `sync_runs`
table, so it also notices a day on which the sync never started (scheduler down, DAG paused).

The time is this DAG's schedule (a DAG file may not read the config): to be told at another time,
change `schedule` below, e.g. `"30 7 * * *"` for 07:30. The deadline is the run's logical date, so
a run triggered by hand asks "has today's sync finished by now?". The XCom holds `late`,
`finished_at` and, when late, `notified`.

Why not an Airflow deadline alert on `cautionflow_sync`: in Airflow 3.3.2 a DAG with a
`DeadlineAlert` fails `airflow dags test` when its run succeeds (`DagRun.update_state` looks the
alerts up by id on a DAG that was serialized in memory, where they are not ids), and `make demo`
and the tests run every DAG through `airflow dags test`; nor does a deadline alert fire when no run
was created at all.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from cautionflow.callbacks import notify_operations_of_failure


@dag(
    dag_id="cautionflow_sync_watch",
    schedule="0 7 * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    tags=["cautionflow", "operations"],
    doc_md=__doc__,
    default_args={"owner": "cautionflow", "retries": 2, "retry_delay": timedelta(minutes=5),
                  "on_failure_callback": notify_operations_of_failure},
)
def cautionflow_sync_watch() -> None:
    @task
    async def check_sync_finished(**context) -> dict:
        """Email operations if the day's sync had not finished by this run's time (07:00)."""
        from cautionflow.integrations.airflow.tasks import check_sync_finished_task

        return await check_sync_finished_task(context)

    check_sync_finished()


cautionflow_sync_watch()
