"""The lateness alert (issue 6): `cautionflow_sync_watch` at 07:00 tells the operations recipients,
through a real SMTP server, when the register has no sync for the day finished by then."""

from __future__ import annotations

import asyncio
import datetime as dt
from zoneinfo import ZoneInfo

import pytest
import yaml

from cautionflow.clock import FixedClock
from cautionflow.config import load_config
from cautionflow.steps import run_sync
from tests.support import AS_OF, REPO, alert_row, write_sqlite_source

LONDON = ZoneInfo("Europe/London")
SEVEN = dt.datetime(2026, 11, 23, 7, 0, tzinfo=LONDON)
RECIPIENTS = [
    {"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor", "areas": ["NORTH"]},
    {"name": "Operations", "email": "ops@example.org", "role": "operations"},
    {"name": "On call", "email": "oncall@example.org", "role": "operations"},
]


@pytest.fixture
def deployment(tmp_path, monkeypatch):
    """A register with one person's alert (so there is personal data a notice must not carry)."""

    def write(*, smtp_port: int, recipients=RECIPIENTS):
        source = write_sqlite_source(tmp_path / "housing.db", [alert_row(person_name="Jane Doe", postcode="TQ12 4AB")])
        config = {
            "organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///register.db",
            "source": {"url": source}, "recipients": recipients,
            "smtp": {"host": "127.0.0.1", "port": smtp_port, "security": "none",
                     "sender": "Example Homes <alerts@example.org>"},
        }
        (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(config))
        monkeypatch.setenv("CAUTIONFLOW_HOME", str(tmp_path))
        monkeypatch.setenv("AIRFLOW_VAR_CAUTIONFLOW_CONFIG", str(tmp_path / "cautionflow.yaml"))
        monkeypatch.setenv("AIRFLOW__API__BASE_URL", "https://airflow.example.org")
        for name in ("AIRFLOW_CONN_CAUTIONFLOW_SMTP", "AIRFLOW_CONN_CAUTIONFLOW_REGISTER", "AIRFLOW_CONN_HOUSING_DB"):
            monkeypatch.delenv(name, raising=False)
        return load_config(tmp_path / "cautionflow.yaml", home=tmp_path)

    return write


def at(hour: int, minute: int) -> FixedClock:
    """A clock showing a time on AS_OF in London: when a sync finished is an input, never the machine's time."""
    return FixedClock(dt.datetime(2026, 11, 23, hour, minute, tzinfo=LONDON))


def watch(logical_date: dt.datetime) -> dict:
    """The watch DAG's task, called with the context the Task SDK gives it (the parts it reads), on a
    clock that shows the watch's own run time (a minute after its deadline)."""
    from types import SimpleNamespace

    from cautionflow.integrations.airflow.tasks import check_sync_finished_task

    context = {"logical_date": logical_date, "dag": SimpleNamespace(dag_id="cautionflow_sync_watch"),
               "run_id": f"scheduled__{logical_date.isoformat()}"}
    clock = FixedClock(logical_date + dt.timedelta(minutes=1))
    return asyncio.run(check_sync_finished_task(context, clock=clock))


def test_the_watch_dag_runs_at_seven_london_time():
    from airflow.dag_processing.dagbag import DagBag

    dag = DagBag(dag_folder=str(REPO / "dags" / "cautionflow_sync_watch.py")).dags["cautionflow_sync_watch"]
    assert dag.timetable.expression == "0 7 * * *"
    assert str(dag.timetable.timezone) == "Europe/London"
    assert [t.task_id for t in dag.tasks] == ["check_sync_finished"]


