"""`cautionflow run sync` as a cron user runs it: a real process, real databases."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import alert_row, write_sqlite_source

REPO = Path(__file__).resolve().parents[2]


def cautionflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "CAUTIONFLOW_HOME": str(cwd)}
    return subprocess.run(
        [sys.executable, "-m", "cautionflow", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


@pytest.fixture
def deployment(tmp_path: Path) -> Path:
    (tmp_path / "var").mkdir()
    write_sqlite_source(
        tmp_path / "var" / "housing.db",
        [alert_row(alert_id="A1"), alert_row(alert_id="A2", alert_code="XXZ"), alert_row(alert_id=None)],
    )
    config = {
        "organisation": "Example Homes",
        "policy": "teign",
        "register_url": "sqlite:///var/register.db",
        "source": {"url": "sqlite:///var/housing.db"},
    }
    path = tmp_path / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_run_sync_prints_its_counts_as_json_on_the_last_line(deployment):
    result = cautionflow("run", "sync", "--config", str(deployment), "--as-of", "2026-11-23", cwd=deployment.parent)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert {k: summary[k] for k in ("read", "inserted", "updated", "unchanged", "ended", "quarantined", "flagged")} == {
        "read": 3, "inserted": 2, "updated": 0, "unchanged": 0, "ended": 0, "quarantined": 1, "flagged": 1,
    }
    assert summary["as_of"] == "2026-11-23"
    assert (deployment.parent / "var" / "register.db").is_file()

    again = cautionflow("run", "sync", "--config", str(deployment), "--as-of", "2026-11-23", cwd=deployment.parent)
    assert json.loads(again.stdout.strip().splitlines()[-1])["unchanged"] == 2


def test_run_all_runs_the_pipeline(deployment):
    result = cautionflow("run", "all", "--config", str(deployment), "--as-of", "2026-11-23", cwd=deployment.parent)
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["step"] == "all" and summary["sync"]["inserted"] == 2


def test_status_summarises_the_register(deployment):
    cautionflow("run", "sync", "--config", str(deployment), "--as-of", "2026-11-23", cwd=deployment.parent)
    result = cautionflow("status", "--config", str(deployment), cwd=deployment.parent)
    assert result.returncode == 0, result.stderr
    status = json.loads(result.stdout.strip().splitlines()[-1])
    assert status["active"] == 2 and status["active_flagged"] == 1
    assert status["quarantine_open"] == {"missing alert_id": 1}
    assert "quarantined rows awaiting a fix" in result.stdout


def _one_line_error(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    return lines[0]


def test_a_missing_config_is_one_line_on_stderr(tmp_path):
    line = _one_line_error(cautionflow("run", "sync", "--config", "nope.yaml", cwd=tmp_path))
    assert line.startswith("cautionflow: error: cannot read config")


def test_an_invalid_config_names_the_field(deployment):
    deployment.write_text(deployment.read_text().replace("policy: teign\n", "policy: teign\ncolour: red\n"))
    line = _one_line_error(cautionflow("run", "sync", "--config", str(deployment), cwd=deployment.parent))
    assert "colour: Extra inputs are not permitted" in line


def test_a_missing_housing_database_is_one_line(deployment):
    (deployment.parent / "var" / "housing.db").unlink()
    line = _one_line_error(cautionflow("run", "sync", "--config", str(deployment), cwd=deployment.parent))
    assert "housing database" in line and "not found" in line


def test_an_unreachable_register_is_one_line_without_the_password(deployment):
    text = deployment.read_text().replace(
        "sqlite:///var/register.db", "postgresql://cf:s3cret-pw@127.0.0.1:1/register"
    )
    deployment.write_text(text)
    line = _one_line_error(cautionflow("run", "sync", "--config", str(deployment), cwd=deployment.parent))
    assert line.startswith("cautionflow: error: register")
    assert "s3cret-pw" not in line


def test_a_bad_as_of_date_is_refused(deployment):
    result = cautionflow("run", "sync", "--config", str(deployment), "--as-of", "23/11/2026", cwd=deployment.parent)
    assert result.returncode == 2 and "expected a date as YYYY-MM-DD" in result.stderr
