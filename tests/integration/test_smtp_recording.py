"""Each acceptance is recorded before its connection completes another message (issue 15, "Speed"):
`deliver` begins the next message (MAIL, RCPT, DATA and its text) while the caller records the
last acceptance, and sends the next message's final "." only once that recording has returned. A
recording that fails stops delivery with the caller's own error, and the message begun meanwhile
is never completed, so the server discards it. At most one accepted message per connection is
ever unrecorded, as when each recording came before the next MAIL; the recording just costs no
round trip of its own.

Against the real SMTP server (tests/smtp_server.py), with one connection.

Policy: Karbon 7.2 (disclosures to other companies made case by case: each one on record, which
the outbox's disclosure log is) and 7.3 (out-of-hours call handlers told of every flagged
individual: told once, with a record of what they were told).
"""

from __future__ import annotations

import asyncio
import time

import pytest

from cautionflow.adapters.mail import OutgoingMessage, RetryPolicy, SmtpSettings, deliver


def message(n: int) -> OutgoingMessage:
    return OutgoingMessage(
        f"<m{n}@example.org>", (f"r{n}@example.org",),
        f"From: alerts@example.org\r\nTo: r{n}@example.org\r\nMessage-ID: <m{n}@example.org>\r\n"
        f"Subject: {n}\r\n\r\nbody {n}\r\n.starts with a dot\r\n".encode(),
    )


def one_connection(server) -> SmtpSettings:
    return SmtpSettings(host="127.0.0.1", port=server.port, sender="alerts@example.org", security="none",
                        max_concurrency=1)


def count_mail_commands(server) -> list[str]:
    """The MAIL commands the server has seen (each message's first command), in order."""
    seen: list[str] = []
    handle = server.handler.handle_MAIL

    async def handle_mail(srv, session, envelope, address, mail_options):
        seen.append(address)
        return await handle(srv, session, envelope, address, mail_options)

    server.handler.handle_MAIL = handle_mail
    return seen


async def until(condition, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


def test_the_next_message_begins_while_the_last_is_recorded_and_ends_only_after(mail_server):
    mails = count_mail_commands(mail_server)
    received = mail_server.handler.received
    observed: list[tuple[str, int, int]] = []  # (message, MAILs seen, messages received) while recording

    async def record(message_id: str) -> None:
        if message_id == "<m0@example.org>":
            await until(lambda: len(mails) == 2)  # the next message has begun meanwhile
            await asyncio.sleep(0.3)  # ample time to complete it, were its end not held back
        observed.append((message_id, len(mails), len(received)))

    report = asyncio.run(deliver(one_connection(mail_server), [message(0), message(1), message(2)],
                                 on_accepted=record, on_failed=lambda failure: None))

    assert report.accepted == ("<m0@example.org>", "<m1@example.org>", "<m2@example.org>")
    assert observed[0] == ("<m0@example.org>", 2, 1)  # m1 begun, not completed, until m0 was recorded
    assert [r.recipient for r in received] == ["r0@example.org", "r1@example.org", "r2@example.org"]
    assert [r.message.get_content() for r in received] == [f"body {n}\r\n.starts with a dot\r\n" for n in range(3)]


def test_a_failed_recording_stops_delivery_and_the_message_begun_meanwhile_is_never_completed(mail_server):
    mails = count_mail_commands(mail_server)

    async def record(message_id: str) -> None:
        await until(lambda: len(mails) == 2)
        raise RuntimeError("simulated failure while recording")

    with pytest.raises(RuntimeError, match="simulated failure while recording"):
        asyncio.run(deliver(one_connection(mail_server), [message(0), message(1), message(2)],
                            on_accepted=record, on_failed=lambda failure: None))

    assert mails == ["alerts@example.org", "alerts@example.org"]  # m2 never begun
    assert [r.recipient for r in mail_server.handler.received] == ["r0@example.org"]  # m1 discarded


@pytest.mark.parametrize("error", [OSError("disk full"), ValueError("bad row")])
def test_a_recording_error_is_never_taken_for_a_failed_send(mail_server, error):
    # OSError and ValueError are also what a failed send raises: the worker must not retry the next
    # message, or report it failed, for what was the caller's error.
    failed = []

    def record(message_id: str) -> None:
        raise error

    with pytest.raises(type(error), match=str(error)):
        asyncio.run(deliver(one_connection(mail_server), [message(0), message(1)], on_accepted=record,
                            on_failed=failed.append, retry=RetryPolicy(attempts=3, initial_delay=0.01)))

    assert failed == []
    assert [r.recipient for r in mail_server.handler.received] == ["r0@example.org"]
