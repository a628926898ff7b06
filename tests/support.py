"""Test helpers: synthetic source rows and databases (synthetic data only)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

from cautionflow.domain.contract import SOURCE_COLUMNS

REPO = Path(__file__).resolve().parents[1]
# The day the tests run the register as, unless a test is about another day (and then names it for
# why, e.g. SATURDAY): a Monday, so the officers' weekly reminder is due and the Friday digest is not.
AS_OF = date(2026, 11, 23)
PG_ADMIN_URL = os.environ.get("CAUTIONFLOW_TEST_PG", "postgresql://postgres@127.0.0.1:5432/postgres")


def alert_row(**overrides: Any) -> dict[str, Any]:
    """One well-formed source row; override what the test is about."""
    row: dict[str, Any] = {c: None for c in SOURCE_COLUMNS}
    row.update(
        alert_id="CX-0001",
        alert_code="VIP",
        subject_type="person",
        person_ref="P0001",
        person_name="Alex Example",
        tenancy_ref="T0001",
        asset_ref="H0001",
        address="1 Larkspur Close, Eastwick",
        postcode="EW1 2AB",
        area="NORTH",
        effective_from="2026-03-02",
        status="active",
        notify_resident=1,
        source="staff",
        note="Threatened an operative on 1 March 2026.",
        # What the resident may be told: without it every decision letter would be held.
        resident_reason="On 1 March 2026 one of our operatives was threatened during a visit to your home.",
        preferred_channel="post",
        language="en",
        large_print=0,
        updated_at="2026-03-02T09:15:00",
    )
    row.update(overrides)
    return row


def write_sqlite_source(path: os.PathLike[str] | str, rows: list[dict[str, Any]]) -> str:
    """(Re)write a SQLite housing database whose caution_alerts_export holds `rows`; returns its URL."""
    import sqlite3

    conn = sqlite3.connect(path)
    with conn:
        conn.execute("DROP TABLE IF EXISTS caution_alerts_export")
        conn.execute(f"CREATE TABLE caution_alerts_export ({', '.join(SOURCE_COLUMNS)})")
        conn.executemany(
            f"INSERT INTO caution_alerts_export VALUES ({', '.join('?' * len(SOURCE_COLUMNS))})",
            [tuple(r.get(c) for c in SOURCE_COLUMNS) for r in rows],
        )
    conn.close()
    return f"sqlite:///{path}"


def write_postgres_source(url: str, rows: list[dict[str, Any]]) -> str:
    """The same on PostgreSQL, with typed date columns as a real housing system would have."""
    import psycopg

    from cautionflow.adapters.database import normalise_url
    from cautionflow.domain.contract import DATE_COLUMNS, FLAG_COLUMNS

    def is_date(value: Any) -> bool:
        try:
            return value is None or bool(date.fromisoformat(str(value)))
        except ValueError:
            return False

    def sql_type(column: str) -> str:
        if column in DATE_COLUMNS:
            # Typed like a real system's, except where a test needs a bad value (legacy text dates).
            return "date" if all(is_date(r.get(column)) for r in rows) else "text"
        if column in FLAG_COLUMNS:
            return "integer"
        return "timestamp" if column == "updated_at" else "text"

    dsn = normalise_url(url).replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS caution_alerts_export")
        conn.execute(
            "CREATE TABLE caution_alerts_export ("
            + ", ".join(f"{c} {sql_type(c)}" for c in SOURCE_COLUMNS)
            + ")"
        )
        with conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO caution_alerts_export VALUES ({', '.join(['%s'] * len(SOURCE_COLUMNS))})",
                [tuple(r.get(c) for c in SOURCE_COLUMNS) for r in rows],
            )
    return url


def postgres_available() -> bool:
    try:
        import psycopg

        with psycopg.connect(PG_ADMIN_URL, connect_timeout=3):
            return True
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


@contextlib.contextmanager
def temporary_postgres_database(prefix: str = "cautionflow_test", *, template: str | None = None) -> Iterator[str]:
    """A fresh database on the local server (a copy of the database `template` names, when given),
    dropped afterwards; yields its URL."""
    import psycopg

    name = f"{prefix}_{uuid.uuid4().hex[:10]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN_URL, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


AIRFLOW_BIN = Path(sys.executable).parent


def migrated_airflow(
    home: Path,
    *,
    dags_folder: Path = REPO / "dags",
    metadata_url: str | None = None,
    async_metadata_url: str | None = None,
    extra: dict[str, str] | None = None,
    without: tuple[str, ...] = (),
) -> dict[str, str]:
    """The environment of a real Airflow (LocalExecutor, this repo's plugins) whose metadata
    database (`home/airflow.db` unless `metadata_url`) has been migrated; fails the test if not."""
    env = {k: v for k, v in os.environ.items() if k not in without}
    env.update(
        {
            "PATH": f"{AIRFLOW_BIN}:{os.environ.get('PATH', '')}",
            "AIRFLOW_HOME": str(home),
            "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
            "AIRFLOW__CORE__PLUGINS_FOLDER": str(REPO / "plugins"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "AIRFLOW__CORE__EXECUTOR": "LocalExecutor",
            "AIRFLOW__CORE__PARALLELISM": "2",
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": metadata_url or f"sqlite:///{home}/airflow.db",
            **({"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": async_metadata_url} if async_metadata_url else {}),
            **(extra or {}),
        }
    )
    migrated = subprocess.run(
        [str(AIRFLOW_BIN / "airflow"), "db", "migrate"], env=env, capture_output=True, text=True, timeout=900
    )
    assert migrated.returncode == 0, migrated.stdout[-3000:] + migrated.stderr[-3000:]
    return env


def demo_config(folder: Path, **overrides: Any) -> dict[str, Any]:
    """The demo's config for a deployment in `folder` (whose housing.db the caller builds): the
    repository's paths made absolute, outputs under the folder; `overrides` replace whole keys."""
    import yaml

    config = yaml.safe_load((REPO / "include/config/cautionflow.demo.yaml").read_text())
    config.update(
        source={"url": f"sqlite:///{folder / 'housing.db'}", "query": str(REPO / "include/sql/source_alerts.sql")},
        output_dir="reports",
        letters={**config["letters"], "output_dir": "letters"},  # the demo's contact block kept
    )
    if config.get("equality"):
        config["equality"] = {**config["equality"], "query": str(REPO / config["equality"]["query"])}
    config.update(overrides)
    return config


def processes_marked(name: str, value: str, *, grace: float = 0.0) -> list[tuple[int, str]]:
    """(pid, command line) of every process but this one whose environment has `name=value`, waiting
    up to `grace` seconds for them to go. Read from /proc, so orphans re-parented to init are found."""
    import time

    needle = f"{name}={value}".encode()
    deadline = time.monotonic() + grace
    while True:
        found = []
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit() or int(entry.name) == os.getpid():
                continue
            try:
                if needle not in (entry / "environ").read_bytes().split(b"\0"):
                    continue
                if (entry / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                    continue  # a zombie has exited; only its parent's wait is missing
                command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
            except OSError:  # gone meanwhile, or not ours to read
                continue
            found.append((int(entry.name), command[:200]))
        if not found or time.monotonic() >= deadline:
            return found
        time.sleep(0.5)


def stop_processes(pids: list[int]) -> None:
    """SIGKILL each of `pids` that is still there."""
    import signal

    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGKILL)


def stop_process_group(process: Any, *, timeout: float = 30.0) -> None:
    """Stop a child started with `start_new_session=True` and everything it started: SIGTERM to its
    whole process group, wait until the group is empty (not just the leader: a server's workers can
    outlive it), then SIGKILL whatever is left."""
    import signal
    import time

    group = process.pid
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=timeout)
    while time.monotonic() < deadline:
        try:
            os.killpg(group, 0)  # anyone left in the group?
        except ProcessLookupError:
            return
        time.sleep(0.2)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)
    process.wait(timeout=timeout)


