"""Every DAG file loads cleanly and is configuration only (the design brief's DAG rules)."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys

import pytest

from tests.support import REPO

DAG_FILES = sorted((REPO / "dags").glob("*.py"))
HEAVY = ("pandas", "sqlalchemy", "jinja2", "aiosmtplib", "numpy", "holidays", "psycopg", "cautionflow.config")


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(REPO / "dags"))


def test_no_import_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"cautionflow_sync"} <= set(dagbag.dag_ids)


def test_every_dag_follows_the_house_rules(dagbag):
    for dag_id, dag in dagbag.dags.items():
        assert dag.tags and "cautionflow" in dag.tags, dag_id
        assert dag.catchup is False, dag_id
        assert dag.doc_md and len(dag.doc_md) > 200, dag_id
        assert dag.schedule is not None, dag_id
        assert isinstance(dag.start_date, dt.datetime), dag_id
        assert dag.start_date.tzinfo is not None, dag_id
        assert (dag.default_args or {}).get("retries", 0) >= 1, dag_id
        for task in dag.tasks:
            assert task.retries >= 1, f"{dag_id}.{task.task_id}"


def test_every_dag_that_syncs_runs_one_run_at_a_time(dagbag):
    """Issue 17: a manual trigger racing the schedule. A DAG whose steps sync the register (the step
    table's sync and urgent steps) keeps one run active; the sync lock is the second line."""
    from cautionflow.steps import STEPS

    syncing = {STEPS[name].dag_id for name in ("sync", "urgent")}
    assert syncing == {"cautionflow_sync", "cautionflow_urgent"}
    for dag_id in syncing:
        assert dagbag.dags[dag_id].max_active_runs == 1, dag_id


def test_start_dates_are_static():
    # A start date computed from now() changes every parse; the files must spell a date out.
    for path in DAG_FILES:
        source = path.read_text()
        assert not re.search(r"\w\.(utc)?now\(|days_ago|today\(", source), path.name


def test_the_sync_dag_publishes_the_register_asset(dagbag):
    task = dagbag.dags["cautionflow_sync"].get_task("sync_register")
    assert [o.uri for o in task.outlets] == ["x-cautionflow://register"]


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_files_import_nothing_heavy_at_parse_time(path):
    code = (
        "import json, sys, runpy\n"
        "import airflow.sdk\n"
        "before = set(sys.modules)\n"
        f"runpy.run_path({str(path)!r})\n"
        f"print(json.dumps(sorted(m for m in set(sys.modules) - before if m.split('.')[0] in {HEAVY!r} "
        f"or m in {HEAVY!r})))\n"
    )
    env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == []


def test_the_deadlines_dag_runs_on_the_register_asset_and_publishes_its_own(dagbag):
    dag = dagbag.dags["cautionflow_deadlines"]
    assert [a.uri for a in dag.timetable.asset_condition.objects] == ["x-cautionflow://register"]
    task = dag.get_task("compute_deadlines")
    assert [o.uri for o in task.outlets] == ["x-cautionflow://deadlines"]
