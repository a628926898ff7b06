"""As in production: Airflow's metadata database and the register on PostgreSQL, every DAG through
`airflow dags test` in the order the Assets chain them, then the register checked with SQL.

One migrated metadata database serves all four runs (migrating takes most of the time)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from tests.support import AS_OF, REPO, demo_config, migrated_airflow, temporary_postgres_database

BIN = Path(sys.executable).parent
DAGS = ("cautionflow_sync", "cautionflow_deadlines", "cautionflow_letters", "cautionflow_digests",
        "cautionflow_housekeeping", "cautionflow_sync_watch")

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]


@dataclass
class Production:
    env: dict[str, str]
    deployment: Path
    register_url: str
    smtp: object  # tests.smtp_server.MailServer


@pytest.fixture(scope="module")
def production(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Production]:
    from tests.conftest import require_postgres
    from tests.smtp_server import serving

    require_postgres()
    home = tmp_path_factory.mktemp("airflow_home_pg")
    deployment = tmp_path_factory.mktemp("deployment_pg")

    built = subprocess.run(
        [str(BIN / "cautionflow"), "demo-data", "--out", str(deployment / "housing.db"), "--homes", "2000",
         "--alerts", "300", "--as-of", AS_OF.isoformat()],
        capture_output=True, text=True, timeout=300,
    )
    assert built.returncode == 0, built.stderr
    # The file names a SQLite register; the Connection must win, so this file must never appear.
    config = demo_config(deployment, register_url="sqlite:///register-from-file.db")
    (deployment / "cautionflow.yaml").write_text(yaml.safe_dump(config))

    with (
        temporary_postgres_database("cf_airflow") as metadata_url,
        temporary_postgres_database("cf_register") as register_url,
        serving() as server,
    ):
        smtp = {"conn_type": "smtp", "host": "127.0.0.1", "port": server.port, "extra": {"security": "none"}}
        sync_metadata = metadata_url.replace("postgresql:", "postgresql+psycopg2:", 1)
        # Airflow would derive postgresql+asyncpg (not installed) for its async engine: psycopg 3 has one.
        async_metadata = metadata_url.replace("postgresql:", "postgresql+psycopg:", 1)
        env = migrated_airflow(
            home,
            metadata_url=sync_metadata,
            async_metadata_url=async_metadata,
            without=("CAUTIONFLOW_REGISTER_URL",),
            extra={
                "CAUTIONFLOW_HOME": str(deployment),
                "AIRFLOW_VAR_CAUTIONFLOW_CONFIG": str(deployment / "cautionflow.yaml"),
                # A postgres Connection URI, as a landlord sets it in the environment or a secrets backend.
                "AIRFLOW_CONN_CAUTIONFLOW_REGISTER": register_url,
                "AIRFLOW_CONN_CAUTIONFLOW_SMTP": json.dumps(smtp),
            },
        )
        yield Production(env, deployment, register_url, server)


def dags_test(production: Production, dag_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "airflow"), "dags", "test", dag_id, AS_OF.isoformat()],
        env=production.env, cwd=production.deployment, capture_output=True, text=True, timeout=600,
    )


def scalar(register_url: str, query: str) -> int:
    import psycopg

    with psycopg.connect(register_url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    return int(row[0])


def test_every_dag_runs_on_postgresql_metadata_and_register(production: Production):
    # Airflow's own tables are on PostgreSQL: the metadata database is not SQLite.
    assert not list(Path(production.env["AIRFLOW_HOME"]).glob("*.db"))

    for dag_id in DAGS:
        result = dags_test(production, dag_id)
        output = result.stdout + result.stderr
        assert result.returncode == 0, f"{dag_id}:\n{output[-5000:]}"
        assert "state=success" in output, f"{dag_id}:\n{output[-5000:]}"

    url = production.register_url
    with sqlite3.connect(production.deployment / "housing.db") as source:
        source_rows = source.execute("SELECT COUNT(*) FROM caution_alerts_export").fetchone()[0]
    alerts = scalar(url, "SELECT COUNT(*) FROM alerts")
    quarantined = scalar(url, "SELECT COUNT(*) FROM quarantine")
    active = scalar(url, "SELECT COUNT(*) FROM alerts WHERE register_state = 'active'")

    assert source_rows > 0 and alerts + quarantined == source_rows  # nothing lost
    assert scalar(url, "SELECT COUNT(*) FROM sync_runs") == 1
    assert scalar(url, f"SELECT COUNT(*) FROM sync_runs WHERE as_of = DATE '{AS_OF}'") == 1
    assert active > 0
    assert scalar(url, "SELECT COUNT(*) FROM alert_deadlines") == active
    assert scalar(url, f"SELECT COUNT(*) FROM alert_deadlines WHERE evaluated_on <> DATE '{AS_OF}'") == 0
    assert scalar(url, "SELECT COUNT(*) FROM letters WHERE status = 'queued'") > 0

    # Digests: every one in the outbox was sent, and each went to its recipient through the server.
    digests = scalar(url, "SELECT COUNT(*) FROM outbox WHERE kind = 'digest'")
    assert digests > 0
    assert scalar(url, "SELECT COUNT(*) FROM outbox WHERE kind = 'digest' AND status = 'sent'") == digests
    assert scalar(url, "SELECT COUNT(*) FROM disclosures") > 0
    delivered = {r.recipient for r in production.smtp.handler.received}
    assert {"rota@acme.example", "ooh@callcentre.example"} <= delivered
    assert production.smtp.handler.messages_for("officers@example.org"), "the Monday reminder went out"

    # Outputs under the configured folders; no SQLite register anywhere in the deployment.
    assert (production.deployment / "reports" / f"all-alerts-{AS_OF}.csv").is_file()
    # The housekeeping DAG's governance reports (retention is not configured in the demo profile).
    for report in ("equality-2026-Q4.html", f"stale-alerts-{AS_OF}.csv", f"survey-exclusions-{AS_OF}.csv"):
        assert (production.deployment / "reports" / report).is_file(), report
    assert scalar(url, "SELECT COUNT(*) FROM anonymisation_log") == 0
    # Operations got one of each: the daily summary (the demo config turns it on) and, from the 07:00
    # watch of a run at midnight, the notice that the day's sync finished after it.
    kinds = sorted(m["X-Cautionflow-Kind"] for m in production.smtp.handler.messages_for("ops@example.org"))
    assert kinds == ["operations-late", "operations-summary"]
    assert list((production.deployment / "letters").rglob("*.pdf"))
    assert not (production.deployment / "register-from-file.db").exists()
    assert sorted(p.name for p in production.deployment.rglob("*.db*")) == ["housing.db"]


def test_the_demo_helper_derives_both_databases_from_a_server_url():
    from cautionflow.demo.postgres import ServerError, database_urls

    urls = database_urls("postgresql://cf:s%40cret@db.example:5433/postgres")
    assert urls == {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": "postgresql+psycopg2://cf:s%40cret@db.example:5433/cautionflow_airflow",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": "postgresql+psycopg://cf:s%40cret@db.example:5433/cautionflow_airflow",
        "AIRFLOW_CONN_CAUTIONFLOW_REGISTER": "postgresql://cf:s%40cret@db.example:5433/cautionflow_register",
        "CAUTIONFLOW_REGISTER_URL": "postgresql://cf:s%40cret@db.example:5433/cautionflow_register",
    }
    with pytest.raises(ServerError, match="PostgreSQL server URL"):
        database_urls("sqlite:///var/demo/register.db")


def test_cautionflow_register_url_overrides_the_files_register(tmp_path, monkeypatch):
    from cautionflow.config import load_config

    config = yaml.safe_load((REPO / "include/config/cautionflow.demo.yaml").read_text())
    (tmp_path / "cautionflow.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.delenv("CAUTIONFLOW_REGISTER_URL", raising=False)
    assert load_config(tmp_path / "cautionflow.yaml", home=tmp_path).register_url == (
        f"sqlite:///{tmp_path / 'var/demo/register.db'}"
    )
    monkeypatch.setenv("CAUTIONFLOW_REGISTER_URL", "postgresql://postgres@127.0.0.1:5432/cautionflow_register")
    assert load_config(tmp_path / "cautionflow.yaml", home=tmp_path).register_url == (
        "postgresql://postgres@127.0.0.1:5432/cautionflow_register"
    )
    monkeypatch.setenv("CAUTIONFLOW_REGISTER_URL", "sqlite:///elsewhere.db")  # relative: under the home
    assert load_config(tmp_path / "cautionflow.yaml", home=tmp_path).register_url == f"sqlite:///{tmp_path}/elsewhere.db"
