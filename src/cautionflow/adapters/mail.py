"""Outgoing mail: settings, message building and bounded, concurrent delivery with aiosmtplib.

Used for the digests, the officers' review reminders, letters by email and the notices to operations.

* `SmtpSettings` comes from the config's `smtp` section, the password from the environment
  variable it names, and optional overrides from the Airflow Connection `cautionflow_smtp`. The
  password is never in the file, never in a repr and never logged.
* `build_message` writes a MIME message by hand (ASCII, CRLF): text and HTML alternatives and text
  attachments, 7bit where the text allows and quoted-printable otherwise. The `email` package's
  generator costs milliseconds per message; this costs microseconds and the result parses the same.
* `deliver` sends through `max_concurrency` workers, each holding one reused connection. It calls
  `on_accepted(message_id)` as soon as the server accepts a message, and that worker completes no
  other message (sends no final ".") until the call has returned, so the caller records each
  acceptance first: at most one accepted message per connection is ever unrecorded. Meanwhile the
  worker begins its next message (MAIL, RCPT, DATA and the text), so the recording costs no round
  trip of its own. Temporary failures (4xx replies,
  refused or dropped connections, timeouts) are retried with exponential backoff and then given
  back as not permanent; 5xx replies are permanent. One bad recipient never stops the others.
* Provider limits: `max_messages_per_minute` is one `RateLimiter` shared by every connection of a
  `deliver` call (never more than that many messages begun in any 60 s). A throttling reply (421,
  any 4.7.x enhanced status: "452 4.7.0", "421 4.7.0 Try again later", or Exchange Online's
  "432 4.3.2" sender thread limit) is never a failure: every
  connection pauses for the retry delay, the pace is lowered for the rest of the call, and a message
  whose attempts run out stays pending for the task's retry.
* The reply to the end of a message is awaited for `data_timeout` (RFC 5321 4.5.3.2.6: 10
  minutes), not the command timeout. If it still does not come, or the connection drops after
  the final "." went, the server may have the message: that failure is `uncertain` and never
  retried, since a retry is how a slow server got five copies of one digest.
"""

from __future__ import annotations

import asyncio
import binascii
import datetime as dt
import functools
import inspect
import logging
import os
import random
import re
import ssl
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from email.errors import HeaderParseError
from email.header import Header
from email.headerregistry import Address
from email.utils import format_datetime, formataddr, getaddresses, parseaddr
from typing import TYPE_CHECKING, Any

from cautionflow.config import ConfigError

if TYPE_CHECKING:
    import aiosmtplib

    from cautionflow.config import SmtpConfig

log = logging.getLogger(__name__)

SMTP_LINE_LIMIT = 998  # RFC 5321 4.5.3.1.6, without the CRLF
HEADER_LINE_LENGTH = 78  # RFC 5322 2.1.1: longer header lines are folded (email.header's default)


