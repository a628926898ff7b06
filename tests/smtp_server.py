"""A real SMTP server for tests: aiosmtpd in the test process on a free loopback port, recording
every accepted message and able to misbehave on demand (refuse, drop, 4xx, 5xx, answer late)."""

from __future__ import annotations

import asyncio
import contextlib
import email
import socket
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass
from email import policy
from email.message import EmailMessage

from aiosmtpd.controller import Controller


@dataclass
class Received:
    recipient: str
    message: EmailMessage
    tls: bool
    authenticated: bool


class Recorder:
    """An aiosmtpd handler that keeps every accepted message and can be told to misbehave."""

    def __init__(self) -> None:
        self.received: list[Received] = []
        self.refuse: dict[str, str] = {}  # recipient -> reply to RCPT
        self.mail_replies: deque[str] = deque()  # replies to MAIL before accepting again
        self.data_replies: deque[str] = deque()  # replies to DATA before accepting again
        self.drop_after: int | None = None  # accept this many messages, then drop the connection once
        self.drops = 0
        # Store each message, then answer the end of DATA only after this many seconds (a server busy
        # writing it to disk): the message is already kept whether or not the client still waits.
        self.delay_data_reply: float = 0.0
        # Store each message, then drop the connection instead of answering the end of DATA.
        self.drop_data_reply = False

    async def handle_MAIL(self, server, session, envelope, address, mail_options):  # noqa: N802 - aiosmtpd's hook
        if self.drop_after is not None and len(self.received) >= self.drop_after:
            self.drop_after = None
            self.drops += 1
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        if self.mail_replies:
            return self.mail_replies.popleft()
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        if self.data_replies:
            return self.data_replies.popleft()
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        for recipient in envelope.rcpt_tos:
            self.received.append(Received(recipient, message, session.ssl is not None, bool(session.authenticated)))
        if self.drop_data_reply:
            self.drops += 1
            server.transport.abort()
            return "421 4.4.2 connection dropped"
        if self.delay_data_reply:
            await asyncio.sleep(self.delay_data_reply)
        return "250 2.0.0 Ok: queued"

    def messages_for(self, recipient: str) -> list[EmailMessage]:
        return [r.message for r in self.received if r.recipient == recipient]

    def distinct_message_ids(self) -> dict[str, set[str]]:
        ids: dict[str, set[str]] = {}
        for r in self.received:
            ids.setdefault(r.recipient, set()).add(r.message["Message-ID"])
        return ids


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MailServer:
    def __init__(self, **options) -> None:
        self.port = free_port()
        self.handler = Recorder()
        self.options = options
        self.controller: Controller | None = None

    def start(self) -> MailServer:
        self.controller = Controller(
            self.handler, hostname="127.0.0.1", port=self.port, server_hostname="mx.test", ready_timeout=10,
            **self.options,
        )
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@contextlib.contextmanager
def serving(**options) -> Iterator[MailServer]:
    """A started MailServer, stopped on the way out: the one way tests run one. The `mail_server`
    fixture (tests/conftest.py) is this for a test; session fixtures and a test that needs the
    server's options (TLS, a size limit) use it directly. `options` go to aiosmtpd's Controller."""
    server = MailServer(**options).start()
    try:
        yield server
    finally:
        server.stop()
