"""Sending what the outbox holds for one kind of message (reminders, letters by email).

The digests have their own, overlapped version of this loop (`services.digests`) because they
compose and send a thousand messages at once; these kinds are few, so the plain loop serves.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.mail import OutgoingMessage, build_message, deliver
from cautionflow.adapters.outbox import QueuedMessage
from cautionflow.clock import Clock, system_clock
from cautionflow.domain.digests import idempotency_key, message_id

if TYPE_CHECKING:
    from cautionflow.adapters.mail import DeliveryFailure, DeliveryReport, RetryPolicy, SmtpSettings
    from cautionflow.adapters.outbox import Outbox
    from cautionflow.config import Recipient


def officer_lists(
    kind: str, recipients: Sequence[Recipient], *, template: str, values: dict[str, Any], content: str,
    subject: str, alert_ids: Sequence[str], as_of: dt.date, sender: str, sender_domain: str,
    render: Callable[..., str], now: dt.datetime,
) -> list[QueuedMessage]:
    """One list per recipient and day for the officers (the review reminder, the appeals list): the
    text and HTML of `template` (`.txt`, `.html`), keyed per recipient, day and `content`, so a rerun
    finds the same key and sends nothing twice. The disclosure log records each alert the list names
    to whom (`alert_ids`)."""
    messages = []
    for recipient in recipients:
        key = idempotency_key(kind, recipient.name, recipient.email, as_of, content)
        mid = message_id(kind, key, as_of, sender_domain)
        text = render(f"{template}.txt", recipient=recipient.name, **values)
        html = render(f"{template}.html", recipient=recipient.name, **values)
        messages.append(QueuedMessage(
            idempotency_key=key, kind=kind, recipient_name=recipient.name, recipient_email=recipient.email,
            recipient_role=recipient.role, as_of=as_of, content_hash=content, message_id=mid, subject=subject,
            message=build_message(
                sender=sender, to_name=recipient.name, to_email=recipient.email, subject=subject, message_id=mid,
                date=now, text=text, html=html, headers={"Auto-Submitted": "auto-generated"},
            ),
            current_ids=tuple(alert_ids),
        ))
    return messages


async def send_outstanding(
    outbox: Outbox, settings: SmtpSettings, kind: str, *, retry: RetryPolicy | None, clock: Clock = system_clock
) -> int:
    """Send every pending message of `kind` (one run at a time); returns how many were accepted.

    Acceptance is recorded (with the disclosures) before the next message is completed; temporary failures
    stay pending for the next run, permanent ones are marked failed with the server's reply, and
    one the server never answered after receiving it all is marked uncertain (never resent)."""
    report = await deliver_outstanding(outbox, settings, kind, retry=retry, clock=clock)
    return len(report.accepted) if report is not None else 0


def failure_mark(outbox: Outbox, failure: DeliveryFailure):
    """The outbox state a delivery failure leaves its message in: `uncertain` (the server may have
    it: only a person resends it), `failed` (refused for good) or `pending` (try again later)."""
    if failure.uncertain:
        return outbox.mark_uncertain
    return outbox.mark_failed if failure.permanent else outbox.mark_pending


async def deliver_outstanding(
    outbox: Outbox, settings: SmtpSettings, kind: str, *, retry: RetryPolicy | None, clock: Clock = system_clock
) -> DeliveryReport | None:
    """As `send_outstanding`, with the whole report; None when another run is delivering."""
    if not outbox.acquire_delivery_lock(kind):
        return None
    try:
        claimed = {m.message_id: m for m in outbox.claim(kind, now=clock())}

        def on_accepted(accepted_id: str) -> None:
            outbox.mark_sent(claimed[accepted_id], at=clock())

        def on_failed(failure: DeliveryFailure) -> None:
            failure_mark(outbox, failure)(failure.message_id, failure.reply, now=clock())

        return await deliver(
            settings,
            [OutgoingMessage(m.message_id, (m.recipient_email,), m.message.encode("utf-8")) for m in claimed.values()],
            on_accepted=on_accepted, on_failed=on_failed, retry=retry,
        )
    finally:
        outbox.release_delivery_lock()
