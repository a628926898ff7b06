"""Airflow callbacks the DAG files name in their `default_args`.

Deliberately light: the DAG files import this at parse time, so it imports nothing at module level
(not even `cautionflow.config`); each callback imports the real one when it runs, inside the task.
"""

from __future__ import annotations

from typing import Any


def notify_operations_of_failure(context: Any) -> None:
    """`on_failure_callback`: email the config's `operations` recipients that a task failed after
    its retries (see `cautionflow.integrations.airflow.tasks.notify_operations_of_failure`). Never raises."""
    try:
        from cautionflow.integrations.airflow.tasks import notify_operations_of_failure as notify
    except Exception:  # noqa: BLE001 - a failing callback must not mask the task's error
        import logging

        logging.getLogger(__name__).warning("operations failure notice unavailable", exc_info=True)
        return
    notify(context)
