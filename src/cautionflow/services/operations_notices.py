"""Notices to the operations recipients.

Those that must reach each of them once a day, whatever reruns (the daily run summary, the
late-sync notice): through the outbox (kind `operations`), keyed per recipient, day and content,
so a retry or a rerun sends nothing twice and one the server did not take waits, pending, for the
task's retry. A task's failure notice goes directly (`send_operations_notice`). Such a notice names
no alert, so it writes no disclosure log entries.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

from cautionflow.adapters.mail import build_message
from cautionflow.adapters.outbox import QueuedMessage
from cautionflow.clock import Clock, system_clock
from cautionflow.domain.digests import idempotency_key, message_id
from cautionflow.services.outbox_delivery import send_outstanding

if TYPE_CHECKING:
    from cautionflow.adapters.mail import DeliveryReport, RetryPolicy, SmtpSettings
    from cautionflow.adapters.outbox import Outbox
    from cautionflow.config import Recipient

KIND = "operations"
log = logging.getLogger(__name__)


class NoticeRegister(Protocol):
    """A notice to operations needs only the register's outbox."""

    outbox: Outbox


@dataclass(frozen=True)
class OnceADay:
    """What became of one notice to the operations recipients for one day."""

    queued: int
    sent: int
    already_sent: int
    failed: int
    waiting: list[dict[str, str]]


async def send_to_operations_once_a_day(
    register: NoticeRegister, settings: SmtpSettings, operations: Sequence[Recipient], *, as_of: dt.date, run_id: str,
    content: str, subject: str, text: str, header_kind: str, retry: RetryPolicy | None = None,
    clock: Clock = system_clock,
) -> OnceADay:
    """One notice per operations recipient, day and `content` (e.g. the summary, the late sync),
    through the outbox: a rerun sends nothing twice, and one the server did not take waits, pending,
    for the task's retry. No disclosure log entries: such a notice names no alert."""
    now = clock()
    messages = []
    for recipient in operations:
        key = idempotency_key(KIND, recipient.name, recipient.email, as_of, content)
        mid = message_id(KIND, key, as_of, settings.sender_domain)
        messages.append(QueuedMessage(
            idempotency_key=key, kind=KIND, recipient_name=recipient.name, recipient_email=recipient.email,
            recipient_role=recipient.role, as_of=as_of, content_hash=content, message_id=mid, subject=subject,
            message=build_message(
                sender=settings.sender, to_name=recipient.name, to_email=recipient.email, subject=subject,
                message_id=mid, date=now, text=text,
                headers={"Auto-Submitted": "auto-generated", "X-Cautionflow-Kind": header_kind},
            ),
            current_ids=(),
        ))
    outbox = register.outbox
    try:
        keys = [m.idempotency_key for m in messages]
        already = sum(1 for s in outbox.states(keys).values() if s.status == "sent")
        queued = len(outbox.enqueue(messages, run_id=run_id, now=now))
        sent = await send_outstanding(outbox, settings, KIND, retry=retry, clock=clock)
        states = outbox.states(keys)
    finally:
        outbox.close()
    outstanding = [s for s in states.values() if s.status != "sent"]
    return OnceADay(
        queued=queued, sent=sent, already_sent=already,
        failed=sum(1 for s in outstanding if s.status == "failed"),
        waiting=[{"recipient": s.recipient_name, "status": s.status, "error": s.last_error or ""} for s in outstanding],
    )


# --- notices sent directly -------------------------------------------------------------------------

FAILURE_NOTICE_RETRY = (3, 1.0, 5.0)  # attempts, initial and maximum backoff (seconds)
FAILURE_NOTICE_TIMEOUT = 15.0  # seconds per SMTP operation: a callback must not hang the worker


async def send_operations_notice(
    settings: SmtpSettings, operations: Sequence[Recipient], *, subject: str, text: str, kind: str, what: str,
    clock: Clock = system_clock,
) -> DeliveryReport:
    """A plain-text notice to each operations recipient, sent directly, not through the outbox: a
    task's failure, or a late sync when there is no register to keep an outbox in. Such a notice is
    not a disclosure, and must go even when the register is what is broken; a short retry and
    timeout, because the caller is an Airflow callback that must not hang the worker."""
    import dataclasses
    import uuid

    from cautionflow.adapters.mail import OutgoingMessage, RetryPolicy, deliver

    settings = dataclasses.replace(settings, timeout=min(settings.timeout, FAILURE_NOTICE_TIMEOUT),
                                   data_timeout=min(settings.data_timeout, FAILURE_NOTICE_TIMEOUT))
    now = clock()
    messages = []
    label = kind.removeprefix("operations-")
    for recipient in operations:
        mid = f"<cautionflow.{label}.{uuid.uuid4().hex}@{settings.sender_domain}>"
        data = build_message(
            sender=settings.sender, to_name=recipient.name, to_email=recipient.email, subject=subject,
            message_id=mid, date=now, text=text, headers={"X-Cautionflow-Kind": kind},
        )
        messages.append(OutgoingMessage(mid, (recipient.email,), data.encode("ascii")))
    attempts, initial, most = FAILURE_NOTICE_RETRY
    report = await deliver(
        settings, messages, on_accepted=lambda _id: None, on_failed=lambda _failure: None,
        retry=RetryPolicy(attempts=attempts, initial_delay=initial, max_delay=most),
    )
    for failure in report.failures:
        log.warning("operations %s not sent (%s): %s", what, failure.message_id, failure.reply)
    if report.accepted:
        log.info("operations %s sent to %d recipient(s): %s", what, len(report.accepted), subject)
    return report
