"""Fixtures for the register page's tests: a real Airflow (SQLite metadata) whose cautionflow_sync
ran on the demo data through `airflow dags test`, then the deadlines, letters and digests steps on
the same register; and the real `airflow api-server` serving it, with this repository's plugins and
a SimpleAuthManager user whose password the test knows. Synthetic data only."""

from __future__ import annotations

import contextlib
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.smtp_server import free_port, serving
from tests.support import AIRFLOW_BIN, AS_OF, demo_config, migrated_airflow, stop_process_group

REFUSING = "rota@acme.example"  # this contractor's mailbox refuses mail, so a failure shows
JWT_SECRET = "cautionflow-test-jwt-secret-" + "x" * 40


@dataclass(frozen=True)
class AirflowDemo:
    home: Path  # the deployment folder (CAUTIONFLOW_HOME) and AIRFLOW_HOME's parent
    config: Path
    register: Path
    env: dict[str, str]  # a migrated Airflow's environment, with the deployment's settings


@pytest.fixture(scope="session")
def airflow_demo(tmp_path_factory: pytest.TempPathFactory) -> AirflowDemo:
    from cautionflow.config import load_config
    from cautionflow.demo.housing import build_housing_database
    from cautionflow.steps import run_deadlines, run_digests, run_letters
    from tests.deployment import FAST

    folder = tmp_path_factory.mktemp("airflow_demo")
    build_housing_database(folder / "housing.db", homes=3000, alerts=400, as_of=AS_OF)
    with serving() as server:
        config = demo_config(folder, register_url="sqlite:///register.db")
        config["smtp"]["port"] = server.port
        path = folder / "cautionflow.yaml"
        path.write_text(yaml.safe_dump(config))
        env = migrated_airflow(folder / "airflow", without=("AIRFLOW_CONN_CAUTIONFLOW_REGISTER",))
        env.update({"CAUTIONFLOW_HOME": str(folder), "AIRFLOW_VAR_CAUTIONFLOW_CONFIG": str(path)})
        loaded = load_config(path, home=folder)
        # The sync through Airflow, so that Airflow's metadata holds a cautionflow_sync run.
        synced = subprocess.run(
            [str(AIRFLOW_BIN / "airflow"), "dags", "test", "cautionflow_sync", AS_OF.isoformat()],
            env=env, cwd=folder, capture_output=True, text=True, timeout=600,
        )
        assert synced.returncode == 0, (synced.stdout + synced.stderr)[-5000:]
        server.handler.refuse[REFUSING] = "550 5.1.1 no such mailbox"
        for step in (run_deadlines, run_letters):
            step(loaded, as_of=AS_OF, run_id=f"test/{step.__name__}")
        run_digests(loaded, as_of=AS_OF, run_id="test/digests", retry=FAST)
    return AirflowDemo(folder, path, folder / "register.db", env)


@contextlib.contextmanager
def airflow_metadata(env: dict[str, str]) -> Iterator[None]:
    """Point this process's Airflow ORM at `env`'s metadata database for a while."""
    from airflow import settings

    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
    settings.configure_vars()
    settings.reconfigure_orm()
    try:
        yield
    finally:
        mp.undo()
        settings.configure_vars()
        settings.reconfigure_orm()


@dataclass(frozen=True)
class ApiServer:
    url: str
    username: str
    password: str
    log: Path
    demo: AirflowDemo

    def token(self) -> str:
        request = urllib.request.Request(
            f"{self.url}/auth/token", data=json.dumps({"username": self.username, "password": self.password}).encode(),
            headers={"Content-Type": "application/json"}, method="POST",
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())["access_token"]


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args, **kwargs):  # noqa: ANN002, ANN003 - urllib's signature
        return None


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], str]:
    """GET without following redirects: (status, headers, body)."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, headers=headers or {}), timeout=60) as response:
            return response.status, dict(response.headers), response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read().decode(errors="replace")


@pytest.fixture(scope="session")
def api_server(airflow_demo: AirflowDemo) -> Iterator[ApiServer]:
    """The real `airflow api-server` on a free port, SimpleAuthManager with one viewer whose password
    is in the passwords file the manager reads (it generates one only for users missing there)."""
    home = Path(airflow_demo.env["AIRFLOW_HOME"])
    username, password = "ops", secrets.token_urlsafe(12)
    passwords = home / "simple_auth_manager_passwords.json"
    passwords.write_text(json.dumps({username: password}))
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {
        **airflow_demo.env,
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": f"{username}:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "False",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": JWT_SECRET,
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "CAUTIONFLOW_CONFIG": str(airflow_demo.config),
    }
    log = home / "api-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(AIRFLOW_BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port), "--workers", "1"],
            env=env, cwd=airflow_demo.home, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 240
        while True:
            if process.poll() is not None:
                pytest.fail(f"the api-server exited with {process.returncode}:\n{log.read_text()[-4000:]}")
            try:
                if http_get(f"{url}/api/v2/monitor/health")[0] == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the api-server did not start in 240 s:\n{log.read_text()[-4000:]}")
            time.sleep(1)
        yield ApiServer(url, username, password, log, airflow_demo)
    finally:
        stop_process_group(process)
