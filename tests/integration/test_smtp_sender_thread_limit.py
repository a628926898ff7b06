"""Exchange Online's "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded" (too many
connections or messages at once from one mailbox) is throttling, like 421 and 4.7.x (issue 15,
"Provider limits"): against the real SMTP server (tests/smtp_server.py) every connection pauses,
the pace drops, and every message still arrives exactly once, never as a failure.

Policy: the policies README's "Safety first" principle, Karbon 7.3 (out-of-hours call handlers told
of every flagged individual) and Dover 6.31 (restrictions shared with contractors): a provider
saying "slow down" must delay a warning, never drop it.
"""

from __future__ import annotations

import asyncio

import aiosmtplib

from cautionflow.adapters.mail import (
    OutgoingMessage,
    RetryPolicy,
    SmtpSettings,
    deliver,
    is_permanent,
    is_throttling,
)
from cautionflow.steps import run_digests
from tests.deployment import DUE, FAST, deployment, outbox_rows, prepare
from tests.support import AS_OF, FakeTime

SENDER_THREAD_LIMIT = "432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"


def test_the_sender_thread_limit_is_throttling_and_never_permanent():
    for reply in (aiosmtplib.SMTPResponseException(432, "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded"),
                  aiosmtplib.SMTPSenderRefused(432, "4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded",
                                               "alerts@example.org"),
                  aiosmtplib.SMTPDataError(452, "4.3.2 System not accepting network messages")):
        assert is_throttling(reply) and not is_permanent(reply)
    # Neither a plain temporary failure nor a permanent refusal is throttling.
    assert not is_throttling(aiosmtplib.SMTPResponseException(451, "4.3.0 Local error in processing"))
    assert not is_throttling(aiosmtplib.SMTPResponseException(550, "5.1.1 User unknown"))


def test_a_sender_thread_limit_pauses_every_connection_and_slows_the_pace(mail_server):
    # No configured limit: only the server's 432 slows the delivery. On a fake clock (time is an
    # input): each acceptance is stamped with the fake time it happened at.
    settings = SmtpSettings(host="127.0.0.1", port=mail_server.port, sender="alerts@example.org", security="none",
                            max_concurrency=3)
    clock = FakeTime()
    messages = [
        OutgoingMessage(f"<m{i}@example.org>", (f"r{i}@example.org",),
                        f"From: alerts@example.org\r\nTo: r{i}@example.org\r\nMessage-ID: <m{i}@example.org>\r\n"
                        f"Subject: {i}\r\n\r\nbody {i}\r\n".encode())
        for i in range(9)
    ]
    accepted_at: dict[str, float] = {}
    mail_server.handler.mail_replies.append(SENDER_THREAD_LIMIT)

    report = asyncio.run(deliver(
        settings, messages, on_accepted=lambda mid: accepted_at.setdefault(mid, clock.monotonic()),
        on_failed=lambda failure: None, retry=RetryPolicy(attempts=3, initial_delay=2.0, max_delay=4.0),
        monotonic=clock.monotonic, sleep=clock.sleep,
    ))

    assert report.failures == () and sorted(report.accepted) == sorted(m.message_id for m in messages)
    assert not mail_server.handler.mail_replies
    # Throttled: the messages then begin at least the retry delay (at least 1 s: 2 s jittered down
    # to half) apart, across all three connections, so the nine take several seconds. A plain
    # temporary failure pauses only the connection that met it (one retry delay, at most 2 s) while
    # the other two send the rest at once.
    times = sorted(accepted_at.values())
    assert times[-1] - times[0] >= 5.0
    assert sorted(r.recipient for r in mail_server.handler.received) == sorted(f"r{i}@example.org" for i in range(9))


def test_digests_met_with_the_sender_thread_limit_each_go_once(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)
    mail_server.handler.mail_replies.append(SENDER_THREAD_LIMIT)
    mail_server.handler.data_replies.append("432 4.3.2 STOREDRV.ClientSubmit; sender thread limit exceeded")

    summary = run_digests(config, as_of=AS_OF, run_id="thread-limit", retry=FAST)

    assert (summary["sent"], summary["failed"], summary["pending"], summary["complete"]) == (3, 0, 0, True)
    assert {r["status"] for r in outbox_rows(databases)} == {"sent"}
    assert {r: len(mail_server.handler.messages_for(r)) for r in DUE} == dict.fromkeys(DUE, 1)
    assert len(mail_server.handler.received) == len(DUE)
