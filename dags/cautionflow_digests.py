"""
### cautionflow_digests: the current flag list to contractors and out-of-hours call handlers

Runs whenever the deadlines are recomputed (the Asset `x-cautionflow://deadlines`, updated by
`cautionflow_deadlines` after each sync). Every contractor and out-of-hours recipient in the config
that is due today (daily, or weekly on its `weekday`) gets one email: the flags it may see as an
HTML table with a plain-text alternative and a CSV attachment, and what was added and lifted since
its previous digest.

* **Minimum disclosure**: contractors see only alerts in their `areas`, and only address, postcode,
  area, asset, code, required action and review date. Out-of-hours call handlers see every active
  alert with the person's name (Karbon 7.3). Nobody is sent the note or the data-quality text.
* **Exactly once**: each digest is written to the register's `outbox` with an idempotency key
  (recipient, as-of date, content hash) and a Message-ID before it is sent, and marked sent the
  moment the server accepts it, together with the **disclosure log** (`disclosures`: which alert
  went to whom, in which message, when). A retry or a rerun of the day sends nothing twice.
* **Failures**: temporary ones (4xx, refused or dropped connections, timeouts) are retried with
  backoff, then left pending; the task fails so Airflow retries it later. Permanent ones (5xx) are
  marked failed with the server's reply, listed in the task's XCom under `failures`, and fail the
  task without retries. One bad recipient never stops the others.

Mail settings come from the config's `smtp` section; the Connection `cautionflow_smtp` (host, port,
login, password, extra `{"security": ..., "sender": ...}`) overrides them. The task's XCom holds
`recipients`, `queued`, `sent`, `already_sent`, `failed`, `pending`. On success it updates the
Asset `x-cautionflow://digests`. The as-of date is the triggering run's date in Europe/London.

Then `send_run_summary` (whether the digests went or not) emails the `operations` recipients a
counts-only summary of the day, when the config says `operations.daily_summary: true`: once per
recipient and day, through the same outbox, however often the day's pipeline runs.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from cautionflow.assets import DEADLINES, DIGESTS
from cautionflow.callbacks import notify_operations_of_failure


@dag(
    dag_id="cautionflow_digests",
    schedule=[DEADLINES],
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    tags=["cautionflow", "digests", "email"],
    doc_md=__doc__,
    default_args={"owner": "cautionflow", "retries": 3, "retry_delay": timedelta(minutes=10),
                  "on_failure_callback": notify_operations_of_failure},
)
def cautionflow_digests() -> None:
    @task(outlets=[DIGESTS])
    async def send_digests(**context) -> dict:
        """Compose, queue and deliver today's digests in this task's event loop; returns the counts."""
        from cautionflow.integrations.airflow.tasks import run_digests_task

        return await run_digests_task(context)

    @task(trigger_rule="all_done")
    async def send_run_summary(**context) -> dict:
        """The counts-only daily summary to operations (when configured), once a day."""
        from cautionflow.integrations.airflow.tasks import run_summary_task

        return await run_summary_task(context)

    send_digests() >> send_run_summary()


cautionflow_digests()
