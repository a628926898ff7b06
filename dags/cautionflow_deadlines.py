"""
### cautionflow_deadlines: review, expiry and appeal dates for every active alert

Runs whenever the register changes (the Asset `x-cautionflow://register`, updated by
`cautionflow_sync`). For every active alert it computes, by the landlord's policy profile
(the config's `policy`), with the working-day calendar and bank holidays of the landlord's nation:

* `review_due` and the date the review window opens, `expires_on`;
* `appeal_deadline` (from `notified_on`) and `appeal_response_due` (from `appeal_received_on`);
* `overdue` (the as-of date is after `review_due`), and an `error` where the row's dates or code
  make the dates impossible to compute (the alert stays a live warning).

It replaces the stored deadlines in one transaction (a rerun changes nothing), writes the
**All Alerts** report (Teign Appendix F columns; CSV and HTML) and the **overdue list** for
operations under the config's `output_dir`, and logs their paths. The task's XCom holds the
counts: `alerts`, `overdue`, `due_within_30_days`, `review_window_open`, `errors`.
On success it updates the Asset `x-cautionflow://deadlines` for the digest and letter DAGs.

Then `send_review_reminders` emails each `officer` recipient, weekly on its `weekday` (Monday by
default), the reviews overdue and due in the next 30 days, through the same outbox as the digests
(exactly once; pending mail fails the try so Airflow retries it).

Then `send_appeals_list` emails each `appeals` recipient (the senior officer who answers appeals:
Teign 9, Wandle 3.10, Dover 6.35) the appeals received and not yet decided, overdue first, with
each answer's due date and the days left: weekly on its `weekday` (Monday by default) and every
day once one is overdue, once per recipient and day through the same outbox. Its XCom holds
`open`, `overdue` and `sent`.

The as-of date is the triggering run's date in Europe/London, never `now()`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from cautionflow.assets import DEADLINES, REGISTER
from cautionflow.callbacks import notify_operations_of_failure


@dag(
    dag_id="cautionflow_deadlines",
    schedule=[REGISTER],
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    tags=["cautionflow", "deadlines"],
    doc_md=__doc__,
    default_args={"owner": "cautionflow", "retries": 2, "retry_delay": timedelta(minutes=5),
                  "on_failure_callback": notify_operations_of_failure},
)
def cautionflow_deadlines() -> None:
    @task(outlets=[DEADLINES])
    def compute_deadlines(**context) -> dict:
        """Compute and store every active alert's deadlines; write the reports."""
        from cautionflow.integrations.airflow.tasks import run_step

        return run_step("deadlines", context)

    @task
    async def send_review_reminders(**context) -> dict:
        """Weekly (Mondays, or each officer's `weekday`): reviews overdue and due in 30 days."""
        from cautionflow.integrations.airflow.tasks import run_reminders_task

        return await run_reminders_task(context)

    @task
    async def send_appeals_list(**context) -> dict:
        """Open appeals, overdue first: weekly (each `appeals` recipient's `weekday`), daily once one is overdue."""
        from cautionflow.integrations.airflow.tasks import run_appeals_task

        return await run_appeals_task(context)

    compute_deadlines() >> send_review_reminders() >> send_appeals_list()


cautionflow_deadlines()