def environment(cwd: Path, **extra: str) -> dict[str, str]:
    """This process's environment without a CAUTIONFLOW_CONFIG of its own, so each test says what it means."""
    env = {k: v for k, v in os.environ.items() if k != "CAUTIONFLOW_CONFIG"}
    return {**env, "CAUTIONFLOW_HOME": str(cwd), **extra}


def cautionflow(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    """`python -m cautionflow ARGS` as a cron user runs it, in `cwd` (its CAUTIONFLOW_HOME)."""
    return subprocess.run(
        [sys.executable, "-m", "cautionflow", *args], cwd=cwd, env=environment(cwd, **(env or {})),
        capture_output=True, text=True, timeout=120,
    )


def pdf_text(source: Any) -> str:
    """The text of a PDF, whitespace collapsed (extraction splits a line where the font changes)."""
    import re

    from pypdf import PdfReader

    text = "\n".join(page.extract_text() for page in PdfReader(source).pages)
    return re.sub(r"\s+([.,:)])", r"\1", re.sub(r"\s+", " ", text))


def placed_text(pdf: bytes) -> list[tuple[str, float, float, float]]:
    """(text, x mm from the left, baseline mm from the top, font size pt) of page 1's text."""
    import io

    from pypdf import PdfReader

    placed: list[tuple[str, float, float, float]] = []

    def visit(text, _cm, tm, _font, size):
        if text.strip():
            placed.append((text.strip(), tm[4] * 25.4 / 72, 297 - tm[5] * 25.4 / 72, size))

    PdfReader(io.BytesIO(pdf)).pages[0].extract_text(visitor_text=visit)
    return placed


# --- a fake monotonic clock, for rate limits ---------------------------------------------------


class FakeTime:
    """A monotonic clock that moves only when someone sleeps on it."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += max(0.0, seconds)
        await asyncio.sleep(0)  # let the other connections run, as a real sleep would


def most_in_any_window(starts: list[float], window: float = 60.0) -> int:
    starts = sorted(starts)
    return max((sum(1 for u in starts if t <= u < t + window) for t in starts), default=0)


# --- Airflow's own login, in this process ---------------------------------------------------------


@contextlib.contextmanager
def simple_auth_manager(home: Path, jwt_secret: str, users: str = "ops:viewer") -> Iterator[Any]:
    """Airflow's SimpleAuthManager initialised in this process as the api-server initialises it,
    over a freshly migrated metadata database in `home` (JWT revocation is checked there), for tests
    that drive a plugin's app in-process; sign a user's JWT with its `generate_jwt`."""
    import pytest
    from airflow import settings
    from airflow.api_fastapi.app import init_auth_manager, purge_cached_app

    env = migrated_airflow(home)
    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__CORE__AUTH_MANAGER",
              "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", users)
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(home / "passwords.json"))
    mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", jwt_secret)
    mp.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    settings.configure_vars()
    settings.reconfigure_orm()
    purge_cached_app()
    try:
        yield init_auth_manager()
    finally:
        purge_cached_app()
        mp.undo()
        settings.configure_vars()
        settings.reconfigure_orm()


# --- headless Chromium --------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"


@contextlib.contextmanager
def headless_chromium(*arguments: str, page_load_timeout: float = 120) -> Iterator[Any]:
    """Debian's headless Chromium driven by selenium, with `arguments` besides the usual ones; the
    test is skipped, saying why, when Chromium, its driver or selenium is absent (`.ci/run`
    installs them). The driver is given, so selenium never downloads one."""
    import pytest

    if not Path(CHROMIUM).exists() or not Path(CHROMEDRIVER).exists():
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver; .ci/run does)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (it is a dev dependency: pip install -e '.[dev]')")
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--lang=en-GB",
                     *arguments):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(page_load_timeout)
    try:
        yield driver
    finally:
        driver.quit()


def wait_for(driver: Any, condition: Any, timeout: float = 60) -> Any:
    """Wait until a selenium expected condition holds; its value."""
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(condition)


def dags_test(
    dag_id: str, env: dict[str, str], config: Path, smtp_port: int, *, timeout: float = 600
) -> subprocess.CompletedProcess[str]:
    """`airflow dags test DAG_ID AS_OF` with the config in `config` (its folder the project home) and
    the SMTP Connection pointing at a plain-text test server on `smtp_port`."""
    import json

    run_env = {
        **env,
        "CAUTIONFLOW_HOME": str(config.parent),
        "AIRFLOW_VAR_CAUTIONFLOW_CONFIG": str(config),
        "AIRFLOW_CONN_CAUTIONFLOW_SMTP": json.dumps(
            {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port, "extra": {"security": "none"}}
        ),
    }
    return subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", dag_id, AS_OF.isoformat()],
        env=run_env, cwd=config.parent, capture_output=True, text=True, timeout=timeout,
    )
