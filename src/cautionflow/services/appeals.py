"""The appeals list to the senior officers who answer appeals, through the same outbox as the digests.

One message per `appeals` recipient and day: the idempotency key (recipient, as-of date, content)
makes a rerun send nothing twice, and a recipient who was sent the day's list is not sent another
that day even when a later sync changed the appeals (the next day's list carries the change).
What a run could not send waits, pending, for the next one; a newer list replaces an unsent older
one (the outbox's superseding kinds).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.outbox import QueuedMessage
from cautionflow.clock import Clock, system_clock
from cautionflow.domain import appeals as a
from cautionflow.services.outbox_delivery import officer_lists, send_outstanding

if TYPE_CHECKING:
    from cautionflow.adapters.appeal_reads import AppealReads
    from cautionflow.adapters.mail import RetryPolicy, SmtpSettings
    from cautionflow.adapters.outbox import Outbox
    from cautionflow.config import Recipient

TEMPLATE = "email/appeals"  # .txt and .html


class AppealsRegister(Protocol):
    """What the appeals list uses of the register: the appeals on record and the outbox."""

    appeal_reads: AppealReads
    outbox: Outbox

    def migrate(self) -> None: ...


@dataclass(frozen=True)
class AppealsSummary:
    step: str
    as_of: str
    run_id: str
    open: int  # appeals open on the as-of date
    overdue: int  # of those, past their answer's due date
    recipients: int  # `appeals` recipients due the list today
    queued: int
    sent: int
    already_sent: int  # due today, and the day's list had been accepted before this run
    failed: int
    pending: int
    complete: bool
    uncertain: int = 0  # sent but never confirmed by the server: not resent (outbox `uncertain`)
    # Ids and dates only: the summary is the task's XCom and goes to its log, so no names.
    appeals: list[dict[str, Any]] = field(default_factory=list)
    waiting: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def read_open_appeals(register: AppealsRegister, as_of: dt.date) -> tuple[a.OpenAppeal, ...]:
    return a.open_appeals(register.appeal_reads.appeals(), as_of)


def compose_appeals_lists(
    recipients: Sequence[Recipient], appeals: Sequence[a.OpenAppeal], *, organisation: str, as_of: dt.date,
    sender: str, sender_domain: str, render: Callable[..., str], now: dt.datetime,
) -> list[QueuedMessage]:
    content = a.appeals_hash(appeals)
    subject = a.appeals_subject(organisation, as_of, appeals)
    values = {
        "organisation": organisation, "as_of": as_of,
        "overdue": [x for x in appeals if x.overdue], "open": [x for x in appeals if not x.overdue],
    }
    return officer_lists(
        a.KIND, recipients, template=TEMPLATE, values=values, content=content, subject=subject,
        alert_ids=[x.alert_id for x in appeals], as_of=as_of, sender=sender, sender_domain=sender_domain,
        render=render, now=now,
    )


async def send_appeals_lists(
    register: AppealsRegister, settings: SmtpSettings | None, recipients: Sequence[Recipient], *, organisation: str,
    as_of: dt.date, run_id: str, render: Callable[..., str], retry: RetryPolicy | None = None,
    clock: Clock = system_clock,
) -> AppealsSummary:
    register.migrate()
    appeals = read_open_appeals(register, as_of)
    due = [r for r in recipients if a.appeals_list_is_due(r, as_of, appeals)]
    outbox = register.outbox
    queued = sent = already = 0
    try:
        messages = compose_appeals_lists(
            due, appeals, organisation=organisation, as_of=as_of,
            sender=settings.sender if settings else "", sender_domain=settings.sender_domain if settings else "localhost",
            render=render, now=clock(),
        )
        # Once a day: whoever was sent a list for this day (whatever it said) gets no second one.
        sent_today = {who for who, prev in outbox.previous(a.KIND, as_of).items() if prev.as_of == as_of} if due else set()
        already = sum(1 for m in messages if (m.recipient_name, m.recipient_email) in sent_today)
        todo = [m for m in messages if (m.recipient_name, m.recipient_email) not in sent_today]
        queued = len(outbox.enqueue(todo, run_id=run_id, now=clock()))
        if settings is not None:
            sent = await send_outstanding(outbox, settings, a.KIND, retry=retry, clock=clock)
        states = outbox.states(m.idempotency_key for m in todo)
        outstanding = outbox.outstanding(a.KIND)
    finally:
        outbox.close()
    failed = sum(1 for s in states.values() if s.status == "failed")
    uncertain = sum(1 for s in states.values() if s.status == "uncertain")
    return AppealsSummary(
        step="appeals", as_of=as_of.isoformat(), run_id=run_id, open=len(appeals),
        overdue=sum(1 for x in appeals if x.overdue), recipients=len(due), queued=queued, sent=sent,
        already_sent=already, failed=failed, pending=len(outstanding),
        complete=not failed and not outstanding and not uncertain, uncertain=uncertain,
        appeals=[{"alert_id": x.alert_id, "received_on": x.received_on.isoformat(),
                  "due_on": x.due_on.isoformat() if x.due_on else None, "days_left": x.days_left,
                  "overdue": x.overdue} for x in appeals],
        waiting=[{"recipient": s.recipient_name, "email": s.recipient_email, "status": s.status,
                  "error": s.last_error or ""} for s in outstanding],
    )
