"""
### cautionflow_urgent: urgent warnings to contractors and call handlers within the hour

Every 15 minutes, day and night, this syncs the register from the housing database (the same sync
as `cautionflow_sync`: its lock, validation and mass-end guard) and, when an alert of an urgent code
(config `urgent.codes`; by default DNV do not visit, WPN weapons, AGY agency-reported risk) was added
or reopened, or an alert escalated to one, emails at once the contractors whose areas hold it and
every out-of-hours recipient. Officers, operations and appeals recipients never get one. Dover 6.23:
a threatened person is warned at once; Karbon 6.3, Hexagon 1.2: staff check before every visit.

* **Minimum disclosure**: each notice shows the columns that recipient's digest shows (contractors
  never see the name, the note or anything else), and the duty contact when the config names one.
* **Exactly once**: one notice per recipient per run, through the register's `outbox` (kind
  `urgent`), keyed by the recipient and the changes it tells of; the disclosure log records each
  alert told, so a rerun, the next run and the next morning's digest (which marks the alert
  "already notified") never tell it twice. A change older than the recipient's latest digest was
  in that digest and is not sent.
* **A broken export**: a sync refused by the mass-end guard, or a housing database that cannot be
  read, does not fail this DAG: the urgent changes already in the register are still sent, and the
  `operations` recipients get ONE email a day saying urgent notices have no fresh data (through the
  outbox, keyed by day), not one every 15 minutes. `cautionflow_sync` fails on the same export and
  sends its failure notice; an officer's `allow_mass_end` run of it mends a real clean-up.
* **Failures**: a notice the server did not take stays pending and the task fails so Airflow
  retries it (the next run sends it too); one refused for good fails the task without retries:
  resend it with `cautionflow mail resend-failed` once the mailbox is fixed. Any other failure
  (the register unreachable) fails the task and emails operations, each run that fails.

It does **not** update the Asset `x-cautionflow://register`: that would start the whole daily
pipeline (deadlines, letters, digests) every 15 minutes. New alerts get their deadlines with the
next daily run.

**Schedule**: the environment variable `CAUTIONFLOW_URGENT_SCHEDULE` of the scheduler and the DAG
processor, a cron expression (default `*/15 * * * *`; `*/5 * * * *` for every 5 minutes), read when
the file is parsed; the config file is never read at parse time. Pause the DAG to stop the notices.
The XCom holds the sync's counts (`sync`, or `sync.refused` with why), `changes`, `notices`,
`sent`, `failed`, `pending`. By hand: `cautionflow run urgent --config F`.
"""

from __future__ import annotations

import os
from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from cautionflow.callbacks import notify_operations_of_failure

DEFAULT_SCHEDULE = "*/15 * * * *"


@dag(
    dag_id="cautionflow_urgent",
    schedule=os.environ.get("CAUTIONFLOW_URGENT_SCHEDULE", "").strip() or DEFAULT_SCHEDULE,
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    # One run at a time (issue 17): a slow run (its sync waiting for the daily one, a relay throttling)
    # is not joined by the next quarter of an hour's, which would wait for the same sync lock and then
    # find the outbox's delivery taken, fail with its notices pending and be retried for nothing.
    max_active_runs=1,
    dagrun_timeout=timedelta(minutes=30),
    tags=["cautionflow", "urgent", "email"],
    doc_md=__doc__,
    default_args={"owner": "cautionflow", "retries": 1, "retry_delay": timedelta(minutes=2),
                  "on_failure_callback": notify_operations_of_failure},
)
def cautionflow_urgent() -> None:
    @task
    async def send_urgent_notices(**context) -> dict:
        """Sync, then queue and deliver the urgent notices in this task's event loop; returns the counts."""
        from cautionflow.integrations.airflow.tasks import run_urgent_task

        return await run_urgent_task(context)

    send_urgent_notices()


cautionflow_urgent()
