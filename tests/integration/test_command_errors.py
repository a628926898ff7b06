"""Every command error is one line and exit 2, never a traceback (issue 18, "Config checked at load
for every command" and finding 7): each command is run, as a real process, on each bad input the
probe found, and its stderr read back."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import AS_OF, alert_row, write_sqlite_source

# Every command that reads the config, with the arguments it needs besides --config.
CONFIG_COMMANDS = {
    "run sync": ["run", "sync", "--as-of", AS_OF.isoformat()],
    "run deadlines": ["run", "deadlines", "--as-of", AS_OF.isoformat()],
    "run digests": ["run", "digests", "--as-of", AS_OF.isoformat()],
    "run all": ["run", "all", "--as-of", AS_OF.isoformat()],
    "status": ["status"],
    "governance": ["governance", "--as-of", AS_OF.isoformat()],
    "dsar": ["dsar", "--person-ref", "P1", "--as-of", AS_OF.isoformat()],
    "retention": ["retention", "--dry-run", "--as-of", AS_OF.isoformat()],
    "letters list": ["letters", "list"],
    "letters flags": ["letters", "flags"],
    "digests resend-failed": ["digests", "resend-failed", "--dry-run"],
    "mail resend-failed": ["mail", "resend-failed", "--dry-run"],
}
# Config mistakes found at load, whatever the command (the probe: an unknown policy passed `run sync`
# and failed only in `run all`; a missing templates_dir and an unreal time zone were ignored).
BAD_CONFIGS = {
    "unknown policy": ({"policy": "acme"}, "policy: unknown policy profile 'acme'"),
    "missing profile file": ({"policy": "policies/acme.yaml"}, "policy: profile file not found"),
    "templates_dir missing": ({"templates_dir": "/nonexistent"}, "templates_dir: '/nonexistent' is not a folder"),
    "unreal time zone": ({"timezone": "Mars/Olympus"}, "timezone: Value error, 'Mars/Olympus' is not a time zone"),
}


def cautionflow(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("CAUTIONFLOW_CONFIG", "CAUTIONFLOW_DEBUG")}
    return subprocess.run([sys.executable, "-m", "cautionflow", *args], cwd=cwd, capture_output=True, text=True,
                          env={**env, "CAUTIONFLOW_HOME": str(cwd)}, timeout=120)


def one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    assert result.returncode == 2, (result.returncode, result.stdout[-2000:], result.stderr[-2000:])
    errors = [line for line in result.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and expected in errors[0], result.stderr[-2000:]
    assert errors[0].startswith(("cautionflow: error: ", "cautionflow run: error: ", "cautionflow ")), errors[0]


@pytest.fixture
def home(tmp_path: Path) -> Path:
    write_sqlite_source(tmp_path / "housing.db", [alert_row(alert_id="A1"), alert_row(alert_id="A2")])
    return tmp_path


def config(home: Path, **changes: object) -> Path:
    settings = {"organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///register.db",
                "source": {"url": "sqlite:///housing.db"}, "output_dir": "reports", **changes}
    path = home / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(settings))
    return path


@pytest.mark.parametrize("mistake", sorted(BAD_CONFIGS))
@pytest.mark.parametrize("command", sorted(CONFIG_COMMANDS))
def test_a_config_mistake_is_one_line_for_every_command(home, command, mistake):
    changes, expected = BAD_CONFIGS[mistake]
    path = config(home, **changes)

    result = cautionflow(*CONFIG_COMMANDS[command], "--config", str(path), cwd=home)

    one_line_error(result, expected)
    assert not (home / "register.db").exists()  # refused before anything was opened


@pytest.mark.parametrize("command", sorted(CONFIG_COMMANDS))
def test_a_config_nested_100000_deep_is_one_line(home, command):
    path = home / "cautionflow.yaml"
    path.write_text("[" * 100_000 + "]" * 100_000)

    one_line_error(cautionflow(*CONFIG_COMMANDS[command], "--config", str(path), cwd=home), "nested too deeply")


@pytest.mark.parametrize("command", [["run", "deadlines"], ["run", "sync"], ["governance"], ["retention"],
                                     ["dsar", "--person-ref", "P1"]])
def test_an_as_of_in_the_year_9999_is_one_line(home, command):
    result = cautionflow(*command, "--config", str(config(home)), "--as-of", "9999-12-31", cwd=home)

    one_line_error(result, "9999-12-31 is out of range (1900 to 2999)")


def test_compute_deadlines_refuses_the_year_9999_in_one_line(home):
    (home / "alerts.csv").write_text("alert_id,alert_code,effective_from\nA1,VIP,2026-01-05\n")
    result = cautionflow("compute-deadlines", "--policy", "dover", "--input", "alerts.csv", "--as-of", "9999-12-31",
                         cwd=home)

    one_line_error(result, "9999-12-31 is out of range")


def test_an_output_dir_that_cannot_be_a_folder_is_one_line(home):
    (home / "blocked").write_text("a file where the reports folder should be")
    path = config(home, output_dir="blocked/reports")
    assert cautionflow("run", "sync", "--config", str(path), "--as-of", AS_OF.isoformat(), cwd=home).returncode == 0

    result = cautionflow("run", "deadlines", "--config", str(path), "--as-of", AS_OF.isoformat(), cwd=home)

    one_line_error(result, "blocked")


def test_dsar_never_overwrites_an_export_without_force(home):
    path = config(home)
    write_sqlite_source(home / "housing.db", [alert_row(alert_id="A1", person_ref="P1")])
    assert cautionflow("run", "sync", "--config", str(path), "--as-of", AS_OF.isoformat(), cwd=home).returncode == 0
    (home / "export.json").write_text("an export already sent")

    refused = cautionflow("dsar", "--config", str(path), "--person-ref", "P1", "--output", "export.json", cwd=home)

    one_line_error(refused, "export.json exists; choose another --output or add --force to replace it")
    assert (home / "export.json").read_text() == "an export already sent"
    forced = cautionflow("dsar", "--config", str(path), "--person-ref", "P1", "--output", "export.json", "--force",
                         cwd=home)
    assert forced.returncode == 0, forced.stderr
    assert json.loads((home / "export.json").read_text())["person_ref"] == "P1"


def test_retention_refuses_an_as_of_after_tomorrow_without_force(home):
    path = config(home)
    assert cautionflow("run", "sync", "--config", str(path), "--as-of", AS_OF.isoformat(), cwd=home).returncode == 0

    refused = cautionflow("retention", "--config", str(path), "--as-of", "2099-01-01", cwd=home)

    one_line_error(refused, "--as-of 2099-01-01 is after tomorrow")
    dry = cautionflow("retention", "--config", str(path), "--as-of", "2099-01-01", "--dry-run", cwd=home)
    assert dry.returncode == 0, dry.stderr
    forced = cautionflow("retention", "--config", str(path), "--as-of", "2099-01-01", "--force", cwd=home)
    assert forced.returncode == 0, forced.stderr
