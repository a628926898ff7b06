"""The operations failure notice through a real SMTP server: the `on_failure_callback` every DAG
task has, called as Airflow's task runner calls it (a context with `dag`, `ti`, `run_id`,
`logical_date`, `exception`), with the config from the Variable and the `cautionflow_smtp`
Connection from the environment."""

from __future__ import annotations

import datetime as dt
import json
import logging
from types import SimpleNamespace

import pytest
import yaml

from cautionflow.clock import FixedClock
from tests.smtp_server import free_port

RUN_ID = "manual__2026-11-23T05:30:00+00:00"
LOG_URL = "http://localhost:8080/dags/cautionflow_sync/runs/manual__2026-11-23T05%3A30%3A00%2B00%3A00/tasks/sync_register?try_number=3"
RECIPIENTS = [
    {"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor", "areas": ["NORTH"]},
    {"name": "Housing Officers", "email": "officers@example.org", "role": "officer"},
    {"name": "Operations", "email": "ops@example.org", "role": "operations"},
    {"name": "On call", "email": "oncall@example.org", "role": "operations"},
]


class SourceRowError(ValueError):
    pass


def context() -> dict:
    """What the Task SDK passes an on_failure_callback (the parts a callback reads)."""
    dag = SimpleNamespace(dag_id="cautionflow_sync")
    ti = SimpleNamespace(dag_id="cautionflow_sync", task_id="sync_register", run_id=RUN_ID, try_number=3,
                         map_index=-1, log_url=LOG_URL)
    error = SourceRowError("row for 'Jane Doe' <jane.doe@example.com> at TQ12 4AB cannot be merged\nsecond line")
    return {"dag": dag, "ti": ti, "task_instance": ti, "task": SimpleNamespace(task_id="sync_register"),
            "run_id": RUN_ID, "logical_date": dt.datetime(2026, 11, 23, 5, 30, tzinfo=dt.UTC), "exception": error}


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    def write(*, smtp_port: int, recipients=RECIPIENTS, smtp: bool = True, connection_port: int | None = None):
        config = {
            "organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///register.db",
            # The source is missing: the register may be what is broken; the notice must not need it.
            "source": {"url": "sqlite:///missing/housing.db"},
            "recipients": recipients,
        }
        if smtp:
            config["smtp"] = {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                              "sender": "Example Homes <alerts@example.org>"}
        (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(config))
        monkeypatch.setenv("CAUTIONFLOW_HOME", str(tmp_path))
        monkeypatch.setenv("AIRFLOW_VAR_CAUTIONFLOW_CONFIG", str(tmp_path / "cautionflow.yaml"))
        if connection_port is None:
            monkeypatch.delenv("AIRFLOW_CONN_CAUTIONFLOW_SMTP", raising=False)
        else:
            monkeypatch.setenv("AIRFLOW_CONN_CAUTIONFLOW_SMTP", json.dumps(
                {"conn_type": "smtp", "host": "127.0.0.1", "port": connection_port, "extra": {"security": "none"}}))
        monkeypatch.delenv("AIRFLOW_CONN_CAUTIONFLOW_REGISTER", raising=False)
        monkeypatch.delenv("AIRFLOW_CONN_HOUSING_DB", raising=False)
        return tmp_path

    return write


def notify(ctx: dict, clock=None) -> None:
    from cautionflow.callbacks import notify_operations_of_failure
    from cautionflow.integrations.airflow.tasks import notify_operations_of_failure as notify_at

    if clock is None:
        notify_operations_of_failure(ctx)  # as Airflow calls it: the system clock dates the notice
    else:
        notify_at(ctx, clock)


def test_the_operations_recipients_get_the_notice_and_nobody_else(deployment, mail_server):
    deployment(smtp_port=mail_server.port)

    notify(context(), clock=FixedClock(dt.datetime(2026, 11, 23, 5, 41, 7, tzinfo=dt.UTC)))

    assert sorted(r.recipient for r in mail_server.handler.received) == ["oncall@example.org", "ops@example.org"]
    [message] = mail_server.handler.messages_for("ops@example.org")
    assert message["Date"] == "Mon, 23 Nov 2026 05:41:07 +0000"
    assert message["Subject"] == f"cautionflow: cautionflow_sync.sync_register failed (run {RUN_ID})"
    assert message["X-Cautionflow-Kind"] == "operations-failure"
    body = message.get_body(("plain",)).get_content()
    for expected in ("cautionflow_sync", "sync_register", RUN_ID, "Try:          3",
                     f"{__name__}.SourceRowError", "cannot be merged", "second line", f"Log: {LOG_URL}"):
        assert expected in body, expected
    raw = message.as_string()
    for personal in ("Jane", "Doe", "jane.doe@example.com", "TQ12"):
        assert personal not in raw, personal


