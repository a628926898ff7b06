"""A whole Airflow deployment of cautionflow on this machine, with real parts, for the executor
tests and benchmarks (issue 17): scheduler, dag-processor and api-server, and either LocalExecutor
or N Celery workers on the Redis server at 127.0.0.1:6379 (db 7 only); Airflow's metadata, the
register and the housing database on the PostgreSQL server (databases named `h_celery_...`,
dropped afterwards); reports and letters in an S3-compatible store (moto's server, tests/object_store.py);
mail to an aiosmtpd server in this process that counts what it accepts.

Each Celery worker has its own AIRFLOW_HOME (its task logs), its own CAUTIONFLOW_HOME (its own copy
of the config file) and its own process group, so that `kill_worker` takes the worker and every
task process it started, as a lost machine would. Each worker names itself through Airflow's
`[core] hostname_callable` (`component_hostname` below, reading CAUTIONFLOW_TEST_HOSTNAME), so
`task_instance.hostname` says which worker ran each try.

The pipeline is started the way production starts it: the DAGs are unpaused and the scheduler
creates cautionflow_sync's run for its latest 05:30 (catchup=False); the Assets start the rest.
A manual trigger besides would make a second sync run. The date is that run's logical date in
Europe/London (`sync_as_of`), read from the metadata database after parsing, and the housing data
is built relative to it, so the outcome does not depend on the real date.

Retries: the shipped DAGs wait 5-10 minutes between tries. Airflow has no setting that shortens an
explicit `retry_delay` (`[core] default_task_retry_delay` is only the default; `max_task_retry_delay`
caps only exponential backoff), so the stack installs an Airflow cluster policy
(`airflow_local_settings.py` in `$AIRFLOW_HOME/config`, Airflow's documented hook) whose `task_policy`
sets every task's `retry_delay` to `retry_delay_seconds`. The DAG files are unchanged.

Synthetic data only (`cautionflow demo-data`).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from tests.smtp_server import MailServer, Recorder
from tests.support import PG_ADMIN_URL, REPO, write_postgres_source

BIN = Path(sys.executable).parent
REDIS_URL = "redis://127.0.0.1:6379/7"  # this project's Redis db number; flushed at start
DAILY = ("cautionflow_sync", "cautionflow_deadlines", "cautionflow_letters", "cautionflow_digests")
BUCKET = "cautionflow"
STORAGE_CONN = "cautionflow_storage"
LONDON = ZoneInfo("Europe/London")
HOSTNAME_VARIABLE = "CAUTIONFLOW_TEST_HOSTNAME"


def component_hostname() -> str:
    """Airflow's `[core] hostname_callable` for the stack: each component's own name."""
    return os.environ.get(HOSTNAME_VARIABLE, "control")


LOCAL_SETTINGS = '''"""Test-only cluster policy (tests/airflow_stack.py): retries {seconds} s apart, not minutes."""
from datetime import timedelta


def task_policy(task):
    if task.retries:
        task.retry_delay = timedelta(seconds={seconds})
'''


# --- mail -----------------------------------------------------------------------------------------


class SlowRecorder(Recorder):
    """The tests' SMTP recorder, answering each MAIL command only after `mail_delay` seconds, before
    any of the message is sent: a client that dies meanwhile has given the server nothing.
    `waiting` counts the MAIL commands being delayed now."""

    def __init__(self) -> None:
        super().__init__()
        self.mail_delay = 0.0
        self.waiting = 0

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802 - aiosmtpd's hook
        if self.mail_delay:
            self.waiting += 1
            try:
                await asyncio.sleep(self.mail_delay)
            finally:
                self.waiting -= 1
        return await super().handle_MAIL(server, session, envelope, address, mail_options)

    def of_kind(self, kind: str) -> list[Any]:
        return [r for r in self.received if r.message["X-Cautionflow-Kind"] == kind]


@contextlib.contextmanager
def slow_mail_server() -> Iterator[MailServer]:
    server = MailServer()
    server.handler = SlowRecorder()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# --- databases ------------------------------------------------------------------------------------


@contextlib.contextmanager
def postgres_databases(*names: str) -> Iterator[dict[str, str]]:
    """Fresh databases `h_celery_<name>_<hex>` on the local server, dropped afterwards; their URLs."""
    import psycopg

    suffix = uuid.uuid4().hex[:8]
    created = {name: f"h_celery_{name}_{suffix}" for name in names}
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        for db in created.values():
            conn.execute(f'CREATE DATABASE "{db}"')
    try:
        yield {name: PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{db}" for name, db in created.items()}
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            for db in created.values():
                conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')


def query(url: str, sql: str, *params: Any) -> list[tuple]:
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()


def flush_redis() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()


# --- the deployment -------------------------------------------------------------------------------


def contractors(count: int) -> list[dict[str, Any]]:
    """`count` synthetic daily contractors spread over the demo's five areas."""
    areas = ["NORTH", "SOUTH", "EAST", "WEST", "CENTRAL"]
    return [
        {"name": f"Contractor {i:03d}", "email": f"rota{i:03d}@contractor{i:03d}.example", "role": "contractor",
         "areas": [areas[i % 5], areas[(i + 2) % 5]]}
        for i in range(count)
    ]


