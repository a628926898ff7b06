"""
### cautionflow_letters: the resident letters queue

Runs whenever the deadlines are recomputed (the Asset `x-cautionflow://deadlines`, updated by
`cautionflow_deadlines`). From the register's alerts, their stored deadlines and the landlord's
policy profile it works out which letters residents are owed, by the alert's recorded state:

* **alert added** (a decision letter, for the profile's `decision_letter_codes`, when the resident
  has not been told), with the reason, what it means for their service, how long it lasts and how
  and by when to appeal;
* **review outcome** (kept or removed) and **appeal outcome** (upheld or dismissed).

Letters that must not go are counted with the reason (not to be told, agency information, from
before the policy, address-only alerts); letters in another language or without a postal address
are queued **held** for an officer. Each letter is rendered to HTML and an A4 PDF (large print
where recorded) under the config's `letters.output_dir`, and queued once per alert, kind and
decision date, so a rerun queues nothing. What no letter can settle (untold alerts older than the
look-back, a decision not to tell without a recorded reason) is kept in the officers' list
(`cautionflow letters flags`). The XCom holds the counts: `queued`, `held`, `already_queued`,
`suppressed`, `flags`.

Officers approve and dispatch with `cautionflow letters approve|dispatch`. With
`letters.auto_approve: true` the second task, **dispatch_letters** (async, like the digests), writes the
print batch and sends the email letters through the outbox, exactly once; the Connection
`cautionflow_smtp` overrides the config's `smtp` section. Without auto-approval it does nothing.

The as-of date is the triggering run's date in Europe/London, never `now()`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from cautionflow.assets import DEADLINES, LETTERS
from cautionflow.callbacks import notify_operations_of_failure


@dag(
    dag_id="cautionflow_letters",
    schedule=[DEADLINES],
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    tags=["cautionflow", "letters"],
    doc_md=__doc__,
    default_args={"owner": "cautionflow", "retries": 2, "retry_delay": timedelta(minutes=5),
                  "on_failure_callback": notify_operations_of_failure},
)
def cautionflow_letters() -> None:
    @task(outlets=[LETTERS])
    def queue_letters(**context) -> dict:
        """Queue (and render) the letters residents are owed today."""
        from cautionflow.integrations.airflow.tasks import run_step

        return run_step("letters", context, dispatch=False)

    @task
    async def dispatch_letters(**context) -> dict:
        """With letters.auto_approve: print batch and email letters, in this task's event loop."""
        from cautionflow.integrations.airflow.tasks import run_letters_dispatch_task

        return await run_letters_dispatch_task(context)

    queue_letters() >> dispatch_letters()


cautionflow_letters()
