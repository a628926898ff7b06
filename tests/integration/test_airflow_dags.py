"""The real pipeline through Airflow: `airflow dags test` on the demo data, SQLite metadata."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import AS_OF, REPO, demo_config, migrated_airflow

BIN = Path(sys.executable).parent

pytestmark = pytest.mark.airflow


@pytest.fixture(scope="session")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return migrated_airflow(tmp_path_factory.mktemp("airflow_home"))


@pytest.fixture(scope="session")
def demo_deployment(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deployment folder with the synthetic housing database and a config pointing at it."""
    folder = tmp_path_factory.mktemp("deployment")
    built = subprocess.run(
        [str(BIN / "cautionflow"), "demo-data", "--out", str(folder / "housing.db"), "--homes", "3000",
         "--alerts", "400", "--as-of", AS_OF.isoformat()],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    config = demo_config(folder, register_url="sqlite:///register-from-file.db")
    (folder / "cautionflow.yaml").write_text(yaml.safe_dump(config))
    return folder


def dags_test(
    env: dict[str, str], dag_id: str, deployment: Path, smtp_port: int | None = None,
    config: str = "cautionflow.yaml",
) -> subprocess.CompletedProcess[str]:
    register = deployment / "register-from-connection.db"
    smtp = {"AIRFLOW_CONN_CAUTIONFLOW_SMTP": json.dumps(
        {"conn_type": "smtp", "host": "127.0.0.1", "port": smtp_port, "extra": {"security": "none"}}
    )} if smtp_port else {}
    run_env = {
        **env,
        **smtp,
        "CAUTIONFLOW_HOME": str(deployment),
        "AIRFLOW_VAR_CAUTIONFLOW_CONFIG": str(deployment / config),
        # The Connection overrides the file's register URL, as a landlord keeps secrets in Airflow.
        "AIRFLOW_CONN_CAUTIONFLOW_REGISTER": json.dumps({"conn_type": "sqlite", "host": str(register)}),
    }
    return subprocess.run(
        [str(BIN / "airflow"), "dags", "test", dag_id, AS_OF.isoformat()],
        env=run_env, cwd=deployment, capture_output=True, text=True, timeout=600,
    )


def register_counts(path: Path) -> dict[str, int]:
    with sqlite3.connect(path) as conn:
        return {
            "active": conn.execute("SELECT COUNT(*) FROM alerts WHERE register_state = 'active'").fetchone()[0],
            "alerts": conn.execute("SELECT COUNT(*) FROM alerts").fetchone()[0],
            "history": conn.execute("SELECT COUNT(*) FROM alert_history").fetchone()[0],
            "quarantine": conn.execute("SELECT COUNT(*) FROM quarantine").fetchone()[0],
            "flagged": conn.execute("SELECT COUNT(*) FROM alerts WHERE dq_flags IS NOT NULL").fetchone()[0],
        }


def test_the_sync_dag_runs_through_airflow_on_the_demo_data(airflow_env, demo_deployment):
    result = dags_test(airflow_env, "cautionflow_sync", demo_deployment)
    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert "state=success" in result.stdout + result.stderr

    register = demo_deployment / "register-from-connection.db"
    assert register.is_file(), "the Airflow Connection must override the file's register_url"
    assert not (demo_deployment / "register-from-file.db").exists()

    with sqlite3.connect(demo_deployment / "housing.db") as source:
        source_rows = source.execute("SELECT COUNT(*) FROM caution_alerts_export").fetchone()[0]
    counts = register_counts(register)
    assert counts["alerts"] + counts["quarantine"] == source_rows  # nothing lost
    assert counts["quarantine"] > 0 and counts["flagged"] > 0  # the demo data has faults of each kind
    with sqlite3.connect(register) as conn:
        run_id, as_of, summary = conn.execute("SELECT run_id, as_of, summary FROM sync_runs").fetchone()
    assert as_of == AS_OF.isoformat()  # the logical date, in Europe/London, is the as-of date
    assert run_id.startswith("cautionflow_sync/")
    assert json.loads(summary)["read"] == source_rows

    # Rerunning the same day through Airflow changes nothing.
    again = dags_test(airflow_env, "cautionflow_sync", demo_deployment)
    assert again.returncode == 0, (again.stdout + again.stderr)[-5000:]
    assert register_counts(register) == counts


def test_the_deadlines_dag_computes_every_active_alert_through_airflow(airflow_env, demo_deployment, mail_server):
    synced = dags_test(airflow_env, "cautionflow_sync", demo_deployment)
    assert synced.returncode == 0, (synced.stdout + synced.stderr)[-5000:]

    result = dags_test(airflow_env, "cautionflow_deadlines", demo_deployment, smtp_port=mail_server.port)

    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    register = demo_deployment / "register-from-connection.db"
    with sqlite3.connect(register) as conn:
        active = conn.execute("SELECT COUNT(*) FROM alerts WHERE register_state = 'active'").fetchone()[0]
        stored, evaluated = conn.execute("SELECT COUNT(*), MAX(evaluated_on) FROM alert_deadlines").fetchone()
    assert stored == active and evaluated == AS_OF.isoformat()
    report = demo_deployment / "reports" / f"all-alerts-{AS_OF}.csv"
    assert report.is_file() and len(report.read_text().splitlines()) == active + 1
    assert str(report) in result.stdout + result.stderr  # the report's path is in the run's log
    # 23 November 2026 is a Monday: the officers' weekly reminder went out, once, by the async task.
    [reminder] = mail_server.handler.messages_for("officers@example.org")
    assert "caution alert reviews, week of 23 November 2026" in reminder["Subject"]
    # Then the open appeals to the demo's appeals manager (Dover 6.35), once, by the third task.
    [appeals] = mail_server.handler.messages_for("appeals-manager@example.org")
    assert "appeals awaiting an answer, 23 November 2026" in appeals["Subject"]


def test_the_housekeeping_dag_runs_retention_and_the_governance_reports_through_airflow(airflow_env, demo_deployment):
    register = demo_deployment / "register-from-connection.db"
    synced = dags_test(airflow_env, "cautionflow_sync", demo_deployment)  # the register the DAG reads
    assert synced.returncode == 0, (synced.stdout + synced.stderr)[-3000:]

    # The demo's profile (dover) sets no retention period (Dover 10 leaves it to the landlord's policy):
    # the task says so and anonymises nothing; the second task writes the governance lists.
    before = register_counts(register)
    result = dags_test(airflow_env, "cautionflow_housekeeping", demo_deployment)
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "state=success" in log and "retention is not configured" in log
    assert register_counts(register) == before
    with sqlite3.connect(register) as conn:
        assert conn.execute("SELECT COUNT(*) FROM anonymisation_log").fetchone()[0] == 0
    assert (demo_deployment / "reports" / f"stale-alerts-{AS_OF}.csv").is_file()

    # The landlord sets 6 months (Teign 13): ended alerts past it are anonymised, each one logged.
    config = yaml.safe_load((demo_deployment / "cautionflow.yaml").read_text())
    profile = yaml.safe_load((REPO / "src/cautionflow/profiles/dover.yaml").read_text())
    (demo_deployment / "dover-6-months.yaml").write_text(yaml.safe_dump({**profile, "retention_months_after_end": 6}))
    config["policy"] = str(demo_deployment / "dover-6-months.yaml")
    (demo_deployment / "cautionflow-retention.yaml").write_text(yaml.safe_dump(config))
    result = dags_test(airflow_env, "cautionflow_housekeeping", demo_deployment, config="cautionflow-retention.yaml")
    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    with sqlite3.connect(register) as conn:
        logged = conn.execute("SELECT COUNT(*), MIN(as_of), MAX(retention_months) FROM anonymisation_log").fetchone()
        anonymised = conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE anonymised_on IS NOT NULL AND register_state = 'ended' "
            "AND person_name IS NULL AND note IS NULL AND address IS NULL"
        ).fetchone()[0]
        active_named = conn.execute(
            "SELECT COUNT(*) FROM alerts WHERE register_state = 'active' AND anonymised_on IS NOT NULL"
        ).fetchone()[0]
    assert logged[0] > 0 and logged[1:] == (AS_OF.isoformat(), 6)
    assert anonymised == logged[0] and active_named == 0  # current alerts are never touched
    assert register_counts(register)["alerts"] == before["alerts"]  # counts for statistics survive