def config_data(register_url: str, source_url: str, smtp_port: int, *,
                recipients: list[dict[str, Any]] | None = None, max_concurrency: int = 1) -> dict[str, Any]:
    """The demo's config (its recipients, letters contact, digests, urgent and summary settings) on
    PostgreSQL, with reports and letters in the bucket: the workers share no folder."""
    config = yaml.safe_load((REPO / "include/config/cautionflow.demo.yaml").read_text())
    config.pop("equality", None)  # the housekeeping DAG's, not the daily pipeline's
    config.update(
        register_url=register_url,
        source={"url": source_url},  # the default query: SELECT * FROM caution_alerts_export
        smtp={**config["smtp"], "port": smtp_port, "max_concurrency": max_concurrency},
    )
    if recipients is not None:
        config["recipients"] = recipients
    config.update(output_dir=f"s3://{BUCKET}/reports", storage_conn_id=STORAGE_CONN,
                  letters={**config["letters"], "output_dir": f"s3://{BUCKET}/letters"})
    return config


def build_source(folder: Path, source_url: str, as_of: date, *, alerts: int, homes: int) -> int:
    """The demo's synthetic housing data as of `as_of` (`cautionflow demo-data`), its export view
    copied into the PostgreSQL source as the table caution_alerts_export; returns its row count."""
    housing = folder / "housing.db"
    built = subprocess.run(
        [str(BIN / "cautionflow"), "demo-data", "--out", str(housing), "--alerts", str(alerts), "--homes", str(homes),
         "--as-of", as_of.isoformat()], capture_output=True, text=True, timeout=600,
    )
    assert built.returncode == 0, built.stdout + built.stderr
    with contextlib.closing(sqlite3.connect(housing)) as conn:
        conn.row_factory = sqlite3.Row
        rows = [dict(r) for r in conn.execute("SELECT * FROM caution_alerts_export")]
    write_postgres_source(source_url, rows)
    return len(rows)


# --- the stack ------------------------------------------------------------------------------------


