"""Notices to the operations recipients that must reach each of them once a day, whatever reruns.

Used by the daily run summary and the late-sync notice: through the outbox (kind `operations`),
keyed per recipient, day and content, so a retry or a rerun sends nothing twice and one the server
did not take waits, pending, for the task's retry. Such a notice names no alert, so it writes no
disclosure log entries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from cautionflow.adapters.mail import build_message
from cautionflow.adapters.outbox import Outbox, QueuedMessage
from cautionflow.clock import Clock, system_clock
from cautionflow.domain.digests import idempotency_key, message_id
from cautionflow.services.outbox_delivery import send_outstanding

if TYPE_CHECKING:
    from cautionflow.adapters.mail import RetryPolicy, SmtpSettings
    from cautionflow.adapters.register import Register
    from cautionflow.config import Recipient

KIND = "operations"


@dataclass(frozen=True)
class OnceADay:
    """What became of one notice to the operations recipients for one day."""

    queued: int
    sent: int
    already_sent: int
    failed: int
    waiting: list[dict[str, str]]


async def send_to_operations_once_a_day(
    register: Register, settings: SmtpSettings, operations: Sequence[Recipient], *, as_of: dt.date, run_id: str,
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
    outbox = Outbox(register.engine)
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