# --- settings -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SmtpSettings:
    """Everything needed to talk to the mail server; the password is excluded from repr."""

    host: str
    port: int
    sender: str
    security: str = "starttls"
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    timeout: float = 30.0
    data_timeout: float = 600.0  # the wait for the reply to the end of a message (RFC 5321 4.5.3.2.6)
    max_concurrency: int = 4
    tls_context: ssl.SSLContext | None = field(default=None, repr=False, compare=False)
    local_hostname: str | None = None
    retry_attempts: int | None = None  # the connection's retry_limit: attempts per message when none is given
    max_messages_per_minute: int | None = None  # the provider's limit across all connections; None: none

    @classmethod
    def from_config(
        cls,
        smtp: SmtpConfig,
        *,
        overrides: Mapping[str, Any] | None = None,
        environ: Mapping[str, str] | None = None,
        tls_context: ssl.SSLContext | None = None,
    ) -> SmtpSettings:
        """The config's settings, overridden by the Airflow connection's (validated again, so a
        connection cannot turn on clear text to a remote host), with the password from the
        connection or else from the environment variable `password_env` names."""
        from pydantic import ValidationError

        from cautionflow.config import SmtpConfig

        overrides = dict(overrides or {})
        environ = os.environ if environ is None else environ
        updates = {
            key: overrides[source]
            for key, source in (("host", "host"), ("port", "port"), ("username", "login"),
                                ("security", "security"), ("sender", "sender"),
                                ("timeout_seconds", "timeout_seconds"), ("allow_insecure", "allow_insecure"),
                                ("max_messages_per_minute", "max_messages_per_minute"))
            if overrides.get(source) not in (None, "")
        }
        if overrides.get("from_email") and "sender" not in updates:
            # The provider's from_email is an address; the file's display name (the landlord's name)
            # is kept in front of it, so residents and contractors still see who writes.
            name, address = parseaddr(str(overrides["from_email"]))
            updates["sender"] = formataddr((name or parseaddr(smtp.sender)[0], address or str(overrides["from_email"])))
        if updates:
            try:
                smtp = SmtpConfig.model_validate({**smtp.model_dump(), **updates})
            except ValidationError as exc:
                first = exc.errors()[0]
                where = ".".join(str(p) for p in first["loc"]) or "smtp"
                raise ConfigError(f"Airflow connection cautionflow_smtp: {where}: {first['msg']}") from None
        password = overrides.get("password") or (environ.get(smtp.password_env) if smtp.password_env else None)
        if smtp.username and not password:
            raise ConfigError(
                f"smtp.username is set but no password was found: set the environment variable "
                f"{smtp.password_env or '(smtp.password_env)'} or the Airflow connection cautionflow_smtp"
            )
        return cls(
            host=smtp.host, port=smtp.port, sender=smtp.sender, security=smtp.security,
            username=smtp.username, password=password or None, timeout=smtp.timeout_seconds,
            data_timeout=smtp.data_timeout_seconds, max_concurrency=smtp.max_concurrency, tls_context=tls_context,
            retry_attempts=overrides.get("retry_attempts"), max_messages_per_minute=smtp.max_messages_per_minute,
        )

    @property
    def sender_address(self) -> str:
        """The envelope sender (MAIL FROM): the address part of `sender`."""
        return parseaddr(self.sender)[1] or self.sender

    @property
    def sender_domain(self) -> str:
        return self.sender_address.rpartition("@")[2] or "localhost"

    def describe(self) -> str:
        """Where mail goes, for logs: never the password."""
        who = f" as {self.username}" if self.username else ""
        return f"{self.host}:{self.port} ({self.security}){who}"


def smtp_settings(
    smtp: SmtpConfig | None, purpose: str, *, needed: bool, overrides: Mapping[str, Any] | None = None,
    tls_context: ssl.SSLContext | None = None,
) -> SmtpSettings | None:
    """The settings a mail step sends `purpose` with: the config's `smtp` section overridden by the
    Airflow connection's; None when there is no smtp section and nothing is due (`needed` False),
    a one-line ConfigError when there is none and mail is due."""
    from cautionflow.config import ConfigError

    if smtp is None:
        if needed:
            raise ConfigError(f"smtp: {purpose} are due but the config has no smtp section to send them with")
        return None
    return SmtpSettings.from_config(smtp, overrides=overrides, tls_context=tls_context)


# --- building messages ----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str  # a text type, e.g. "text/csv"
    text: str


def _one_line(value: str) -> str:
    """Header values never carry CR or LF (header injection) and keep single spaces."""
    return " ".join(str(value).split())


def _header(name: str, value: str) -> str:
    value = _one_line(value)
    if value.isascii() and len(name) + 2 + len(value) <= HEADER_LINE_LENGTH:
        return f"{name}: {value}"  # what Header() gives for a short ASCII value, without its cost
    if value.isascii() and (folded := _fold(f"{name}: {value}")) is not None:
        return folded
    charset = "us-ascii" if value.isascii() else "utf-8"
    encoded = Header(value, charset, header_name=name).encode(linesep="\r\n")
    return f"{name}: {encoded}"


def _fold(line: str) -> str | None:
    """An ASCII header line (single spaces) folded at its spaces into lines of at most
    HEADER_LINE_LENGTH (RFC 5322 2.2.3: unfolding gives the line back), or None when a word is too
    long to fit: Header() folds those. A digest's subject is longer than one line, and Header()'s
    general folding costs about 30 microseconds a message (this: 3)."""
    words = line.split(" ")
    lines, current = [], words[0]  # the header's name: its value's first word stays beside it
    for at, word in enumerate(words[1:]):
        if len(current) + 1 + len(word) <= HEADER_LINE_LENGTH:
            current += " " + word
        elif at == 0:
            return None
        else:
            lines.append(current)
            current = " " + word
        if len(current) > HEADER_LINE_LENGTH:
            return None
    lines.append(current)
    return "\r\n".join(lines)


def _display_name(name: str | None) -> str:
    """A display name on one line: line breaks and tabs as spaces, other control characters (NUL,
    ESC...) and lone surrogates gone, spaces single."""
    import unicodedata

    text = str(name or "")
    if not text.isprintable():
        text = "".join(ch for ch in text if ch.isspace() or unicodedata.category(ch) not in ("Cc", "Cs"))
    return " ".join(text.split())


