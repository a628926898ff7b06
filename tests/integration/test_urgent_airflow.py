"""The urgent notices' DAG through real Airflow (`airflow dags test`, SQLite metadata): its async task
syncs the register and emails an urgent code added in NORTH to NORTH's contractor and the call
handlers, with the `cautionflow_smtp` Connection's settings; a rerun sends nothing; the schedule
comes from CAUTIONFLOW_URGENT_SCHEDULE, never from the config file. Dover 6.23 (warned at once).
Synthetic data only."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.support import AS_OF, REPO, alert_row, dags_test, migrated_airflow, write_sqlite_source

BIN = Path(sys.executable).parent
ACME, SOUTHSIDE, NIGHT_DESK = "rota@acme.example", "bookings@southside-gas.example", "ooh@callcentre.example"
SOURCE = [
    alert_row(alert_id="N1", area="NORTH", address="1 Larkspur Close", person_name="Alex Example"),
    alert_row(alert_id="S1", area="SOUTH", alert_code="NFO", person_ref="P2", person_name="Sam Sample",
              address="5 Mill Lane", postcode="EW3 1CD"),
]
NORTH_WPN = alert_row(alert_id="N9", alert_code="WPN", area="NORTH", address="3 Heron Way", person_ref="P9",
                      person_name="Nina Ninefold", note="NOTE-SECRET-N9")

pytestmark = pytest.mark.airflow


def deployment(folder: Path) -> Path:
    write_sqlite_source(folder / "housing.db", SOURCE)
    config = {
        "organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///register.db",
        "source": {"url": f"sqlite:///{folder / 'housing.db'}"}, "output_dir": "reports",
        # The file names a mail server that is not there: only the Connection's settings can deliver.
        "smtp": {"host": "127.0.0.1", "port": 9, "security": "none", "sender": "Example Homes <alerts@example.org>"},
        "recipients": [
            {"name": "Acme Repairs", "email": ACME, "role": "contractor", "areas": ["NORTH"]},
            {"name": "Southside Gas", "email": SOUTHSIDE, "role": "contractor", "areas": ["SOUTH"]},
            {"name": "Night Desk", "email": NIGHT_DESK, "role": "out_of_hours"},
        ],
    }
    path = folder / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run(
        [str(BIN / "cautionflow"), "run", "sync", "--config", str(path), "--as-of", AS_OF.isoformat()],
        cwd=folder, env={**os.environ, "CAUTIONFLOW_HOME": str(folder)}, capture_output=True, text=True, timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return path


def test_the_urgent_dag_tells_north_of_a_weapons_warning_once(tmp_path, mail_server):
    env = migrated_airflow(tmp_path / "airflow_home")
    config = deployment(tmp_path)
    write_sqlite_source(tmp_path / "housing.db", [*SOURCE, NORTH_WPN])  # added in the housing system at 10:00

    result = dags_test("cautionflow_urgent", env, config, mail_server.port)

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "send_urgent_notices" in log and "smtp settings from Airflow connection cautionflow_smtp" in log
    assert {r.recipient for r in mail_server.handler.received} == {ACME, NIGHT_DESK}
    [notice] = mail_server.handler.messages_for(ACME)
    assert notice["X-Cautionflow-Kind"] == "urgent" and notice["Subject"].startswith("URGENT: new warning at 3 Heron Way")
    assert "Nina Ninefold" not in notice.as_string() and "NOTE-SECRET" not in notice.as_string()

    again = dags_test("cautionflow_urgent", env, config, mail_server.port)  # the next quarter of an hour: nothing new
    assert again.returncode == 0, (again.stdout + again.stderr)[-5000:]
    assert len(mail_server.handler.received) == 2


def test_the_schedule_comes_from_the_environment_not_the_config():
    code = (
        "from airflow.dag_processing.dagbag import DagBag\n"
        f"bag = DagBag(dag_folder={str(REPO / 'dags' / 'cautionflow_urgent.py')!r})\n"
        "dag = bag.dags['cautionflow_urgent']\n"
        "print(dag.schedule, dag.max_active_runs, [o.uri for t in dag.tasks for o in t.outlets])\n"
    )
    for value, expected in (("*/5 * * * *", "*/5 * * * *"), ("", "*/15 * * * *")):
        env = {**os.environ, "AIRFLOW__CORE__LOAD_EXAMPLES": "False", "CAUTIONFLOW_URGENT_SCHEDULE": value}
        done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-2000:]
        # One run at a time, and never the register Asset: that would start the daily pipeline.
        assert done.stdout.strip().splitlines()[-1] == f"{expected} 1 []"
