"""Unsafe shapes on a distributed executor (issue 17), through the real task functions the DAGs call:
with `AIRFLOW__CORE__EXECUTOR=CeleryExecutor` in the environment (Airflow's configuration reads it),
a SQLite register or output folders nobody said were shared fail every task before any work, with
one line saying what to configure, and without retries (AirflowFailException), so the failure
notice reaches operations at once. LocalExecutor runs the same deployment as before."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import re
from types import SimpleNamespace

import pytest
import yaml

from cautionflow.clock import FixedClock
from tests.support import alert_row, write_sqlite_source

MOMENT = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
OPERATIONS = {"name": "Operations", "email": "ops@example.org", "role": "operations"}
CONTRACTOR = {"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor", "areas": ["NORTH"]}
SQLITE_LINE = ("a SQLite register is for one machine: with CeleryExecutor set register_url "
               "(or the Connection cautionflow_register) to PostgreSQL")
FOLDERS_LINE = ("output_dir (var/reports) and letters.output_dir (var/letters) are local folders other workers "
                "cannot see: with CeleryExecutor mount them on storage every worker shares (NFS, EFS, ...) "
                "and set shared_storage: true in the config, or use object store URLs (s3://...)")
CONTACT = {"address": ["Civic Offices", "1 Harbour Way", "Westford", "WF1 1AA"], "phone": "01632 960123",
           "appeals_email": "appeals@example.org", "signed_by": "Tenancy Services",
           "signed_title": "Housing Management Team"}


@pytest.fixture
def deployment(tmp_path, monkeypatch, mail_server):
    """A deployment in tmp_path as the Airflow tasks read it; `write` sets the executor and the shape."""
    write_sqlite_source(tmp_path / "housing.db", [alert_row(alert_id="A1")])

    def write(*, executor: str, register_url: str = "sqlite:///var/cautionflow.db", shared_storage: bool = False,
              register_connection: str | None = None):
        data = {
            "organisation": "Example Homes", "policy": "dover", "register_url": register_url,
            "source": {"url": "sqlite:///housing.db"}, "recipients": [CONTRACTOR, OPERATIONS],
            "output_dir": "var/reports",
            "letters": {"output_dir": "var/letters", "auto_approve": True, "contact": CONTACT},
            "operations": {"daily_summary": True},
            "smtp": {"host": "127.0.0.1", "port": mail_server.port, "security": "none",
                     "sender": "alerts@example.org"},
        }
        if shared_storage:
            data["shared_storage"] = True
        (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(data))
        monkeypatch.setenv("CAUTIONFLOW_HOME", str(tmp_path))
        monkeypatch.setenv("AIRFLOW_VAR_CAUTIONFLOW_CONFIG", str(tmp_path / "cautionflow.yaml"))
        monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)
        for name in ("AIRFLOW_CONN_CAUTIONFLOW_SMTP", "AIRFLOW_CONN_HOUSING_DB", "CAUTIONFLOW_REGISTER_URL"):
            monkeypatch.delenv(name, raising=False)
        if register_connection is None:
            monkeypatch.delenv("AIRFLOW_CONN_CAUTIONFLOW_REGISTER", raising=False)
        else:
            monkeypatch.setenv("AIRFLOW_CONN_CAUTIONFLOW_REGISTER", register_connection)
        return tmp_path

    return write


def context(dag_id: str) -> dict:
    return {"logical_date": MOMENT, "dag": SimpleNamespace(dag_id=dag_id), "run_id": f"scheduled__{MOMENT.isoformat()}",
            "params": {}}


def every_task():
    """Each kind of task entry the DAGs call, by name, as a callable of nothing."""
    from cautionflow.integrations.airflow import tasks

    seven = FixedClock(MOMENT)
    return {
        "sync": lambda: tasks.run_sync_task(context("cautionflow_sync")),
        "deadlines": lambda: tasks.run_step("deadlines", context("cautionflow_deadlines")),
        "letters": lambda: tasks.run_step("letters", context("cautionflow_letters"), dispatch=False),
        "letters_dispatch": lambda: asyncio.run(tasks.run_letters_dispatch_task(context("cautionflow_letters"))),
        "digests": lambda: asyncio.run(tasks.run_digests_task(context("cautionflow_digests"))),
        "summary": lambda: asyncio.run(tasks.run_summary_task(context("cautionflow_digests"), clock=seven)),
        "sync_watch": lambda: asyncio.run(tasks.check_sync_finished_task(context("cautionflow_sync_watch"),
                                                                         clock=seven)),
        "retention": lambda: tasks.run_step("retention", context("cautionflow_housekeeping")),
    }


def test_celery_refuses_every_task_before_any_work_with_one_line(deployment, mail_server):
    from airflow.sdk.exceptions import AirflowFailException

    home = deployment(executor="CeleryExecutor")

    for name, run in every_task().items():
        with pytest.raises(AirflowFailException) as refused:
            run()
        # One line a problem, each saying what to configure.
        assert str(refused.value).splitlines() == [SQLITE_LINE, FOLDERS_LINE], name
    assert not (home / "var").exists()  # no register, no report, no letter: nothing began
    assert mail_server.handler.received == []


@pytest.mark.parametrize("setting", [
    "LocalExecutor,CeleryExecutor",
    "airflow.providers.celery.executors.celery_executor.CeleryExecutor",
    "LocalExecutor;team1=CeleryExecutor",
])
def test_any_celery_entry_in_the_setting_refuses(deployment, setting):
    from airflow.sdk.exceptions import AirflowFailException

    deployment(executor=setting, shared_storage=True)

    with pytest.raises(AirflowFailException, match=f"^{re.escape(SQLITE_LINE)}$"):
        every_task()["deadlines"]()


def test_the_register_connection_is_what_is_checked(deployment):
    """The file names PostgreSQL but the Connection cautionflow_register overrides it with SQLite."""
    from airflow.sdk.exceptions import AirflowFailException

    deployment(executor="CeleryExecutor", register_url="postgresql://cautionflow@db.invalid/register",
               shared_storage=True, register_connection=json.dumps({"conn_type": "sqlite", "host": "/srv/r.db"}))

    with pytest.raises(AirflowFailException, match=f"^{re.escape(SQLITE_LINE)}$"):
        every_task()["sync"]()


def test_with_the_folders_declared_shared_only_the_register_is_refused(databases, deployment):
    """On the PostgreSQL backend the register comes from the Connection (the file still says SQLite)
    and the sync runs on CeleryExecutor; on SQLite it is refused with the one line."""
    from airflow.sdk.exceptions import AirflowFailException

    if databases.backend == "sqlite":
        home = deployment(executor="CeleryExecutor", register_url=databases.register_url, shared_storage=True)
        with pytest.raises(AirflowFailException, match=f"^{re.escape(SQLITE_LINE)}$"):
            every_task()["sync"]()
        assert not (home / "register.db").exists()
        return
    deployment(executor="CeleryExecutor", shared_storage=True,
               register_connection=databases.register_url.replace("postgresql+psycopg://", "postgresql://"))

    summary = every_task()["sync"]()

    assert summary["inserted"] == 1


def test_local_executor_runs_the_same_deployment(deployment):
    home = deployment(executor="LocalExecutor")

    summary = every_task()["sync"]()
    every_task()["deadlines"]()

    assert summary["inserted"] == 1
    assert (home / "var" / "cautionflow.db").exists()
    assert any((home / "var" / "reports").iterdir())


def test_operations_are_told_the_line(deployment, mail_server):
    """The refusal reaches operations through the failure callback every task has, which reads the
    config without the check (a notice must go even when the deployment is what is wrong)."""
    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.integrations.airflow.tasks import notify_operations_of_failure

    deployment(executor="CeleryExecutor")
    with pytest.raises(AirflowFailException) as refused:
        every_task()["deadlines"]()
    ti = SimpleNamespace(dag_id="cautionflow_deadlines", task_id="compute_deadlines", try_number=1, log_url=None)
    failed = {**context("cautionflow_deadlines"), "ti": ti, "exception": refused.value}

    notify_operations_of_failure(failed, clock=FixedClock(MOMENT))

    [notice] = mail_server.handler.messages_for("ops@example.org")
    body = notice.get_body(("plain",)).get_content()
    assert "AirflowFailException" in body
    assert f"    {SQLITE_LINE}\r\n    {FOLDERS_LINE}\r\n" in body  # both lines, whole
    assert [r.recipient for r in mail_server.handler.received] == ["ops@example.org"]


@pytest.mark.airflow
def test_the_shipped_sync_dag_fails_at_once_under_airflow(tmp_path, mail_server):
    """A real `airflow dags test` of the shipped cautionflow_sync (2 retries, 5 minutes apart) with
    CeleryExecutor in Airflow's configuration: the Task SDK runs the task, which is refused on its
    first try and failed without a retry, and the failure callback emails operations both lines."""
    from tests.support import dags_test, migrated_airflow

    write_sqlite_source(tmp_path / "housing.db", [alert_row(alert_id="A1")])
    config = tmp_path / "cautionflow.yaml"
    config.write_text(yaml.safe_dump({
        "organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///var/cautionflow.db",
        "source": {"url": "sqlite:///housing.db"}, "recipients": [OPERATIONS],
        "output_dir": "var/reports", "letters": {"output_dir": "var/letters", "contact": CONTACT},
        "smtp": {"host": "127.0.0.1", "port": 1, "security": "none", "sender": "alerts@example.org"},
    }))
    env = migrated_airflow(tmp_path / "airflow", without=("AIRFLOW_CONN_CAUTIONFLOW_REGISTER",
                                                          "AIRFLOW_CONN_HOUSING_DB", "CAUTIONFLOW_REGISTER_URL"))
    env["AIRFLOW__CORE__EXECUTOR"] = "CeleryExecutor"  # as every Celery worker's environment says

    result = dags_test("cautionflow_sync", env, config, mail_server.port)

    log_text = result.stdout + result.stderr
    assert result.returncode != 0
    assert f"AirflowFailException: {SQLITE_LINE}\n{FOLDERS_LINE}" in log_text, log_text[-4000:]
    assert "new_state=failed" in log_text and "up_for_retry" not in log_text.lower(), log_text[-4000:]
    [notice] = mail_server.handler.messages_for("ops@example.org")
    body = notice.get_body(("plain",)).get_content()
    assert "Try:          1\r\n" in body
    assert f"    {SQLITE_LINE}\r\n    {FOLDERS_LINE}\r\n" in body
    assert not (tmp_path / "var").exists()