def safe_address(name: str | None, email: str) -> Address:
    """One mailbox from cleaned parts: never a second address or a header of its own.

    `email` must be exactly one ASCII addr-spec (ValueError otherwise: the caller decides what a
    bad address means). The name is put on one line; a name that cannot be encoded safely (a lone
    surrogate, or one that would not read back as this one mailbox) is dropped to the bare
    address, and logged without the name.
    """
    spec = str(email or "").strip()
    try:
        if not spec or not spec.isascii() or not spec.isprintable() or " " in spec:
            raise ValueError(spec)
        bare = Address(addr_spec=spec)
        if not bare.username or not bare.domain:
            raise ValueError(spec)
    except (ValueError, HeaderParseError, IndexError):
        raise ValueError(f"{spec!r} is not one email address") from None
    display = _display_name(name)
    if not display:
        return bare
    try:
        address = Address(display_name=display, addr_spec=bare.addr_spec)
        header = formataddr((address.display_name, address.addr_spec), charset="utf-8")
        if [spec for _, spec in getaddresses([header])] != [bare.addr_spec]:
            raise ValueError("does not read back as one mailbox")
    except (ValueError, UnicodeError, HeaderParseError):
        log.warning("a display name for an address at %s cannot be encoded safely: sent to the bare address",
                    bare.domain)
        return bare
    return address


def address_header(name: str | None, email: str) -> str:
    """An address header's value (ASCII; a non-ASCII name as an RFC 2047 encoded word), from cleaned parts."""
    address = safe_address(name, email)
    return formataddr((address.display_name, address.addr_spec), charset="utf-8")


# A display name of plain words (letters, digits, & ' + _ -, single spaces) and a dot-atom address
# with a dotted domain: `address_header` gives "name <address>" for these, unquoted and unencoded,
# after about 80 microseconds of the email package's parsers a recipient (this: under 1).
_PLAIN_NAME = re.compile(r"[A-Za-z0-9&'+_-]+(?: [A-Za-z0-9&'+_-]+)*")
_PLAIN_ADDRESS = re.compile(
    r"[A-Za-z0-9_%+-]+(?:\.[A-Za-z0-9_%+-]+)*@[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?"
    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)+"
)


def _address(name: str, email: str) -> str:
    if name and _PLAIN_NAME.fullmatch(name) and _PLAIN_ADDRESS.fullmatch(email):
        return f"{name} <{email}>"
    return address_header(name, email)


@functools.lru_cache(maxsize=64)
def _sender_header(name: str, email: str) -> str:
    """The From header's value: one sender for a whole run of messages, parsed once (a few hundred
    microseconds of the email package's address parser per message otherwise)."""
    return address_header(name, email)


def _crlf(text: str) -> str:
    if "\r" not in text:  # a template's text: LF only, one pass instead of three
        return text.replace("\n", "\r\n")
    return text.replace("\r\n", "\n").replace("\r", "\n").replace("\n", "\r\n")


def _has_long_line(text: str, limit: int = SMTP_LINE_LIMIT) -> bool:
    """A line (between CRLFs) longer than `limit`: each step jumps to the last line break within
    the next `limit` + 2 characters (a row of a digest is a line: a few steps for 70 KiB, not a
    list of every line)."""
    window = limit + 2  # a line of `limit` characters and its CRLF
    position, end = 0, len(text)
    while end - position > limit:
        cut = text.rfind("\r\n", position, position + window)
        if cut == -1:
            return True
        position = cut + 2
    return False


def _body(text: str) -> tuple[str, str]:
    """(Content-Transfer-Encoding, encoded body): 7bit when ASCII with short lines, else quoted-printable."""
    text = _crlf(text)
    if text.isascii() and not _has_long_line(text):
        return "7bit", text
    encoded = binascii.b2a_qp(text.encode("utf-8"), istext=True).decode("ascii")
    # Text with CRLF line ends gives CRLF line ends, soft breaks included (binascii follows the
    # first line end it meets): counting says so in two passes, normalising again costs three.
    if encoded.count("\n") != encoded.count("\r\n"):
        encoded = _crlf(encoded)
    return "quoted-printable", encoded


def _part(content_type: str, text: str, extra: Sequence[str] = ()) -> tuple[list[str], str]:
    cte, body = _body(text)
    headers = [f'Content-Type: {content_type}; charset="utf-8"', *extra, f"Content-Transfer-Encoding: {cte}"]
    return headers, body


