"""`make ui` listens on the loopback interface unless UI_HOST says otherwise (issue 12).

The register page serves personal data, so the default must not expose it to the network. Read
from the real Makefile with `make -n` (a dry run: recipes are printed, not run, so the `@test -f`
guard and the api-server itself never start).
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from tests.support import REPO

pytestmark = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")


def dry_run(*args: str, **env: str) -> list[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("UI_HOST", "UI_PORT", "CAUTIONFLOW_DB", "MAKEFLAGS")}
    done = subprocess.run(
        ["make", "--no-print-directory", "-n", "ui", *args], cwd=REPO, env={**clean, **env},
        capture_output=True, text=True, timeout=60, check=True,
    )
    return done.stdout.splitlines()


def server_line(lines: list[str]) -> str:
    [line] = [x for x in lines if "airflow api-server" in x]
    return line


def url_line(lines: list[str]) -> str:
    [line] = [x for x in lines if "Airflow UI: http://" in x]
    return line


def test_binds_loopback_by_default():
    lines = dry_run()
    assert server_line(lines).split("api-server", 1)[1].split() == ["--host", "127.0.0.1", "--port", "8080"]
    assert "http://127.0.0.1:8080/" in url_line(lines)
    assert not any("reachable from other machines" in x for x in lines)


@pytest.mark.parametrize("how", ["argument", "environment"])
def test_ui_host_overrides_it_and_says_so(how):
    lines = dry_run("UI_HOST=0.0.0.0", "UI_PORT=8181") if how == "argument" else dry_run(UI_HOST="0.0.0.0", UI_PORT="8181")
    assert server_line(lines).split("api-server", 1)[1].split() == ["--host", "0.0.0.0", "--port", "8181"]
    # 0.0.0.0 is where it listens, not an address to browse to.
    assert "http://127.0.0.1:8181/" in url_line(lines)
    assert any("reachable from other machines" in x for x in lines)


def test_a_named_address_is_the_url():
    lines = dry_run("UI_HOST=192.0.2.10")
    assert "--host 192.0.2.10 " in server_line(lines)
    assert "http://192.0.2.10:8080/" in url_line(lines)
