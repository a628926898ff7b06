"""Issue 17's proof on this machine, with real parts: Airflow's scheduler, dag-processor and
api-server and two Celery workers (Redis on 127.0.0.1:6379, db 7), the metadata, the register and
the housing database on PostgreSQL, reports and letters in an S3-compatible store (moto's server),
each worker with its own CAUTIONFLOW_HOME and AIRFLOW_HOME (tests/airflow_stack.py).

One run of the daily pipeline, started by the scheduler (its 05:30 run of cautionflow_sync, the
Assets starting the rest), with a fault in it: the SMTP server answers each MAIL command slowly, and
when the first digest has arrived and is recorded as sent, the worker running the digests task is
killed with SIGKILL, its whole process group (the worker, its pool, the task). The scheduler finds the task without a
heartbeat (20 s here), the task is retried (5 s here, a cluster policy: see tests/airflow_stack.py)
on the other worker, which sends the rest. Then: every DAG run succeeded; tasks ran on both
workers; every digest reached its recipient exactly once; the register holds every source row once;
reports and letters are in the bucket, and the register page serves them.

The data are built as of the sync run's own date, so the test does not depend on the real date."""

from __future__ import annotations

import re
import time
from collections import Counter

import pytest

from tests.airflow_stack import airflow_stack, slow_mail_server
from tests.support import postgres_available

pytestmark = [pytest.mark.airflow, pytest.mark.postgres]

WORKERS = ("worker1", "worker2")
DIGEST_ROLES = ("contractor", "out_of_hours")


def redis_available() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url("redis://127.0.0.1:6379/7", socket_connect_timeout=3).ping())
    except Exception:  # noqa: BLE001 - any failure means "not available"
        return False


@pytest.fixture
def requirements():
    from tests.conftest import require_postgres

    require_postgres()
    if not redis_available():
        import os

        if os.environ.get("CAUTIONFLOW_REQUIRE_POSTGRES") == "1":
            pytest.fail("the Redis server on 127.0.0.1:6379 is required under .ci/run but absent")
        pytest.skip("the Redis server on 127.0.0.1:6379 is not available")
    assert postgres_available()