def _multipart(subtype: str, parts: Sequence[tuple[list[str], str]]) -> tuple[list[str], str]:
    while True:
        boundary = f"=_cf_{random.getrandbits(96):024x}"  # only has to be absent from the parts (checked)
        if not any(boundary in body for _, body in parts):
            break
    chunks = []  # joined once: a digest's parts are tens of kilobytes, each copy counts
    for headers, body in parts:
        chunks += (f"--{boundary}\r\n", "\r\n".join(headers), "\r\n\r\n", body, "\r\n")
    chunks.append(f"--{boundary}--\r\n")
    return [f'Content-Type: multipart/{subtype}; boundary="{boundary}"'], "".join(chunks)


def build_message(
    *,
    sender: str,
    to_name: str,
    to_email: str,
    subject: str,
    message_id: str,
    date: dt.datetime,
    text: str,
    html: str | None = None,
    attachments: Sequence[Attachment] = (),
    headers: Mapping[str, str] | None = None,
) -> str:
    """A complete RFC 5322 message (ASCII, CRLF line ends) ready for the outbox and for SMTP."""
    body = _part("text/plain", text)
    if html is not None:
        # Non-ASCII as character references keeps the HTML 7bit (smaller, and one line per row).
        if not html.isascii():
            html = html.encode("ascii", "xmlcharrefreplace").decode()
        body = _multipart("alternative", [body, _part("text/html", html)])
    if attachments:
        files = [
            _part(
                a.content_type,
                a.text,
                [f'Content-Disposition: attachment; filename="{_one_line(a.filename).replace(chr(34), "")}"'],
            )
            for a in attachments
        ]
        body = _multipart("mixed", [body, *files])
    sender_name, sender_address = parseaddr(sender)
    lines = [
        f"From: {_sender_header(sender_name, sender_address or sender)}",
        f"To: {_address(to_name, to_email)}",
        _header("Subject", subject),
        f"Date: {format_datetime(date)}",
        f"Message-ID: {_one_line(message_id)}",
        "MIME-Version: 1.0",
        *(_header(k, v) for k, v in (headers or {}).items()),
        *body[0],
    ]
    return "\r\n".join(lines) + "\r\n\r\n" + body[1]


# --- delivery -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    message_id: str
    recipients: tuple[str, ...]
    data: bytes


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Attempts per message and the exponential backoff between them (jittered)."""

    attempts: int = 4
    initial_delay: float = 1.0
    max_delay: float = 30.0
    factor: float = 2.0

    def delay(self, attempt: int) -> float:
        base = min(self.max_delay, self.initial_delay * self.factor ** (attempt - 1))
        return base * random.uniform(0.5, 1.0)


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    message_id: str
    permanent: bool
    reply: str
    attempts: int
    # The whole message went and no reply came: the server may have it. Not retried; the caller
    # marks it so that only a person resends it.
    uncertain: bool = False


@dataclass(frozen=True)
class DeliveryReport:
    accepted: tuple[str, ...]
    failures: tuple[DeliveryFailure, ...]

    @property
    def permanent(self) -> tuple[DeliveryFailure, ...]:
        return tuple(f for f in self.failures if f.permanent)

    @property
    def temporary(self) -> tuple[DeliveryFailure, ...]:
        return tuple(f for f in self.failures if not f.permanent and not f.uncertain)

    @property
    def uncertain(self) -> tuple[DeliveryFailure, ...]:
        return tuple(f for f in self.failures if f.uncertain)


OnAccepted = Callable[[str], Awaitable[None] | None]
OnFailed = Callable[[DeliveryFailure], Awaitable[None] | None]


class _RecordingFailed(Exception):
    """`on_accepted` raised (the caller could not record an acceptance): carried past the worker's
    handling of mail errors, which would take an OSError or a ValueError for a failed send, and
    re-raised as itself by `deliver`."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class _NoReply(Exception):
    """The message was sent to its final "." and no reply came: the server may have it."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.reply = reply


class _SetupFailed(Exception):
    """The connection (connect, TLS, EHLO, AUTH) could not be set up."""

    def __init__(self, reply: str, *, retryable: bool, throttled: bool = False) -> None:
        super().__init__(reply)
        self.reply = reply
        self.retryable = retryable
        self.throttled = throttled  # "421 4.7.0 too many connections": slow down, then try again


def describe_smtp_error(exc: BaseException) -> str:
    """The server's reply (`550 5.1.1 ...`) or the error, on one line; never a credential."""
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return "; ".join(describe_smtp_error(r) for r in exc.recipients) or "all recipients refused"
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _one_line(f"{exc.code} {exc.message}")
    text = _one_line(str(exc))
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


