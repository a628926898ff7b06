"""
### cautionflow_housekeeping: weekly retention and governance reports

Every Sunday at 04:00 Europe/London, when nothing else runs.

* **retention**: ended alerts whose retention period is over have their personal details (names,
  references, address, postcode, email, the recorded facts and non-notification reason)
  anonymised in the register, in their change history, in the letters queue and in the stored
  copies of the messages that disclosed them; code, area and dates stay for statistics (Teign 13,
  Dover 10). The period is the policy profile's `retention_months_after_end`, which no policy
  states: while the landlord has not set it, nothing is anonymised and the summary says
  retention is not configured. Every anonymisation is written to the register's
  `anonymisation_log`; a rerun changes nothing. `cautionflow retention --config FILE --dry-run`
  lists what would be anonymised.
* **governance_reports**: the governance reports and officers' lists
  (`cautionflow governance`), written under the config's `output_dir`.

The XCom of each task holds its counts (alert ids, never personal details). The as-of date is
the run's logical date in Europe/London, never `now()`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag, task

from cautionflow.callbacks import notify_operations_of_failure


@dag(
    dag_id="cautionflow_housekeeping",
    schedule="0 4 * * 0",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
    catchup=False,
    max_active_runs=1,
    tags=["cautionflow", "governance"],
    doc_md=__doc__,
    default_args={"owner": "cautionflow", "retries": 2, "retry_delay": timedelta(minutes=5),
                  "on_failure_callback": notify_operations_of_failure},
)
def cautionflow_housekeeping() -> None:
    @task
    def retention(**context) -> dict:
        """Anonymise ended alerts kept longer than the profile's retention period; returns the counts."""
        from cautionflow.integrations.airflow.tasks import run_step

        return run_step("retention", context)

    @task
    def governance_reports(**context) -> dict:
        """The governance reports and officers' lists (services/governance_reports.py)."""
        from cautionflow.integrations.airflow.tasks import run_step

        return run_step("governance", context)

    retention() >> governance_reports()


cautionflow_housekeeping()