def test_the_smtp_connection_overrides_the_files_server(deployment, mail_server):
    deployment(smtp_port=free_port(), connection_port=mail_server.port)  # the file's port has no server

    notify(context())

    assert len(mail_server.handler.messages_for("ops@example.org")) == 1


def test_a_server_that_is_down_is_logged_and_never_raises(deployment, caplog):
    deployment(smtp_port=free_port())  # nothing listens there
    caplog.set_level(logging.INFO)

    notify(context())  # must not raise: the task's own error is what Airflow must report

    assert "operations failure notice not sent" in caplog.text
    assert "Jane" not in caplog.text


def test_no_operations_recipient_or_no_smtp_section_sends_nothing(deployment, mail_server, caplog):
    caplog.set_level(logging.INFO)
    deployment(smtp_port=mail_server.port, recipients=RECIPIENTS[:2])
    notify(context())
    assert "no operations recipients" in caplog.text

    deployment(smtp_port=mail_server.port, smtp=False)
    notify(context())
    assert "no smtp section" in caplog.text
    assert mail_server.handler.received == []


def test_an_unreadable_config_is_logged_and_never_raises(monkeypatch, tmp_path, caplog):
    monkeypatch.setenv("AIRFLOW_VAR_CAUTIONFLOW_CONFIG", str(tmp_path / "absent.yaml"))
    caplog.set_level(logging.INFO)

    notify(context())

    assert "could not send the operations failure notice: ConfigError" in caplog.text


def context_with_history(at: dt.datetime, runs: list[tuple[dt.datetime, str]]) -> dict:
    """context() for the run at `at`, whose task instance answers `get_previous_ti` as the Task SDK's
    does (the latest run before this one's logical date, of the given state if any) over `runs`."""
    from airflow.sdk.api.datamodels._generated import PreviousTIResponse

    ctx = context()
    ctx["logical_date"] = at
    ctx["run_id"] = ctx["ti"].run_id = f"scheduled__{at.isoformat()}"

    def get_previous_ti(state=None, logical_date=None, map_index=-1):
        wanted = getattr(state, "value", state)
        earlier = [PreviousTIResponse(task_id="sync_register", dag_id="cautionflow_sync", run_id=f"scheduled__{when.isoformat()}",
                                      logical_date=when, state=ended, try_number=1)
                   for when, ended in runs if when < at and (wanted is None or ended == wanted)]
        return max(earlier, key=lambda r: r.logical_date, default=None)

    ctx["ti"].get_previous_ti = get_previous_ti
    return ctx


def test_a_task_failing_run_after_run_tells_operations_once_a_window(deployment, mail_server):
    """The urgent DAG every 15 minutes with the register unreachable: told at once, then once in each
    four-hour window (operations.failure_notice_repeat_hours, default 4), not 96 times a day."""
    deployment(smtp_port=mail_server.port)
    success = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)
    history = [(success, "success")]
    for minutes in (15, 30, 45, 240, 255):
        at = success + dt.timedelta(minutes=minutes)
        notify(context_with_history(at, history), clock=FixedClock(at + dt.timedelta(minutes=1)))
        history.append((at, "failed"))

    notices = mail_server.handler.messages_for("ops@example.org")
    assert [n["Subject"] for n in notices] == [
        "cautionflow: cautionflow_sync.sync_register failed (run scheduled__2026-11-23T01:15:00+00:00)",
        "cautionflow: cautionflow_sync.sync_register still failing (run scheduled__2026-11-23T05:00:00+00:00)",
    ]
    body = notices[1].get_body(("plain",)).get_content()
    assert "It has failed on every run since its last successful run (2026-11-23T01:00:00+00:00)" in body

    # It works again at 05:30, and fails at 05:45: a new problem, told at once.
    history.append((success + dt.timedelta(minutes=270), "success"))
    at = success + dt.timedelta(minutes=285)
    notify(context_with_history(at, history), clock=FixedClock(at))
    assert mail_server.handler.messages_for("ops@example.org")[-1]["Subject"] == (
        "cautionflow: cautionflow_sync.sync_register failed (run scheduled__2026-11-23T05:45:00+00:00)")


