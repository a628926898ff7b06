"""The daily run summary to operations (issue 6): counts only, once per recipient and day, through
the outbox and a real SMTP server, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio

from cautionflow.adapters.register import Register
from cautionflow.services.status import register_status
from cautionflow.steps import run_digests, run_summary_async
from tests.deployment import FAST, NAMES, RECIPIENTS, SOURCE, deployment, prepare
from tests.support import AS_OF

OPERATIONS = [{"name": "Operations", "email": "ops@example.org", "role": "operations"},
              {"name": "On call", "email": "oncall@example.org", "role": "operations"}]


def summary(config, as_of=AS_OF, run_id="digests/1"):
    return asyncio.run(run_summary_async(config, as_of=as_of, run_id=run_id, retry=FAST))


def test_operations_get_one_counts_only_summary_a_day(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=[*RECIPIENTS, *OPERATIONS],
                        operations={"daily_summary": True})
    prepare(databases, config)
    mail_server.handler.refuse["rota@acme.example"] = "550 5.1.1 no such mailbox"
    run_digests(config, as_of=AS_OF, run_id="digests", retry=FAST)
    digests_received = len(mail_server.handler.received)

    result = summary(config)

    assert result["recipients"] == 2 and result["sent"] == 2 and result["complete"]
    received = mail_server.handler.received[digests_received:]
    assert sorted(r.recipient for r in received) == ["oncall@example.org", "ops@example.org"]
    message = received[0].message
    assert message["Subject"] == "cautionflow: daily summary, 23 November 2026 (needs a look)"
    assert message["X-Cautionflow-Kind"] == "operations-summary"
    body = message.get_body(("plain",)).get_content()
    register = Register(config.register_url)
    try:
        status = register_status(register)
    finally:
        register.dispose()
    assert f"active alerts {status['active']}, with data-quality flags {status['active_flagged']}" in body
    assert f"overdue {status['deadlines']['overdue']}" in body
    assert "digest: failed 1, sent 2" in body  # today's digests, the refused contractor included
    # Counts only: no names, addresses, notes, alert ids or recipients' addresses.
    raw = message.as_string()
    for personal in (*NAMES, "Larkspur", "Mill Lane", "NOTE-SECRET", "EW3", "rota@acme.example", "N1", "S1"):
        assert personal not in raw, personal

    # A rerun of the day (another sync, another digests run) sends nothing more.
    again = summary(config, run_id="digests/2")
    assert again["sent"] == 0 and again["already_sent"] == 2 and again["queued"] == 0
    assert len(mail_server.handler.received) == digests_received + 2
    # The summary discloses no alert.
    register = Register(config.register_url)
    try:
        with register.engine.connect() as conn:
            disclosed = conn.exec_driver_sql(
                "SELECT COUNT(*) FROM disclosures WHERE kind = 'operations'").scalar()
    finally:
        register.dispose()
    assert disclosed == 0


def test_the_next_day_gets_its_own_summary(databases, tmp_path, mail_server):
    import datetime as dt

    config = deployment(databases, tmp_path, mail_server.port, recipients=OPERATIONS[:1],
                        operations={"daily_summary": True})
    prepare(databases, config)
    assert summary(config)["sent"] == 1
    tomorrow = AS_OF + dt.timedelta(days=1)
    prepare(databases, config, as_of=tomorrow)
    assert summary(config, as_of=tomorrow)["sent"] == 1
    subjects = [m.message["Subject"] for m in mail_server.handler.received]
    assert subjects == ["cautionflow: daily summary, 23 November 2026",
                        "cautionflow: daily summary, 24 November 2026"]


def test_nothing_is_sent_unless_configured(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=[*RECIPIENTS, *OPERATIONS])
    prepare(databases, config, rows=SOURCE)
    assert summary(config)["skipped"] == "operations.daily_summary is off"
    assert mail_server.handler.received == []


def test_a_summary_the_server_defers_stays_pending_for_the_retry(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=OPERATIONS[:1],
                        operations={"daily_summary": True})
    prepare(databases, config)
    mail_server.handler.data_replies.extend(["451 4.3.0 try later"] * 3)
    first = summary(config)
    assert first["sent"] == 0 and first["pending"] == 1 and not first["complete"]
    second = summary(config, run_id="digests/retry")
    assert second["sent"] == 1 and second["pending"] == 0
    assert len(mail_server.handler.received) == 1
