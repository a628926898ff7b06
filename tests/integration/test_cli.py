"""`cautionflow run sync` as a cron user runs it: a real process, real databases."""

from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import alert_row, cautionflow, environment, write_sqlite_source


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


# --- progress and command-line habits (issue 12) ----------------------------------------------------


def test_progress_goes_to_stderr_as_plain_lines_and_stdout_is_exactly_the_json(deployment):
    result = cautionflow("run", "sync", "--config", str(deployment), "--as-of", "2026-11-23", cwd=deployment.parent)
    assert result.returncode == 0, result.stderr
    assert len(result.stdout.splitlines()) == 1
    assert json.loads(result.stdout)["read"] == 3
    progress = result.stderr.splitlines()
    for stage in ("read 3 rows", "validated 3 rows", "written 2 rows"):
        assert any(line.startswith(f"cautionflow: sync: {stage} in ") and "rows/s" in line for line in progress), (
            stage, result.stderr,
        )
    assert progress[-1].startswith("cautionflow: sync: done in ")
    assert "\r" not in result.stderr and "%|" not in result.stderr  # no bar when stderr is not a terminal


def test_on_a_terminal_stderr_shows_bars_instead_of_lines(deployment):
    import fcntl
    import pty
    import struct
    import termios

    master, terminal = pty.openpty()
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    process = subprocess.Popen(
        [sys.executable, "-m", "cautionflow", "run", "sync", "--config", str(deployment), "--as-of", "2026-11-23"],
        cwd=deployment.parent, env=environment(deployment.parent), stdout=subprocess.PIPE, stderr=terminal,
    )
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(master, 65536)
        except OSError:  # EIO: the process closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    stdout, _ = process.communicate(timeout=120)
    os.close(master)
    text = shown.decode()
    assert process.returncode == 0, text
    assert json.loads(stdout)["inserted"] == 2
    assert "sync: validated: 100%" in text and "sync: read: 100%" in text
    assert "cautionflow: sync: validated" not in text  # the bar says it: no line as well
    assert "cautionflow: sync: indexes built in " in text  # a stage only timed is still a line


def test_config_falls_back_to_the_environment_variable(deployment):
    result = cautionflow("run", "sync", "--as-of", "2026-11-23", cwd=deployment.parent,
                         env={"CAUTIONFLOW_CONFIG": str(deployment)})
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout.splitlines()[-1])["inserted"] == 2
    status = cautionflow("status", cwd=deployment.parent, env={"CAUTIONFLOW_CONFIG": str(deployment)})
    assert status.returncode == 0 and json.loads(status.stdout.splitlines()[-1])["active"] == 2


@pytest.mark.parametrize("args", [("run", "sync"), ("status",), ("letters", "list"), ("digests", "resend-failed"),
                                  ("mail", "resend-failed")])
def test_without_config_or_variable_the_error_is_one_line(tmp_path, args):
    result = cautionflow(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == "cautionflow: error: --config FILE is required (or set CAUTIONFLOW_CONFIG)\n"


def test_version(tmp_path):
    from importlib.metadata import version

    result = cautionflow("--version", cwd=tmp_path)
    assert result.returncode == 0 and result.stdout == f"cautionflow {version('cautionflow')}\n"


@pytest.mark.parametrize("reader", ["head -1", "head -n 0"])  # head -n 0 closes the pipe before any write
def test_a_closed_pipe_ends_quietly(deployment, reader):
    cautionflow("run", "sync", "--config", str(deployment), "--as-of", "2026-11-23", cwd=deployment.parent)
    command = f"{shlex.quote(sys.executable)} -m cautionflow status --config {shlex.quote(str(deployment))} | {reader}"
    result = subprocess.run(command, shell=True, cwd=deployment.parent, env=environment(deployment.parent),
                            capture_output=True, text=True, timeout=120)
    assert "Traceback" not in result.stderr and "BrokenPipe" not in result.stderr, result.stderr
    assert result.stderr == ""
    assert result.stdout == ("" if reader == "head -n 0" else "Caution alert register: Example Homes\n")


def _commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()):
    """Every command and sub-command's parser, with the words that name it."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield (*path, name), sub
                yield from _commands(sub, (*path, name))


def test_every_commands_help_ends_with_one_example():
    from cautionflow.cli import build_parser

    commands = dict(_commands(build_parser()))
    assert {"run", "status", "letters", "letters list", "digests resend-failed", "mail resend-failed",
            "compute-deadlines"} <= {
        " ".join(path) for path in commands
    }
    for path, parser in commands.items():
        lines = [line for line in parser.format_help().splitlines() if line.strip()]
        assert lines[-2] == "example:", (path, lines[-3:])
        assert lines[-1].strip().startswith("cautionflow " + " ".join(path) + " "), (path, lines[-1])
