"""Provider limits (issue 15) against the real SMTP server (tests/smtp_server.py): throttling
replies ("421 4.7.0 Try again later", "452 4.7.0 ...") end in acceptance, exactly once, never in a
failed outbox row; the rate limit holds across concurrent connections of one delivery.

Policy: the policies README's "Safety first" principle, Karbon 7.3 (out-of-hours call handlers told
of every flagged individual) and Dover 6.31 (restrictions shared with contractors): a provider
saying "slow down" must delay a warning, never drop it.
"""

from __future__ import annotations

import asyncio

from cautionflow.adapters.mail import OutgoingMessage, RetryPolicy, SmtpSettings, deliver
from cautionflow.steps import run_digests
from tests.deployment import DUE, FAST, deployment, outbox_rows, prepare
from tests.support import AS_OF, FakeTime, most_in_any_window

THROTTLED = "421 4.7.0 Try again later"


def one_copy_each(server, recipients=DUE) -> None:
    assert {r: len(server.handler.messages_for(r)) for r in recipients} == dict.fromkeys(recipients, 1)
    assert len(server.handler.received) == len(recipients)


def test_throttling_replies_are_waited_out_and_every_digest_goes_once(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, smtp={"max_messages_per_minute": 600})
    prepare(databases, config)
    # Exchange Online's answers to a mailbox sending too fast: to MAIL (the server then closes the
    # connection) and to the end of DATA.
    mail_server.handler.mail_replies.extend([THROTTLED, THROTTLED])
    mail_server.handler.data_replies.append("452 4.7.0 Temporary server error. Please try again later")

    summary = run_digests(config, as_of=AS_OF, run_id="throttled", retry=FAST)

    assert (summary["sent"], summary["failed"], summary["pending"], summary["complete"]) == (3, 0, 0, True)
    assert {r["status"] for r in outbox_rows(databases)} == {"sent"}
    assert not mail_server.handler.mail_replies and not mail_server.handler.data_replies  # all three were met
    one_copy_each(mail_server)


def test_throttling_beyond_the_attempts_leaves_the_digests_pending_not_failed(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port)  # no limit set: throttling still is not failure
    prepare(databases, config)
    mail_server.handler.mail_replies.extend([THROTTLED] * 100)

    busy = run_digests(config, as_of=AS_OF, run_id="busy", retry=FAST)

    assert (busy["sent"], busy["failed"], busy["pending"], busy["complete"]) == (0, 0, 3, False)
    assert {r["status"] for r in outbox_rows(databases)} == {"pending"}
    assert mail_server.handler.received == []

    # The provider's minute passes; the task's retry sends each digest, once.
    mail_server.handler.mail_replies.clear()
    retried = run_digests(config, as_of=AS_OF, run_id="retry", retry=FAST)
    again = run_digests(config, as_of=AS_OF, run_id="rerun", retry=FAST)

    assert (retried["sent"], retried["failed"], retried["pending"], retried["complete"]) == (3, 0, 0, True)
    assert again["sent"] == 0
    assert {r["status"] for r in outbox_rows(databases)} == {"sent"}
    one_copy_each(mail_server)


def test_the_limit_holds_across_connections_against_the_real_server(mail_server):
    # 20 messages, 4 connections, 6 a minute: on a fake clock (time is an input), so no test waits
    # three minutes. Each acceptance is stamped with the fake time it happened at.
    settings = SmtpSettings(host="127.0.0.1", port=mail_server.port, sender="alerts@example.org", security="none",
                            max_concurrency=4, max_messages_per_minute=6)
    clock = FakeTime()
    messages = [
        OutgoingMessage(f"<m{i}@example.org>", (f"r{i}@example.org",),
                        f"From: alerts@example.org\r\nTo: r{i}@example.org\r\nMessage-ID: <m{i}@example.org>\r\n"
                        f"Subject: {i}\r\n\r\nbody {i}\r\n".encode())
        for i in range(20)
    ]
    accepted_at: dict[str, float] = {}
    mail_server.handler.mail_replies.append(THROTTLED)  # and one throttling reply on the way

    report = asyncio.run(deliver(
        settings, messages, on_accepted=lambda mid: accepted_at.setdefault(mid, clock.monotonic()),
        on_failed=lambda failure: None, retry=RetryPolicy(attempts=3, initial_delay=2.0, max_delay=4.0),
        monotonic=clock.monotonic, sleep=clock.sleep,
    ))

    assert report.failures == () and len(report.accepted) == 20
    assert sorted(accepted_at) == sorted(m.message_id for m in messages)
    assert 1 <= most_in_any_window(list(accepted_at.values())) <= 6  # after the 421, 3 a minute
    assert max(accepted_at.values()) - min(accepted_at.values()) >= 60 * (20 // 6 - 1)  # it really waited
    assert {r.recipient for r in mail_server.handler.received} == {f"r{i}@example.org" for i in range(20)}
    assert len(mail_server.handler.received) == 20