def test_no_sync_by_seven_emails_the_operations_recipients(deployment, mail_server):
    config = deployment(smtp_port=mail_server.port)
    run_sync(config, as_of=AS_OF - dt.timedelta(days=1), run_id="yesterday", clock=at(6, 0).advance(days=-1))

    result = watch(SEVEN)

    assert result["late"] is True and result["notified"] == 2 and result["finished_at"] is None
    assert sorted(r.recipient for r in mail_server.handler.received) == ["oncall@example.org", "ops@example.org"]
    [message] = mail_server.handler.messages_for("ops@example.org")
    assert message["Subject"] == "cautionflow: the sync for 23 November 2026 had not finished by 07:00"
    assert message["X-Cautionflow-Kind"] == "operations-late"
    body = message.get_body(("plain",)).get_content()
    for expected in ("07:00 on 23 November 2026 (Europe/London)", "It has not finished yet.",
                     "Latest finished sync: as of 2026-11-22", "DAG: https://airflow.example.org/dags/cautionflow_sync"):
        assert expected in body, expected
    raw = message.as_string()
    for personal in ("Jane", "Doe", "TQ12", "Larkspur", "rota@acme.example"):
        assert personal not in raw, personal


def test_a_rerun_of_the_watch_sends_nothing_twice(deployment, mail_server):
    # Once a day through the register's outbox; with no register at all (never created but by the
    # sync), the notice goes directly: tests/integration/test_unsynced_register.py.
    config = deployment(smtp_port=mail_server.port)
    run_sync(config, as_of=AS_OF - dt.timedelta(days=1), run_id="yesterday", clock=at(6, 0).advance(days=-1))
    watch(SEVEN)

    again = watch(SEVEN)  # an operator clears the task, or it retries

    assert again["late"] is True and again["notified"] == 0 and again["already_notified"] == 2
    assert sorted(r.recipient for r in mail_server.handler.received) == ["oncall@example.org", "ops@example.org"]


def test_a_sync_finished_in_time_sends_nothing(deployment, mail_server):
    config = deployment(smtp_port=mail_server.port)
    run_sync(config, as_of=AS_OF, run_id="today", clock=at(6, 42))

    result = watch(SEVEN)

    assert result["late"] is False
    assert dt.datetime.fromisoformat(result["finished_at"]) == dt.datetime(2026, 11, 23, 6, 42, tzinfo=dt.UTC)
    assert mail_server.handler.received == []


def test_a_sync_finished_at_the_deadline_is_in_time(deployment, mail_server):
    config = deployment(smtp_port=mail_server.port)
    run_sync(config, as_of=AS_OF, run_id="today", clock=at(7, 0))

    assert watch(SEVEN)["late"] is False
    assert mail_server.handler.received == []


def test_a_sync_that_finished_after_the_deadline_is_reported_late(deployment, mail_server):
    """A watch run the scheduler started late still judges by its 07:00 deadline."""
    config = deployment(smtp_port=mail_server.port)
    run_sync(config, as_of=AS_OF, run_id="today", clock=at(9, 15))  # two hours and a quarter late

    result = watch(SEVEN)

    assert result["late"] is True
    [message] = mail_server.handler.messages_for("ops@example.org")
    assert "It finished late, at 09:15" in message.get_body(("plain",)).get_content()
    assert message["Date"] == "Mon, 23 Nov 2026 07:01:00 +0000"  # the watch's clock, not the machine's


def test_a_notice_the_server_refuses_fails_the_task(deployment, mail_server):
    deployment(smtp_port=mail_server.port)
    mail_server.handler.refuse.update({"ops@example.org": "550 no", "oncall@example.org": "550 no"})

    with pytest.raises(RuntimeError, match="not accepted"):
        watch(SEVEN)


def test_summer_time_is_shown_in_london_time():
    from cautionflow.domain.operations import LatenessNotice

    notice = LatenessNotice(
        as_of=dt.date(2026, 7, 1), deadline=dt.datetime(2026, 7, 1, 6, 0, tzinfo=dt.UTC), timezone="Europe/London",
        last_sync_as_of=None, finished_at=None, dag_url=None,
    )
    assert notice.subject == "cautionflow: the sync for 1 July 2026 had not finished by 07:00"
    assert "Latest finished sync: as of never" in notice.text
    assert "set [api] base_url" in notice.text
