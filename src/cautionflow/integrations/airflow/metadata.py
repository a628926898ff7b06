"""The register page's read of Airflow's own metadata: the latest run of each cautionflow DAG,
through the api-server's ORM session (the page runs inside the api-server, not in a task)."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

CAUTIONFLOW_TAG = "cautionflow"


@dataclass(frozen=True)
class DagRunState:
    dag_id: str
    run_id: str | None = None
    state: str | None = None
    run_after: dt.datetime | None = None
    end_date: dt.datetime | None = None


def airflow_dag_runs() -> list[DagRunState]:
    """The latest run of each cautionflow DAG (those tagged `cautionflow`, and every shipped one in
    the step table's `DAGS`), in the order operations read them."""
    from airflow.models.dag import DagTag
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from cautionflow.steps import DAGS

    def order(dag_id: str) -> tuple[int, str]:
        return (DAGS.index(dag_id) if dag_id in DAGS else len(DAGS), dag_id)

    with create_session() as session:
        tagged = set(session.scalars(select(DagTag.dag_id).where(DagTag.name == CAUTIONFLOW_TAG)))
        out = []
        for dag_id in sorted(tagged | set(DAGS), key=order):
            run = session.scalars(
                select(DagRun).where(DagRun.dag_id == dag_id).order_by(DagRun.run_after.desc()).limit(1)
            ).first()
            if run is None:
                out.append(DagRunState(dag_id))
            else:
                state = getattr(run.state, "value", run.state)
                out.append(DagRunState(dag_id, run.run_id, str(state) if state else None, run.run_after, run.end_date))
    return out