def test_two_celery_workers_run_the_daily_pipeline_and_survive_a_killed_worker(tmp_path, requirements):
    import yaml

    from tests.airflow_stack import query

    started = time.monotonic()
    with slow_mail_server() as mail, airflow_stack(tmp_path, executor="CeleryExecutor", smtp_port=mail.port) as (
        stack, facts,
    ):
        handler = mail.handler
        config = yaml.safe_load((tmp_path / "worker1" / "cautionflow.yaml").read_text())
        digest_recipients = {r["email"] for r in config["recipients"] if r["role"] in DIGEST_ROLES}
        # Each message waits 3 s at MAIL (before any of it is sent), one connection at a time (the
        # config's smtp.max_concurrency: 1): the digests take several seconds, and a worker killed
        # meanwhile has given the server nothing of the message in hand.
        handler.mail_delay = 3.0

        for dag_id in reversed(("cautionflow_sync", "cautionflow_deadlines", "cautionflow_letters",
                                "cautionflow_digests")):
            stack.airflow("dags", "unpause", dag_id)

        def mid_digests():
            arrived = [r for r in handler.received if r.recipient in digest_recipients]
            if not arrived or not handler.waiting:
                return None
            # And every digest that arrived recorded as sent: a worker records an acceptance while
            # it begins the next message (holding back only that one's final "."), so the server
            # can be waiting on the next MAIL a moment before the last acceptance is committed. A
            # kill in that moment resends that digest with its same Message-ID, which receiving
            # systems drop; here the server would count it twice.
            recorded = query(stack.register_url, "SELECT count(*) FROM outbox WHERE kind = 'digest' "
                             "AND status = 'sent'")[0][0]
            if recorded < len(arrived):
                return None
            running = stack.meta("SELECT hostname FROM task_instance WHERE dag_id = 'cautionflow_digests' "
                                 "AND task_id = 'send_digests' AND state = 'running'")
            return running[0][0] if running and running[0][0] in WORKERS else None

        victim = stack.wait("the first digest delivered, the next one on its way", mid_digests, 600, interval=0.2)
        stack.kill_worker(victim)
        survivor = next(w for w in WORKERS if w != victim)

        runs = stack.wait_for_runs(timeout=600)
        tis = stack.task_instances()
        history = stack.task_history()

        # Every DAG of the day succeeded, each once.
        assert {d: r[0] for d, r in runs.items()} == dict.fromkeys(runs, "success") and len(runs) == 4
        assert all(t["state"] == "success" for t in tis), tis
        # The digests task's first try was on the killed worker and failed there; its retry ran on the other.
        [digests] = [t for t in tis if t["task_id"] == "send_digests"]
        assert digests["hostname"] == survivor and digests["try_number"] >= 2, (digests, history)
        assert [(h["hostname"], h["state"]) for h in history if h["task_id"] == "send_digests"][0] == (
            victim, "failed"), history
        # Tasks ran on both workers (and only on them), and each worker's own log folder holds task logs.
        assert {t["hostname"] for t in tis} | {h["hostname"] for h in history} == set(WORKERS), tis
        for worker in WORKERS:
            assert list((stack.worker_homes[worker] / "logs").rglob("attempt=*.log")), worker

        # Every digest arrived exactly once: one message, one Message-ID, per recipient.
        outbox = query(stack.register_url, "SELECT recipient_email, message_id, status, kind FROM outbox")
        digest_rows = [r for r in outbox if r[3] == "digest"]
        assert digest_rows and {r[0] for r in digest_rows} == digest_recipients
        assert all(r[2] == "sent" for r in outbox), outbox  # every message of the day, sent once
        delivered = Counter(r.recipient for r in handler.received)
        assert {r: delivered[r] for r in digest_recipients} == dict.fromkeys(digest_recipients, 1), delivered
        for email, message_id, _status, _kind in outbox:
            assert [m["Message-ID"] for m in handler.messages_for(email)].count(message_id) == 1, (email, message_id)
        assert sum(delivered.values()) == len(outbox), (delivered, outbox)

        # No alert lost or doubled: every source row is in the register or its quarantine, each id once.
        source = facts["source_rows"]
        alerts = query(stack.register_url, "SELECT alert_id FROM alerts")
        quarantined = query(stack.register_url, "SELECT count(*) FROM quarantine")[0][0]
        assert len(alerts) == len({a for (a,) in alerts}), "an alert id twice"
        assert len(alerts) + quarantined == source
        assert query(stack.register_url, "SELECT count(*) FROM sync_runs")[0][0] == 1

        # Reports and letters are in the bucket (the workers share no folder), and the register page,
        # behind the Airflow login, serves them from there.
        store = facts["store"]
        assert any(k.endswith(".csv") for k in store.keys("reports/")), store.keys()
        assert any(k.endswith(".pdf") for k in store.keys("letters/")), store.keys()
        token = stack.token()
        status, page = stack.get("/cautionflow/", token)
        assert status == 200, page[:2000]
        html = page.decode()
        report = re.search(r'href="[^"]*(/cautionflow/reports/all-alerts-[^"]+\.csv)"', html)
        letter = re.search(r'href="[^"]*(/cautionflow/letters/\d+\.pdf)"', html)
        assert report and letter, html[:3000]
        status, csv = stack.get(report.group(1), token)
        assert status == 200 and csv.count(b"\n") > 1, csv[:300]
        status, pdf = stack.get(letter.group(1), token)
        assert status == 200 and pdf.startswith(b"%PDF"), pdf[:200]
        assert stack.get("/cautionflow/", None)[0] == 401  # and nothing without the login

    print(f"as of {facts['as_of']} (sync run at {facts['logical_date']}); killed {victim}; "
          f"test wall time {time.monotonic() - started:.0f} s")
