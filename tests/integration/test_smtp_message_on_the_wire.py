"""The bytes `deliver` sends after DATA (issue 15, "Speed"): line ends made CRLF and lines starting
with "." dot-stuffed (RFC 5321 4.5.2) only when the message needs it, skipping aiosmtplib's two
regular-expression passes for the usual CRLF digest. The result must be exactly aiosmtplib's own,
and what the server stores must be the message as built, whatever its line ends and dots.

Policy: the policies README's "Safety first" principle: a digest cut short at a line holding a
lone "." (the end of DATA) would silently drop the rows after it, the warnings operatives rely on.
"""

from __future__ import annotations

import asyncio
import random

import pytest
from aiosmtplib.protocol import PERIOD_REGEX, normalize_message_line_endings

from cautionflow.adapters.mail import OutgoingMessage, SmtpSettings, _wire_data, deliver


def aiosmtplib_wire(data: bytes) -> bytes:
    """What aiosmtplib's own `SMTP.data` sends before the final "."."""
    return PERIOD_REGEX.sub(b"..", normalize_message_line_endings(data))


@pytest.mark.parametrize(
    "data",
    [
        b"", b".", b"\r\n", b"\n", b"\r", b"a", b"a\r\nb\r\n", b"a\r\nb", b"a\nb\n", b"a\rb\r",
        b".a\r\n.\r\n..b\r\n", b"a\r\n.\r\nb\r\n", b"a\n.\nb", b"a\r.b\r\n", b"\r\r\n\n", b"x\r\n\r\n.",
    ],
)
def test_the_bytes_are_aiosmtplibs_own(data):
    assert _wire_data(data) == aiosmtplib_wire(data)


def test_the_bytes_are_aiosmtplibs_own_for_any_mix_of_line_ends_and_dots():
    pick = random.Random(15)
    for _ in range(5000):
        data = bytes(pick.choice(b"ab.\r\n") for _ in range(pick.randrange(0, 24)))
        assert _wire_data(data) == aiosmtplib_wire(data), data


def test_a_built_message_passes_through_unchanged_but_for_its_dots():
    built = b"Subject: s\r\n\r\n<tr><td>EW1 2AB</td></tr>\r\n" * 3
    assert _wire_data(built) is built  # nothing to change: not even copied


def message(message_id: str, body: bytes) -> OutgoingMessage:
    head = f"From: alerts@example.org\r\nTo: rota@contractor.example\r\nSubject: Digest\r\nMessage-ID: {message_id}\r\n"
    return OutgoingMessage(message_id, ("rota@contractor.example",), head.encode() + b"\r\n" + body)


def test_the_server_stores_each_message_as_built_whatever_its_line_ends_and_dots(mail_server):
    bodies = {
        "<crlf@example.org>": b"Row one\r\nRow two\r\n",
        # A lone "." would end DATA early and drop the rows after it, unless dot-stuffed.
        "<dots@example.org>": b"Row one\r\n.\r\n.hidden\r\n..two\r\nRow after the dots\r\n",
        "<bare@example.org>": b"Row one\n.\nRow after a bare LF dot\nlast line without an end",
    }
    settings = SmtpSettings(host="127.0.0.1", port=mail_server.port, sender="alerts@example.org", security="none")
    accepted: list[str] = []
    report = asyncio.run(deliver(
        settings, [message(mid, body) for mid, body in bodies.items()],
        on_accepted=accepted.append, on_failed=lambda failure: None,
    ))

    assert sorted(report.accepted) == sorted(bodies) and not report.failures
    stored = {r.message["Message-ID"]: r.message.get_payload() for r in mail_server.handler.received}
    assert stored == {
        "<crlf@example.org>": "Row one\r\nRow two\r\n",
        "<dots@example.org>": "Row one\r\n.\r\n.hidden\r\n..two\r\nRow after the dots\r\n",
        "<bare@example.org>": "Row one\r\n.\r\nRow after a bare LF dot\r\nlast line without an end\r\n",
    }