# RFC 3463's enhanced status at the start of a reply's text: class.subject.detail.
_ENHANCED_STATUS = re.compile(r"\s*(\d)\.(\d{1,3})\.(\d{1,3})\b")


def _throttling_reply(code: int, message: str) -> bool:
    """421 (RFC 5321 4.2.3: the service is closing the channel, try later), a 4.7.x enhanced status
    (RFC 3463 3.8, security or policy status, persistent transient: Exchange Online's "4.7.0 ...
    rate limited" and its kin), whatever the basic code beside it, or Exchange Online's "432 4.3.2
    STOREDRV.ClientSubmit; sender thread limit exceeded" (too many connections or messages at once
    from one mailbox: RFC 3463's 4.3.2, system not accepting network messages, for now)."""
    status = _ENHANCED_STATUS.match(message or "")
    if code in (421, 432):
        return True
    return status is not None and (status.group(1, 2) == ("4", "7") or status.group(1, 2, 3) == ("4", "3", "2"))


def is_throttling(exc: BaseException) -> bool:
    """The server asks us to slow down: a 421, 432, 4.7.x or 4.3.2 reply (to a command, or to every recipient)."""
    import aiosmtplib

    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return bool(exc.recipients) and any(_throttling_reply(r.code, r.message) for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return _throttling_reply(exc.code, exc.message)
    return False


def is_permanent(exc: BaseException) -> bool:
    """5xx replies are permanent; 4xx, dropped or refused connections and timeouts are temporary.
    Throttling (`is_throttling`) is never permanent, even beside a 5xx code."""
    import aiosmtplib

    if is_throttling(exc):
        return False
    if isinstance(exc, aiosmtplib.SMTPRecipientsRefused):
        return all(r.code >= 500 for r in exc.recipients)
    if isinstance(exc, aiosmtplib.SMTPResponseException):
        return exc.code >= 500
    # An address the client refuses to send (not ASCII, malformed) will never go.
    return isinstance(exc, ValueError | UnicodeError)


class _Connection:
    """One worker's reused SMTP connection, opened on first use and after a drop."""

    def __init__(self, settings: SmtpSettings) -> None:
        self.settings = settings
        self.client: aiosmtplib.SMTP | None = None

    async def ready(self) -> aiosmtplib.SMTP:
        import aiosmtplib

        if self.client is not None and self.client.is_connected:
            return self.client
        await self.close()
        s = self.settings
        client = aiosmtplib.SMTP(
            hostname=s.host, port=s.port, timeout=s.timeout, use_tls=s.security == "tls",
            start_tls=s.security == "starttls", tls_context=s.tls_context, local_hostname=s.local_hostname,
        )
        try:
            await client.connect()
            if s.username:
                await client.login(s.username, s.password or "")
        except (aiosmtplib.SMTPAuthenticationError, aiosmtplib.SMTPNotSupported, ssl.SSLCertVerificationError) as exc:
            await _abandon(client)
            # "454 4.7.0 Temporary authentication failure" is the server busy, not a wrong password.
            throttled = is_throttling(exc)
            raise _SetupFailed(describe_smtp_error(exc), retryable=throttled, throttled=throttled) from None
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as exc:
            await _abandon(client)
            raise _SetupFailed(describe_smtp_error(exc), retryable=True, throttled=is_throttling(exc)) from None
        self.client = client
        return client

    async def close(self, *, polite: bool = True) -> None:
        client, self.client = self.client, None
        if client is None:
            return
        if polite and client.is_connected:
            try:
                await asyncio.wait_for(client.quit(), timeout=min(5.0, self.settings.timeout))
                return
            except Exception:  # noqa: BLE001 - closing anyway
                pass
        await _abandon(client)


async def _abandon(client: aiosmtplib.SMTP) -> None:
    try:
        client.close()
    except Exception:  # noqa: BLE001 - it is already broken
        pass


def _wire_data(data: bytes) -> bytes:
    """The message as DATA sends it, before the final ".": line ends CRLF, a CRLF at the end, and
    each line starting with "." dot-stuffed (RFC 5321 4.5.2). The same bytes aiosmtplib's own
    helpers give, in less than half their time: their two regular-expression passes cost about
    0.6 ms for a 27 KiB digest, in the one thread that also sends. A built message is CRLF already
    (counting its line ends says so: the line-end pass is skipped), and the stuffing is a plain
    replace of "\n." (a digest's style sheet has lines starting with ".")."""
    from aiosmtplib.protocol import normalize_message_line_endings

    crlf = data.count(b"\r\n")
    if data.count(b"\n") != crlf or data.count(b"\r") != crlf:  # a bare CR or LF somewhere
        data = normalize_message_line_endings(data)
    elif not data.endswith(b"\r\n"):
        data += b"\r\n"
    if b"\n." in data:
        data = data.replace(b"\n.", b"\n..")
    if data.startswith(b"."):
        data = b"." + data
    return data


async def _data(client: aiosmtplib.SMTP, data: bytes, *, data_timeout: float,
                before_end: Callable[[], Awaitable[None]] | None = None) -> None:
    """DATA with RFC 5321's two waits (4.5.3.2): the reply to the command itself within the command
    timeout, like any command, and the reply to the end of the message within `data_timeout`.
    aiosmtplib's `SMTP.data` uses one timeout for both and cannot say which one expired; only the
    second means the server may have the message, so this sends DATA with `execute_command` and the
    message with the client's protocol (dot-stuffed and CRLF as aiosmtplib's own helpers do: `_wire_data`).
    `before_end` is awaited after the text and before the final ".": the connection's previous
    acceptance being recorded (`deliver`). If it raises, the connection is dropped without the
    final ".", so the server discards this message (RFC 5321 4.1.1.4: a transaction is only
    complete at the end of its data) and the error propagates.
    Raises `_NoReply` once the message has gone and its reply did not come."""
    import aiosmtplib

    start = await client.execute_command(b"DATA")
    if start.code != aiosmtplib.SMTPStatus.start_input:
        raise aiosmtplib.SMTPDataError(start.code, start.message)
    protocol = client.protocol
    if protocol is None:
        raise aiosmtplib.SMTPServerDisconnected("Connection lost")
    if before_end is None:
        protocol.write(_wire_data(data) + b".\r\n")
    else:
        protocol.write(_wire_data(data))
        try:
            await before_end()
        except BaseException:
            client.close()  # mid-message: no QUIT (it would be read as text), and no final "."
            raise
        protocol.write(b".\r\n")  # SMTPServerDisconnected if it dropped meanwhile: the message never ended
    try:
        reply = await protocol.read_response(timeout=data_timeout)
    except (aiosmtplib.SMTPServerDisconnected, aiosmtplib.SMTPTimeoutError, OSError) as exc:
        client.close()  # a reply may still arrive: this connection can never be trusted again
        raise _NoReply(f"no reply to the end of the message ({describe_smtp_error(exc)}); "
                       "the server may have accepted it") from None
    if reply.code != aiosmtplib.SMTPStatus.completed:
        raise aiosmtplib.SMTPDataError(reply.code, reply.message)


async def _transaction(client: aiosmtplib.SMTP, sender: str, message: OutgoingMessage, *, data_timeout: float,
                       before_end: Callable[[], Awaitable[None]] | None = None) -> None:
    """MAIL, RCPT and DATA, as `SMTP.sendmail` does, minus its re-normalising of the whole message
    to compute SIZE: built messages are already CRLF, so their size is their length. `before_end`:
    see `_data`."""
    import aiosmtplib

    options = [f"SIZE={len(message.data)}"] if client.supports_extension("size") else []
    try:
        await client.mail(sender, options=options)
        refused = []
        for recipient in message.recipients:
            try:
                await client.rcpt(recipient)
            except aiosmtplib.SMTPRecipientRefused as exc:
                refused.append(exc)
        if len(refused) == len(message.recipients):
            raise aiosmtplib.SMTPRecipientsRefused(refused)
        await _data(client, message.data, data_timeout=data_timeout, before_end=before_end)
    except (aiosmtplib.SMTPResponseException, aiosmtplib.SMTPRecipientsRefused):
        try:  # leave the connection ready for the next message
            await client.rset()
        except (ConnectionError, aiosmtplib.SMTPException):
            pass
        raise


async def _call(callback: Callable[..., Any], *args: Any) -> None:
    result = callback(*args)
    if inspect.isawaitable(result):
        await result


class RateLimiter:
    """At most `per_minute` messages begun in any `window` seconds, shared by every connection of one
    `deliver` call; None is no limit. A sliding window, not a token bucket: a full bucket refilling
    as it empties lets nearly twice the limit through in one minute, and a provider counts minutes.

    `throttled(delay)` is the server asking us to slow down: every connection waits `delay` (the
    retry policy's) before its next message, and the pace is lowered for the rest of the call:
    messages begin at least `delay` apart (the longest such delay yet), and a configured limit is
    halved (at least one a window), once per pause however many connections report it. Without a
    configured limit only the spacing slows it, so a greylisting relay's one 421 costs seconds, not
    minutes.

    Time is an input: `monotonic` and `sleep` default to the event loop's real ones (durations, not
    dates: no wall clock is read); tests pass a fake clock.
    """

    def __init__(
        self,
        per_minute: int | None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
        window: float = 60.0,
    ) -> None:
        if per_minute is not None and per_minute < 1:
            raise ValueError(f"per_minute must be at least 1, got {per_minute}")
        self.limit = per_minute
        self.window = window
        self.spacing = 0.0  # the least time between two messages' starts; raised by throttling
        self._monotonic, self._sleep = monotonic, sleep
        self._starts: deque[float] = deque()  # when each message of the last window began, oldest first
        self._paused_until = float("-inf")
        self._lock = asyncio.Lock()  # one waiter computes at a time: no two take the same free slot

    def _recent(self, now: float) -> int:
        while self._starts and now - self._starts[0] >= self.window:
            self._starts.popleft()
        return len(self._starts)

    async def acquire(self) -> None:
        """Wait until one more message may begin, and count it."""
        async with self._lock:
            while True:
                now = self._monotonic()
                wait = self._paused_until - now
                recent = self._recent(now)
                if recent and self.spacing:
                    wait = max(wait, self._starts[-1] + self.spacing - now)
                if self.limit is not None and recent >= self.limit:
                    # The slot frees when enough of the oldest starts have left the window.
                    wait = max(wait, self._starts[recent - self.limit] + self.window - now)
                if wait <= 0:
                    self._starts.append(now)
                    return
                await self._sleep(wait)

    def throttled(self, delay: float) -> None:
        """The server said slow down: pause every connection for `delay` and lower the pace."""
        now = self._monotonic()
        if now >= self._paused_until:  # the first report of this pause: the others lower nothing more
            self.spacing = max(self.spacing, delay)
            if self.limit is not None:
                self.limit = max(1, self.limit // 2)
            log.warning("mail server is throttling: all connections pause %.1f s, then send %.1f s apart%s",
                        delay, self.spacing, f", at most {self.limit} a minute" if self.limit else "")
        self._paused_until = max(self._paused_until, now + delay)


class MessageQueue:
    """Messages handed to `deliver` while it runs: a producer can compose the next ones while the
    first are being sent. `close()` says no more are coming."""

    def __init__(self) -> None:
        self._queue: asyncio.Queue[OutgoingMessage | None] = asyncio.Queue()

    def put(self, message: OutgoingMessage) -> None:
        self._queue.put_nowait(message)

    def close(self) -> None:
        self._queue.put_nowait(None)

    async def get(self) -> OutgoingMessage | None:
        message = await self._queue.get()
        if message is None:
            self._queue.put_nowait(None)  # every worker sees the end
        return message


async def deliver(
    settings: SmtpSettings,
    messages: Sequence[OutgoingMessage] | MessageQueue,
    *,
    on_accepted: OnAccepted,
    on_failed: OnFailed,
    retry: RetryPolicy | None = None,
    monotonic: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
) -> DeliveryReport:
    """Send every message once, through at most `settings.max_concurrency` reused connections,
    never beginning more than `settings.max_messages_per_minute` in any minute across them all.
    `monotonic` and `sleep` time the pace and the backoff (real by default; tests pass fakes).

    `messages` is a list, or a `MessageQueue` still being filled (delivery ends when it is closed).
    An exception raised by a callback (the caller could not record an outcome) stops every worker
    and propagates: sending more without recording what was sent is worse than stopping.
    """
    import aiosmtplib

    retry = retry or (RetryPolicy(attempts=settings.retry_attempts) if settings.retry_attempts else RetryPolicy())
    if isinstance(messages, MessageQueue):
        queue, workers = messages, settings.max_concurrency
    else:
        if not messages:
            return DeliveryReport((), ())
        queue, workers = MessageQueue(), min(settings.max_concurrency, len(messages))
        for message in messages:
            queue.put(message)
        queue.close()
    accepted: list[str] = []
    failures: list[DeliveryFailure] = []
    pace = RateLimiter(settings.max_messages_per_minute, monotonic=monotonic, sleep=sleep)
    unavailable: list[str] = []  # set once the server cannot be reached at all: stop trying

    async def fail(
        message: OutgoingMessage, *, permanent: bool, reply: str, attempts: int, uncertain: bool = False
    ) -> None:
        failure = DeliveryFailure(message.message_id, permanent, reply, attempts, uncertain)
        failures.append(failure)
        log.warning(
            "mail %s to %s %s after %d attempt(s): %s", message.message_id, ", ".join(message.recipients),
            "uncertain" if uncertain else "failed" if permanent else "deferred", attempts, reply,
        )
        await _call(on_failed, failure)

    async def send_one(connection: _Connection, message: OutgoingMessage,
                       recording: asyncio.Future[None] | None) -> asyncio.Future[None] | None:
        """Send `message`; `recording` is this connection's previous acceptance being recorded,
        awaited before this message's final "." (or before anything else is reported). Returns
        this message's recording, if it was accepted."""

        async def recorded() -> None:
            nonlocal recording
            if recording is not None:
                done, recording = recording, None
                await done

        async def give_up(**outcome: Any) -> None:
            await recorded()  # the previous acceptance on record before this message's failure
            await fail(message, **outcome)

        for attempt in range(1, retry.attempts + 1):
            if unavailable:
                await give_up(permanent=False, reply=f"not attempted: {unavailable[0]}", attempts=attempt - 1)
                return None
            await pace.acquire()  # before connecting: a connection idle through a long wait is checked after it
            try:
                client = await connection.ready()
            except _SetupFailed as exc:
                if not exc.retryable or attempt == retry.attempts:
                    unavailable.append(f"{settings.host}:{settings.port}: {exc.reply}")
                    await give_up(permanent=False, reply=exc.reply, attempts=attempt)
                    return None
                if exc.throttled:
                    pace.throttled(retry.delay(attempt))  # every connection waits, in pace.acquire
                else:
                    await sleep(retry.delay(attempt))
                continue
            try:
                await _transaction(client, settings.sender_address, message, data_timeout=settings.data_timeout,
                                   before_end=recorded)
            except _NoReply as exc:
                await connection.close(polite=False)
                await give_up(permanent=False, reply=exc.reply, attempts=attempt, uncertain=True)
                return None  # never again by itself: the recipient may have it already
            except (aiosmtplib.SMTPException, OSError, TimeoutError, ValueError, UnicodeError) as exc:
                replied = isinstance(exc, aiosmtplib.SMTPResponseException | aiosmtplib.SMTPRecipientsRefused)
                if not replied or not client.is_connected:  # a refusal leaves the connection usable
                    await connection.close(polite=False)
                if is_permanent(exc):  # never a throttling reply: that only ever waits
                    await give_up(permanent=True, reply=describe_smtp_error(exc), attempts=attempt)
                    return None
                if attempt == retry.attempts:  # pending: the task's retry, or the next run, sends it
                    await give_up(permanent=False, reply=describe_smtp_error(exc), attempts=attempt)
                    return None
                if is_throttling(exc):
                    pace.throttled(retry.delay(attempt))  # every connection waits, in pace.acquire
                else:
                    await sleep(retry.delay(attempt))
                continue
            accepted.append(message.message_id)
            # Recorded while this worker begins its next message, which it will not end until then.
            return _record(on_accepted, message.message_id)
        return None

    async def worker() -> None:
        connection = _Connection(settings)  # opened with the first message this worker takes
        recording: asyncio.Future[None] | None = None  # the last acceptance, being recorded
        try:
            while (message := await queue.get()) is not None:
                recording = await send_one(connection, message, recording)
            if recording is not None:
                await recording
        finally:
            if recording is not None:  # stopped early: let the recording finish, whatever its outcome
                if not recording.done():
                    await asyncio.wait([recording])
                if not recording.cancelled():
                    recording.exception()  # seen: another worker's error is the one that propagates
            await connection.close()

    log.info("sending via %s with up to %d connection(s)%s", settings.describe(), workers,
             f", at most {pace.limit} message(s) a minute" if pace.limit else "")
    tasks = [asyncio.create_task(worker()) for _ in range(workers)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if (error := task.exception()) is not None:
                raise error.error if isinstance(error, _RecordingFailed) else error
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    return DeliveryReport(tuple(accepted), tuple(failures))


def _record(on_accepted: OnAccepted, message_id: str) -> asyncio.Future[None] | None:
    """Call `on_accepted` now (a plain function returns at once); what it returns to await, if
    anything, is awaited as a task, returned. A failure either way is `_RecordingFailed`."""
    try:
        result = on_accepted(message_id)
    except Exception as exc:
        raise _RecordingFailed(exc) from exc
    if not inspect.isawaitable(result):
        return None

    async def awaited() -> None:
        try:
            await result
        except Exception as exc:
            raise _RecordingFailed(exc) from exc

    return asyncio.ensure_future(awaited())
