"""No mail from a register that has not synced (issue 18, finding 2 and "What to build", bullet 2).

The probe: a mistyped `register_url` made a new, empty register, and every recipient was emailed
"0 flags ... there are no current flags for you", exit 0. Policies README, "Principles": safety
first, a warning reaches the people who visit. A digest from a register that is missing, never
synced or days old tells them the opposite, so digests, review reminders and the daily summary
are refused (exit 2, one line; in Airflow the task fails without retries and operations are told),
and nothing but the sync ever creates a register. Real processes, real SQLite and PostgreSQL, a
real SMTP server (tests/smtp_server.py) that must record nothing.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
import re
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from cautionflow.clock import FixedClock
from tests.deployment import FAST, RECIPIENTS, SOURCE, deployment, write_config
from tests.support import AS_OF, alert_row, write_sqlite_source

SYNCED = dt.datetime(2026, 11, 23, 5, 40, tzinfo=dt.UTC)  # when the day's sync finished
NEXT_DAY = AS_OF + dt.timedelta(days=1)
OPERATIONS = {"name": "Operations", "email": "ops@example.org", "role": "operations"}
NOT_FOUND = "(run the sync first, or check register_url)"


def cautionflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CAUTIONFLOW_CONFIG", "CAUTIONFLOW_DEBUG")}
    return subprocess.run([sys.executable, "-m", "cautionflow", *args], cwd=cwd, capture_output=True, text=True,
                          env={**env, "CAUTIONFLOW_HOME": str(cwd)}, timeout=120)


def one_line_exit_2(result: subprocess.CompletedProcess[str], *expected: str) -> str:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    for part in expected:
        assert part in lines[0], lines[0]
    return lines[0]


def register_tables(url: str) -> set[str]:
    """The tables in a PostgreSQL database (read without going through Register)."""
    from sqlalchemy import create_engine, inspect

    engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
    try:
        with engine.connect() as conn:
            return set(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def assert_no_register(databases, url: str) -> None:
    if databases.backend == "sqlite":
        path = Path(url.removeprefix("sqlite:///"))
        assert not path.exists() and not path.parent.exists(), path
    else:
        assert register_tables(url) == set()


# --- finding 2: a mistyped register_url ------------------------------------------------------------


def test_digests_from_a_mistyped_register_url_exit_2_and_create_nothing(databases, tmp_path, mail_server):
    """`run digests` with a register_url that names no register: one line, exit 2, no mail, and the
    register is not created (SQLite: no file, no folder; PostgreSQL: no tables)."""
    databases.write_source(SOURCE)
    if databases.backend == "sqlite":
        databases.register_url = f"sqlite:///{tmp_path / 'var' / 'regsiter.db'}"  # the typo
    # PostgreSQL: the fixture's database exists but no sync ever made it a register.
    config = deployment(databases, tmp_path, mail_server.port)
    path = write_config(config, tmp_path)

    result = cautionflow("run", "digests", "--config", str(path), "--as-of", AS_OF.isoformat(), cwd=tmp_path)

    line = one_line_exit_2(result, "digests not sent: register not found: ", NOT_FOUND)
    if databases.backend == "sqlite":
        assert str(tmp_path / "var" / "regsiter.db") in line
    assert mail_server.handler.received == []
    assert_no_register(databases, config.register_url)


COMMANDS = {
    "run digests": ["run", "digests", "--as-of", AS_OF.isoformat()],
    "run reminders": ["run", "reminders", "--as-of", AS_OF.isoformat()],
    "run deadlines": ["run", "deadlines", "--as-of", AS_OF.isoformat()],
    "run letters": ["run", "letters", "--as-of", AS_OF.isoformat()],
    "run governance": ["run", "governance", "--as-of", AS_OF.isoformat()],
    "status": ["status"],
    "dsar": ["dsar", "--person-ref", "P0001", "--as-of", AS_OF.isoformat()],
    "letters list": ["letters", "list"],
    "digests resend-failed": ["digests", "resend-failed", "--dry-run"],
    "mail resend-failed": ["mail", "resend-failed", "--dry-run"],
}


@pytest.mark.parametrize("command", COMMANDS)
def test_no_command_but_the_sync_creates_a_register(command, tmp_path, mail_server):
    write_sqlite_source(tmp_path / "housing.db", [alert_row(alert_id="A1")])
    data = {
        "organisation": "Example Homes", "policy": "teign", "register_url": "sqlite:///var/regsiter.db",
        "source": {"url": "sqlite:///housing.db"}, "recipients": RECIPIENTS,
        "smtp": {"host": "127.0.0.1", "port": mail_server.port, "security": "none", "sender": "alerts@example.org"},
    }
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(data))

    result = cautionflow(*COMMANDS[command], "--config", "cautionflow.yaml", cwd=tmp_path)

    one_line_exit_2(result, f"register not found: {tmp_path / 'var' / 'regsiter.db'} {NOT_FOUND}")
    assert not (tmp_path / "var").exists()
    assert mail_server.handler.received == []


def test_the_sync_still_creates_the_register(tmp_path):
    write_sqlite_source(tmp_path / "housing.db", [alert_row(alert_id="A1")])
    data = {"organisation": "Example Homes", "policy": "teign", "register_url": "sqlite:///var/register.db",
            "source": {"url": "sqlite:///housing.db"}}
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(data))

    result = cautionflow("run", "sync", "--config", "cautionflow.yaml", "--as-of", AS_OF.isoformat(), cwd=tmp_path)

    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "var" / "register.db").is_file()


# --- a register that never completed a sync ---------------------------------------------------------


def test_a_register_whose_sync_never_completed_sends_nothing(databases, tmp_path, mail_server):
    """The sync created the register, then failed reading the housing database (rolled back): there
    are tables but no completed sync, and nothing to tell anyone."""
    from cautionflow.adapters.register import RegisterError
    from cautionflow.adapters.source import SourceError
    from cautionflow.steps import run_sync

    databases.write_source(SOURCE)
    (tmp_path / "broken.sql").write_text("SELECT * FROM no_such_export")
    broken = deployment(databases, tmp_path, mail_server.port, source={"url": databases.source_url,
                                                                       "query": str(tmp_path / "broken.sql")})
    with pytest.raises((SourceError, RegisterError)):
        run_sync(broken, as_of=AS_OF, run_id="failed-sync", clock=FixedClock(SYNCED))
    path = write_config(deployment(databases, tmp_path, mail_server.port), tmp_path)

    result = cautionflow("run", "digests", "--config", str(path), "--as-of", AS_OF.isoformat(), cwd=tmp_path)

    one_line_exit_2(result, "digests not sent: the register has never completed a sync; run the sync first")
    assert mail_server.handler.received == []


# --- a last sync older than mail.max_sync_age_hours (36 by default) --------------------------------


def synced(databases, tmp_path, port, **extra):
    """A register whose last sync finished at SYNCED, with the deadlines computed."""
    from cautionflow.steps import run_deadlines, run_sync

    config = deployment(databases, tmp_path, port, recipients=[*RECIPIENTS, OPERATIONS],
                        operations={"daily_summary": True}, **extra)
    databases.write_source(SOURCE)
    run_sync(config, as_of=AS_OF, run_id="sync", clock=FixedClock(SYNCED))
    run_deadlines(config, as_of=AS_OF, run_id="deadlines")
    return config


def test_mail_is_refused_37_hours_after_the_last_sync(databases, tmp_path, mail_server):
    # RegisterError: what the command line reports as one line, exit 2 (steps.step_errors).
    from cautionflow.adapters.register import RegisterError
    from cautionflow.steps import run_digests, run_reminders, run_summary_async

    config = synced(databases, tmp_path, mail_server.port)
    late = FixedClock(SYNCED + dt.timedelta(hours=37))

    with pytest.raises(RegisterError) as refused:
        run_digests(config, as_of=NEXT_DAY, run_id="digests", retry=FAST, clock=late)
    assert str(refused.value) == (
        "digests not sent: the register's last completed sync finished 37 hours ago (2026-11-23 05:40 UTC), "
        "more than the 36 hours allowed (mail.max_sync_age_hours: 36); run the sync first"
    )
    with pytest.raises(RegisterError, match="^review reminders not sent: .* 37 hours ago"):
        run_reminders(config, as_of=NEXT_DAY, run_id="reminders", retry=FAST, clock=late)
    with pytest.raises(RegisterError, match="^daily run summary not sent: .* 37 hours ago"):
        asyncio.run(run_summary_async(config, as_of=NEXT_DAY, run_id="summary", retry=FAST, clock=late))
    assert mail_server.handler.received == []


def test_mail_goes_35_hours_after_the_last_sync(databases, tmp_path, mail_server):
    from cautionflow.steps import run_digests

    config = synced(databases, tmp_path, mail_server.port)

    summary = run_digests(config, as_of=NEXT_DAY, run_id="digests", retry=FAST,
                          clock=FixedClock(SYNCED + dt.timedelta(hours=35)))

    assert summary["sent"] == 3 and summary["complete"] is True
    assert {r.recipient for r in mail_server.handler.received} == {
        "rota@acme.example", "bookings@southside-gas.example", "ooh@callcentre.example"}


def test_the_allowed_age_is_configurable(databases, tmp_path, mail_server):
    from cautionflow.steps import run_digests

    config = synced(databases, tmp_path, mail_server.port, mail={"max_sync_age_hours": 48})

    summary = run_digests(config, as_of=NEXT_DAY, run_id="digests", retry=FAST,
                          clock=FixedClock(SYNCED + dt.timedelta(hours=37)))

    assert summary["sent"] == 3


@pytest.mark.parametrize("value", [0, -1, 1000, "soon"])
def test_an_unusable_allowed_age_is_a_one_line_config_error(value):
    from cautionflow.config import ConfigError, parse_config

    data = {"organisation": "Example Homes", "policy": "teign", "register_url": "sqlite:///r.db",
            "source": {"url": "sqlite:///h.db"}, "mail": {"max_sync_age_hours": value}}
    with pytest.raises(ConfigError, match=r"^config: mail\.max_sync_age_hours: ") as error:
        parse_config(data)
    assert "\n" not in str(error.value)


# --- Airflow: the task fails without retries; the watch still tells operations ---------------------


@pytest.fixture
def airflow_deployment(tmp_path, monkeypatch, mail_server):
    """A deployment whose register_url names no register, as the Airflow tasks read it."""
    write_sqlite_source(tmp_path / "housing.db", [alert_row(alert_id="A1")])
    data = {
        "organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///var/regsiter.db",
        "source": {"url": "sqlite:///housing.db"}, "recipients": [*RECIPIENTS, OPERATIONS],
        "operations": {"daily_summary": True},
        "smtp": {"host": "127.0.0.1", "port": mail_server.port, "security": "none", "sender": "alerts@example.org"},
    }
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(data))
    monkeypatch.setenv("CAUTIONFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW_VAR_CAUTIONFLOW_CONFIG", str(tmp_path / "cautionflow.yaml"))
    for name in ("AIRFLOW_CONN_CAUTIONFLOW_SMTP", "AIRFLOW_CONN_CAUTIONFLOW_REGISTER", "AIRFLOW_CONN_HOUSING_DB"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path


def context(dag_id: str, moment: dt.datetime) -> dict:
    return {"logical_date": moment, "dag": SimpleNamespace(dag_id=dag_id), "run_id": f"scheduled__{moment.isoformat()}"}


def test_the_airflow_mail_tasks_fail_without_retries(airflow_deployment, mail_server):
    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.integrations.airflow.tasks import run_digests_task, run_reminders_task, run_summary_task

    moment = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)
    for task in (run_digests_task, run_reminders_task, run_summary_task):
        with pytest.raises(AirflowFailException, match=f"not sent: register not found: .*regsiter.db {re.escape(NOT_FOUND)}"):
            asyncio.run(task(context("cautionflow_digests", moment)))
    assert mail_server.handler.received == []
    assert not (airflow_deployment / "var").exists()


def test_the_sync_watch_tells_operations_when_there_is_no_register(airflow_deployment, mail_server):
    """The watch is what tells operations that no sync ran: with no register at all it still says so
    (sent directly, as there is no outbox to send it through), and creates none."""
    from cautionflow.integrations.airflow.tasks import check_sync_finished_task

    seven = dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC)
    result = asyncio.run(check_sync_finished_task(context("cautionflow_sync_watch", seven),
                                                  clock=FixedClock(seven + dt.timedelta(minutes=1))))

    assert result["late"] is True and result["finished_at"] is None
    assert result["notified"] == 1 and result["register"] == "missing"
    [message] = mail_server.handler.messages_for("ops@example.org")
    assert message["Subject"] == "cautionflow: the sync for 23 November 2026 had not finished by 07:00"
    assert "Latest finished sync: as of never" in message.get_body(("plain",)).get_content()
    assert [r.recipient for r in mail_server.handler.received] == ["ops@example.org"]
    assert not (airflow_deployment / "var").exists()