@dataclass
class Stack:
    root: Path
    executor: str
    env: dict[str, str]
    metadata_url: str  # plain postgresql:// URL, for this process's queries
    register_url: str
    api_port: int
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)
    worker_homes: dict[str, Path] = field(default_factory=dict)
    logs: dict[str, Path] = field(default_factory=dict)
    killed: set[str] = field(default_factory=set)

    # processes

    def start(self, name: str, args: list[str], *, env: dict[str, str] | None = None) -> None:
        log = self.root / f"{name}.log"
        self.logs[name] = log
        with open(log, "ab") as out:
            self.processes[name] = subprocess.Popen(
                [str(BIN / "airflow"), *args], env=env or self.env, cwd=self.root, stdout=out,
                stderr=subprocess.STDOUT, start_new_session=True,
            )

    def airflow(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(BIN / "airflow"), *args], env=self.env, cwd=self.root, capture_output=True,
                              text=True, timeout=timeout)
        assert done.returncode == 0, f"airflow {' '.join(args)}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        return done

    def kill_worker(self, name: str) -> None:
        """SIGKILL the worker's whole process group: the Celery worker, its pool, every task process."""
        self.killed.add(name)
        os.killpg(self.processes[name].pid, signal.SIGKILL)
        self.processes[name].wait(timeout=30)

    def stop(self) -> None:
        from tests.support import stop_process_group

        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                stop_process_group(process, timeout=30)
            else:  # its group may outlive the leader
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)

    def tail(self, lines: int = 40) -> str:
        """The end of every component's log, for an assertion's message."""
        out = []
        for name, path in self.logs.items():
            text = path.read_text(errors="replace").splitlines()[-lines:] if path.exists() else []
            out.append(f"--- {name}\n" + "\n".join(text))
        return "\n".join(out)

    # the metadata database

    def meta(self, sql: str, *params: Any) -> list[tuple]:
        return query(self.metadata_url, sql, *params)

    def wait(self, what: str, condition: Any, timeout: float, interval: float = 1.0) -> Any:
        deadline = time.monotonic() + timeout
        while True:
            value = condition()
            if value:
                return value
            dead = [n for n, p in self.processes.items() if p.poll() is not None and n not in self.killed]
            if dead or time.monotonic() > deadline:
                raise AssertionError(f"{what}: {'died: ' + ', '.join(dead) if dead else 'timed out'}\n{self.tail()}")
            time.sleep(interval)

    def sync_as_of(self, timeout: float = 180) -> tuple[datetime, date]:
        """The logical date of the sync run the scheduler will create on unpausing, and its day in
        Europe/London (the as-of date of the run), once the dag-processor has parsed every DAG."""
        def parsed():
            rows = self.meta("SELECT dag_id, next_dagrun FROM dag WHERE dag_id = ANY(%s) AND NOT is_stale",
                             list(DAILY))
            found = dict(rows)
            return found if len(found) == len(DAILY) and found["cautionflow_sync"] else None

        moment = self.wait("the DAGs parsed", parsed, timeout)["cautionflow_sync"]
        return moment, moment.astimezone(LONDON).date()

    def run_pipeline(self, timeout: float = 900) -> dict[str, tuple]:
        """Unpause the daily DAGs (the Asset-scheduled ones first, so none misses its event) and wait
        until each has one finished run; {dag_id: (state, start_date, end_date, run_after)}."""
        for dag_id in reversed(DAILY):
            self.airflow("dags", "unpause", dag_id)
        return self.wait_for_runs(timeout)

    def wait_for_runs(self, timeout: float) -> dict[str, tuple]:
        def finished():
            rows = self.meta("SELECT dag_id, state, start_date, end_date, run_after FROM dag_run WHERE dag_id = ANY(%s)",
                             list(DAILY))
            runs = {r[0]: r[1:] for r in rows}
            failed = {d: r[0] for d, r in runs.items() if r[0] == "failed"}
            if failed:
                raise AssertionError(f"failed runs {failed}: {self.task_instances()}\n{self.tail()}")
            done = len(runs) == len(DAILY) and all(r[0] == "success" for r in runs.values())
            return runs if done else None

        return self.wait("the daily pipeline", finished, timeout, interval=2.0)

    def task_instances(self) -> list[dict[str, Any]]:
        columns = ("dag_id", "task_id", "state", "try_number", "hostname", "queued_dttm", "start_date", "end_date")
        rows = self.meta(f"SELECT {', '.join(columns)} FROM task_instance ORDER BY start_date NULLS LAST")
        return [dict(zip(columns, r, strict=True)) for r in rows]

    def task_history(self) -> list[dict[str, Any]]:
        """Earlier tries of every task instance (Airflow's task_instance_history)."""
        columns = ("dag_id", "task_id", "state", "try_number", "hostname")
        rows = self.meta(f"SELECT {', '.join(columns)} FROM task_instance_history ORDER BY try_number")
        return [dict(zip(columns, r, strict=True)) for r in rows]

    # the api-server

    def token(self, user: str = "ops") -> str:
        passwords = json.loads((self.root / "airflow" / "passwords.json").read_text())
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.api_port}/auth/token", method="POST",
            data=json.dumps({"username": user, "password": passwords[user]}).encode(),
            headers={"Content-Type": "application/json"},
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["access_token"]

    def get(self, path: str, token: str | None) -> tuple[int, bytes]:
        """GET `path` from the api-server as the holder of `token` (None: no login); status and body."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        request = urllib.request.Request(f"http://127.0.0.1:{self.api_port}{path}", headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, response.read()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read()


def _free_port() -> int:
    from tests.smtp_server import free_port

    return free_port()


@contextlib.contextmanager
def airflow_stack(
    root: Path, *, executor: str, workers: int = 2, smtp_port: int, alerts: int = 600, homes: int = 20_000,
    recipients: list[dict[str, Any]] | None = None, smtp_concurrency: int = 1, retry_delay_seconds: int = 5,
    heartbeat_timeout_seconds: int = 20, extra_env: dict[str, str] | None = None,
) -> Iterator[tuple[Stack, dict[str, Any]]]:
    """A running deployment in `root` (see the module's doc) on `executor` (`LocalExecutor` or
    `CeleryExecutor` with `workers` workers), its DAGs parsed and still paused, the housing data
    built as of the sync run's date, mail sent over `smtp_concurrency` connections; yields the stack and facts: `as_of`, `source_rows`, `store`."""
    from tests.object_store import moto_s3

    root.mkdir(parents=True, exist_ok=True)
    control = root / "airflow"
    (control / "config").mkdir(parents=True, exist_ok=True)
    (control / "config" / "airflow_local_settings.py").write_text(LOCAL_SETTINGS.format(seconds=retry_delay_seconds))
    if executor == "CeleryExecutor":
        flush_redis()
    with postgres_databases("airflow", "register", "source") as urls, moto_s3(BUCKET) as store:
        metadata = urls["airflow"]
        smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port, "extra": {"security": "none"}}
        api_port = _free_port()
        drop = ("CAUTIONFLOW_CONFIG", "CAUTIONFLOW_REGISTER_URL", "AIRFLOW_CONN_CAUTIONFLOW_REGISTER",
                "AIRFLOW_CONN_HOUSING_DB")
        env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("AIRFLOW__")}
        env.update({
            "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO),  # tests.airflow_stack.component_hostname, in every component
            "AIRFLOW_HOME": str(control),
            "AIRFLOW__CORE__DAGS_FOLDER": str(REPO / "dags"),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": executor,
            "AIRFLOW__CORE__PARALLELISM": "4",
            "AIRFLOW__CORE__HOSTNAME_CALLABLE": "tests.airflow_stack.component_hostname",
            "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"http://127.0.0.1:{api_port}/execution/",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata.replace("postgresql:", "postgresql+psycopg2:", 1),
            # Airflow would derive postgresql+asyncpg (not installed) for its async engine: psycopg 3 has one.
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": metadata.replace("postgresql:", "postgresql+psycopg:", 1),
            "AIRFLOW__CELERY__BROKER_URL": REDIS_URL,
            "AIRFLOW__CELERY__RESULT_BACKEND": "db+" + metadata.replace("postgresql:", "postgresql+psycopg2:", 1),
            "AIRFLOW__CELERY__WORKER_CONCURRENCY": "2",
            "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
            "AIRFLOW__API__SECRET_KEY": secrets.token_hex(32),
            "AIRFLOW__CORE__AUTH_MANAGER":
                "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops:viewer",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
            "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(control / "passwords.json"),
            # A worker that vanishes is noticed in seconds, not the default 5 minutes.
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": str(heartbeat_timeout_seconds),
            "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "5",
            "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "10",
            # A task a killed Celery worker had taken but not yet started (its supervisor starting, or
            # the message prefetched) stays queued, with no heartbeat to miss: the scheduler requeues
            # it after this, not the default 10 minutes (the test's own wait). Also the queued
            # workload's token lifetime: longer than any task here waits in the queue.
            **({"AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT": "90",
                "AIRFLOW__SCHEDULER__TASK_QUEUED_TIMEOUT_CHECK_INTERVAL": "10"}
               if executor == "CeleryExecutor" else {}),
            "AIRFLOW_CONN_CAUTIONFLOW_SMTP": json.dumps(smtp),
            **store.environment(STORAGE_CONN),
            **(extra_env or {}),
        })
        stack = Stack(root, executor, env, metadata, urls["register"], api_port)
        try:
            migrated = subprocess.run([str(BIN / "airflow"), "db", "migrate"], env=env, capture_output=True,
                                      text=True, timeout=900)
            assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
            stack.start("dag-processor", ["dag-processor"])
            moment, as_of = stack.sync_as_of()
            source_rows = build_source(root, urls["source"], as_of, alerts=alerts, homes=homes)

            def home(name: str) -> dict[str, str]:
                """A component's own CAUTIONFLOW_HOME with its own copy of the config file."""
                folder = root / name
                folder.mkdir(exist_ok=True)
                config = folder / "cautionflow.yaml"
                config.write_text(yaml.safe_dump(config_data(
                    urls["register"], urls["source"], smtp_port, recipients=recipients,
                    max_concurrency=smtp_concurrency)))
                return {"CAUTIONFLOW_HOME": str(folder), "AIRFLOW_VAR_CAUTIONFLOW_CONFIG": str(config),
                        "CAUTIONFLOW_CONFIG": str(config)}

            stack.env.update(home("control"))
            stack.start("scheduler", ["scheduler"])
            stack.start("api-server", ["api-server", "--host", "127.0.0.1", "--port", str(api_port)])
            if executor == "CeleryExecutor":
                for n in range(1, workers + 1):
                    name = f"worker{n}"
                    airflow_home = root / f"{name}-airflow"
                    (airflow_home / "config").mkdir(parents=True, exist_ok=True)
                    (airflow_home / "config" / "airflow_local_settings.py").write_text(
                        LOCAL_SETTINGS.format(seconds=retry_delay_seconds))
                    worker_env = {**stack.env, **home(name), "AIRFLOW_HOME": str(airflow_home),
                                  HOSTNAME_VARIABLE: name}
                    stack.worker_homes[name] = airflow_home
                    stack.start(name, ["celery", "worker", "--concurrency", "2", "--celery-hostname",
                                       f"{name}@%h", "--skip-serve-logs"], env=worker_env)
            stack.wait("the api-server", lambda: _answers(api_port), 180)
            yield stack, {"as_of": as_of, "logical_date": moment, "source_rows": source_rows, "store": store}
        finally:
            stack.stop()
            if executor == "CeleryExecutor":
                flush_redis()


def _answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v2/monitor/health", timeout=5):
            return True
    except OSError:
        return False
