"""The officers' weekly review reminder, sent through the same outbox as the digests.

One message per officer recipient per week and content: the outbox's idempotency key makes a
rerun send nothing twice, and what a run could not send waits, pending, for the next one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.outbox import QueuedMessage
from cautionflow.clock import Clock, system_clock
from cautionflow.domain import reminders as r
from cautionflow.services.outbox_delivery import officer_lists, send_outstanding

if TYPE_CHECKING:
    from cautionflow.adapters.mail import RetryPolicy, SmtpSettings
    from cautionflow.config import Recipient
    from cautionflow.services.digests import DigestRegister


@dataclass(frozen=True)
class RemindersSummary:
    step: str
    as_of: str
    run_id: str
    recipients: int  # officers due a reminder today
    listed: int  # reviews overdue or coming due in each reminder
    queued: int
    sent: int
    already_sent: int
    failed: int
    pending: int
    complete: bool
    uncertain: int = 0  # sent but never confirmed by the server: not resent (outbox `uncertain`)
    waiting: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def compose_reminders(
    officers: Sequence[Recipient], rows: Sequence[r.ReminderRow], *, organisation: str, as_of: dt.date,
    sender: str, sender_domain: str, render: Callable[..., str], now: dt.datetime,
) -> list[QueuedMessage]:
    content = r.reminder_hash(rows)
    subject = r.reminder_subject(organisation, as_of, rows)
    values = {
        "organisation": organisation, "as_of": as_of, "horizon": r.HORIZON_DAYS,
        "overdue": [row for row in rows if row.overdue], "due_soon": [row for row in rows if not row.overdue],
    }
    return officer_lists(
        r.KIND, officers, template="email/review_reminder", values=values, content=content, subject=subject,
        alert_ids=[row.alert_id for row in rows], as_of=as_of, sender=sender, sender_domain=sender_domain,
        render=render, now=now,
    )


async def send_review_reminders(
    register: DigestRegister, settings: SmtpSettings | None, recipients: Sequence[Recipient], *, organisation: str,
    as_of: dt.date, run_id: str, render: Callable[..., str], retry: RetryPolicy | None = None,
    clock: Clock = system_clock,
) -> RemindersSummary:
    """The register is read as the digests read it (`DigestRegister`: allow-listed fields, the outbox)."""
    from cautionflow.services.digests import current_alerts

    officers = [o for o in recipients if r.reminder_is_due(o, as_of)]
    register.migrate()
    outbox = register.outbox
    queued = sent = already = 0
    try:
        rows = r.reminder_rows(current_alerts(register), as_of) if officers else ()
        messages = compose_reminders(
            officers, rows, organisation=organisation, as_of=as_of,
            sender=settings.sender if settings else "", sender_domain=settings.sender_domain if settings else "localhost",
            render=render, now=clock(),
        )
        before = outbox.states(m.idempotency_key for m in messages)
        already = sum(1 for s in before.values() if s.status == "sent")
        queued = len(outbox.enqueue(messages, run_id=run_id, now=clock()))
        if settings is not None:
            sent = await send_outstanding(outbox, settings, r.KIND, retry=retry, clock=clock)
        states = outbox.states(m.idempotency_key for m in messages)
        outstanding = outbox.outstanding(r.KIND)
    finally:
        outbox.close()
    failed = sum(1 for s in states.values() if s.status == "failed")
    uncertain = sum(1 for s in states.values() if s.status == "uncertain")
    return RemindersSummary(
        step="reminders", as_of=as_of.isoformat(), run_id=run_id, recipients=len(officers), listed=len(rows),
        queued=queued, sent=sent, already_sent=already, failed=failed, pending=len(outstanding),
        complete=not failed and not outstanding and not uncertain, uncertain=uncertain,
        waiting=[{"recipient": s.recipient_name, "email": s.recipient_email, "status": s.status,
                  "error": s.last_error or ""} for s in outstanding],
    )
