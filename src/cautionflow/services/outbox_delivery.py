"""Sending what the outbox holds for one kind of message (reminders, letters by email).

The digests have their own, overlapped version of this loop (`services.digests`) because they
compose and send a thousand messages at once; these kinds are few, so the plain loop serves.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cautionflow.adapters.mail import OutgoingMessage, deliver
from cautionflow.clock import Clock, system_clock

if TYPE_CHECKING:
    from cautionflow.adapters.mail import DeliveryFailure, DeliveryReport, RetryPolicy, SmtpSettings
    from cautionflow.adapters.outbox import Outbox


async def send_outstanding(
    outbox: Outbox, settings: SmtpSettings, kind: str, *, retry: RetryPolicy | None, clock: Clock = system_clock
) -> int:
    """Send every pending message of `kind` (one run at a time); returns how many were accepted.

    Acceptance is recorded (with the disclosures) before the next message goes; temporary failures
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
    if not outbox.acquire_delivery_lock():
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
