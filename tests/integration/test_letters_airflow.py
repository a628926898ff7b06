"""The letters DAG through real Airflow (`airflow dags test`, SQLite metadata): with
`letters.auto_approve: true` its async `dispatch_letters` task writes the print batch and emails the
letters, with the mail settings of the `cautionflow_smtp` Connection overriding the file's. Synthetic data only."""

from __future__ import annotations

import csv
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.deployment import CONTACT
from tests.support import AS_OF, alert_row, dags_test, migrated_airflow, write_sqlite_source

BIN = Path(sys.executable).parent
ERIN = "erin@example.com"

pytestmark = pytest.mark.airflow

SOURCE = [
    alert_row(alert_id="POST", person_ref="P1", person_name="Alex Added", address="1 Larkspur Close, Eastwick",
              effective_from="2026-11-20"),
    alert_row(alert_id="MAIL", alert_code="DOG", person_ref="P2", person_name="Erin Email", address="2 Mill Lane",
              postcode="EW3 1CD", effective_from="2026-11-16", preferred_channel="email", email=ERIN),
    alert_row(alert_id="OLD", person_ref="P3", person_name="Olive Older", address="3 Ash Row",
              effective_from="2026-01-05"),  # untold and older than the look-back: the officers' list
]


@pytest.fixture(scope="module")
def airflow_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    return migrated_airflow(tmp_path_factory.mktemp("airflow_home_letters"))


def deployment(folder: Path, *, auto_approve: bool) -> Path:
    write_sqlite_source(folder / "housing.db", SOURCE)
    config = {
        "organisation": "Example Homes",
        "policy": "teign",
        "register_url": "sqlite:///register.db",
        "source": {"url": f"sqlite:///{folder / 'housing.db'}"},
        "output_dir": "reports",
        # The file names a mail server that is not there: only the Connection's settings can deliver.
        "smtp": {"host": "127.0.0.1", "port": 9, "security": "none", "sender": "Example Homes <alerts@example.org>"},
        "letters": {"output_dir": "letters", "auto_approve": auto_approve, "contact": CONTACT},
    }
    path = folder / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(config))
    for step in ("sync", "deadlines"):
        done = subprocess.run(
            [str(BIN / "cautionflow"), "run", step, "--config", str(path), "--as-of", AS_OF.isoformat()],
            cwd=folder, env={**os.environ, "CAUTIONFLOW_HOME": str(folder)}, capture_output=True, text=True,
            timeout=300,
        )
        assert done.returncode == 0, done.stderr
    return path


def statuses(register: Path) -> dict[str, str]:
    with sqlite3.connect(register) as conn:
        return dict(conn.execute("SELECT alert_id, status FROM letters").fetchall())


def test_auto_approve_dispatches_from_the_async_task_with_the_smtp_connection(airflow_env, tmp_path, mail_server):
    config = deployment(tmp_path, auto_approve=True)

    result = dags_test("cautionflow_letters", airflow_env, config, mail_server.port)

    log = result.stdout + result.stderr
    assert result.returncode == 0, log[-5000:]
    assert "dispatch_letters" in log and "smtp settings from Airflow connection cautionflow_smtp" in log
    assert statuses(tmp_path / "register.db") == {"POST": "dispatched", "MAIL": "dispatched"}
    [message] = mail_server.handler.messages_for(ERIN)
    assert message["Subject"] == "A letter from Example Homes"
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    [manifest] = (tmp_path / "letters" / "dispatch").glob("print-batch-*-manifest.csv")
    with manifest.open(newline="", encoding="utf-8-sig") as f:
        assert [row["alert_id"] for row in csv.DictReader(f)] == ["POST"]
    with sqlite3.connect(tmp_path / "register.db") as conn:
        flags = conn.execute("SELECT alert_id, flag, first_flagged_on FROM letter_flags").fetchall()
    assert flags == [("OLD", "untold_before_lookback", AS_OF.isoformat())]  # stored for officers, not only logged

    # A rerun of the day through Airflow queues and sends nothing twice.
    again = dags_test("cautionflow_letters", airflow_env, config, mail_server.port)
    assert again.returncode == 0, (again.stdout + again.stderr)[-5000:]
    assert len(mail_server.handler.messages_for(ERIN)) == 1
    with sqlite3.connect(tmp_path / "register.db") as conn:
        assert conn.execute("SELECT COUNT(*) FROM letters").fetchone()[0] == 2
        assert conn.execute("SELECT COUNT(*) FROM letter_flags").fetchone()[0] == 1


def test_without_auto_approve_the_dag_only_queues(airflow_env, tmp_path, mail_server):
    config = deployment(tmp_path, auto_approve=False)

    result = dags_test("cautionflow_letters", airflow_env, config, mail_server.port)

    assert result.returncode == 0, (result.stdout + result.stderr)[-5000:]
    assert statuses(tmp_path / "register.db") == {"POST": "queued", "MAIL": "queued"}
    assert mail_server.handler.messages_for(ERIN) == []
    assert not (tmp_path / "letters" / "dispatch").exists()