def test_when_airflow_cannot_say_what_ran_before_the_notice_goes(deployment, mail_server):
    deployment(smtp_port=mail_server.port)
    ctx = context()

    def unreachable(**_kwargs):
        raise ConnectionError("execution API unreachable")

    ctx["ti"].get_previous_ti = unreachable
    notify(ctx)

    assert len(mail_server.handler.messages_for("ops@example.org")) == 1  # a notice too many beats none


def test_every_dag_task_has_the_callback():
    from pathlib import Path

    from airflow.dag_processing.dagbag import DagBag

    from cautionflow.callbacks import notify_operations_of_failure

    bag = DagBag(dag_folder=str(Path(__file__).resolve().parents[2] / "dags"))
    assert bag.import_errors == {}
    for dag in bag.dags.values():
        for task in dag.tasks:
            callbacks = task.on_failure_callback
            callbacks = callbacks if isinstance(callbacks, list) else [callbacks]
            assert notify_operations_of_failure in callbacks, f"{dag.dag_id}.{task.task_id}"


FAILING_DAG = '''
import pendulum
from airflow.sdk import dag, task

from cautionflow.callbacks import notify_operations_of_failure


@dag(dag_id="cautionflow_failing", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="Europe/London"),
     catchup=False, default_args={"retries": 0, "on_failure_callback": notify_operations_of_failure})
def cautionflow_failing():
    @task
    def sync_register(**context):
        from cautionflow.integrations.airflow.tasks import run_step

        return run_step("sync", context)  # the source database is missing: the task fails

    sync_register()


cautionflow_failing()
'''


@pytest.mark.airflow
def test_a_task_failing_under_airflow_emails_operations(tmp_path, mail_server):
    """A real `airflow dags test` of a one-task DAG with no retries (the shipped DAGs retry for
    minutes) whose task fails: the Task SDK runs the callback in the task's process."""
    import subprocess
    import sys
    from pathlib import Path

    from tests.support import migrated_airflow

    bin_dir = Path(sys.executable).parent
    (tmp_path / "dags").mkdir()
    (tmp_path / "dags" / "cautionflow_failing.py").write_text(FAILING_DAG)
    config = {"organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///register.db",
              "source": {"url": "sqlite:///missing/housing.db"}, "recipients": RECIPIENTS,
              "smtp": {"host": "127.0.0.1", "port": free_port(), "security": "none",
                       "sender": "Example Homes <alerts@example.org>"}}
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(config))
    env = migrated_airflow(
        tmp_path / "airflow",
        dags_folder=tmp_path / "dags",
        extra={
            "CAUTIONFLOW_HOME": str(tmp_path), "AIRFLOW_VAR_CAUTIONFLOW_CONFIG": str(tmp_path / "cautionflow.yaml"),
            "AIRFLOW_CONN_CAUTIONFLOW_SMTP": json.dumps(
                {"conn_type": "smtp", "host": "127.0.0.1", "port": mail_server.port, "extra": {"security": "none"}}),
        },
    )

    result = subprocess.run([str(bin_dir / "airflow"), "dags", "test", "cautionflow_failing", "2026-11-23"],
                            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)

    log_text = result.stdout + result.stderr
    assert "operations failure notice sent" in log_text, log_text[-4000:]
    notices = mail_server.handler.messages_for("ops@example.org")
    assert len(notices) == 1, log_text[-4000:]
    [notice] = notices
    # `airflow dags test` names its run after the moment it ran (manual__<now>), so the run id is read back
    # from the notice and checked against its own Run line; the logical date is the one given.
    assert notice["Subject"].startswith("cautionflow: cautionflow_failing.sync_register failed (run manual__")
    run_id = notice["Subject"].removeprefix("cautionflow: cautionflow_failing.sync_register failed (run ")[:-1]
    body = notice.get_body(("plain",)).get_content()
    assert f"Run:          {run_id}\r\n" in body
    assert "Logical date: 2026-11-23T" in body
    assert "/dags/cautionflow_failing/runs/" in body and "tasks/sync_register" in body
    assert "Error:        " in body

    # The next run, a quarter of an hour later, fails the same way: its callback asks Airflow
    # (`get_previous_ti`) and finds the run before failed within the same four-hour window, so
    # operations hear nothing more (the urgent DAG's case: every 15 minutes, day and night).
    again = subprocess.run([str(bin_dir / "airflow"), "dags", "test", "cautionflow_failing", "2026-11-23T00:15:00+00:00"],
                           env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    again_log = again.stdout + again.stderr
    assert "operations failure notice not repeated" in again_log, again_log[-4000:]
    assert len(mail_server.handler.messages_for("ops@example.org")) == 1
