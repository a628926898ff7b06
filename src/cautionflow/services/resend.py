"""Failed mail, again: any kind of outgoing mail the server refused for good, queued again and sent.

A message the server refused permanently (5xx) is `failed` in the outbox and never retried by a run;
one whose delivery is `uncertain` (the server took all of it and never answered) is never resent by
a run either. Once the operator fixed the cause (the mailbox exists again, the server accepts the
address), `cautionflow mail resend-failed` calls `resend_failed` here, for every kind of mail the
outbox holds (digests, reminders, appeals lists, operations notices, emailed letters, and any kind
added later: the rules below read the outbox's row, never a list of kinds).

Which failed messages go again, and which are retired (`superseded`, never sent):
- a kind in `SUPERSEDING_KINDS` (a digest, a review reminder, an appeals list): a later message of
  the kind to the same recipient replaces an older one, so only each recipient's latest failed one
  is resent, and only while no later one was sent or is queued;
- a message to anyone but a resident goes only while that name, address and role are still a
  recipient in the config: a corrected address gets its next message there, and a changed role may
  see more or less than the message shows (minimum disclosure), so it is not sent as it stands;
- a message to a resident (a letter by email) is owed on its own and is always resent.

Exactly once: a refused message was never accepted, so resending it cannot make a second copy; it
keeps its Message-ID and its disclosures are logged when the server accepts it (`Outbox.mark_sent`,
guarded by its status), and a second resend finds nothing failed. Uncertain messages are resent only
with `include_uncertain` (the recipient may then get two copies, with the same Message-ID).
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Collection, Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.outbox import SUPERSEDING_KINDS
from cautionflow.clock import system_clock
from cautionflow.services.outbox_delivery import deliver_outstanding

if TYPE_CHECKING:
    from cautionflow.adapters.mail import DeliveryReport, RetryPolicy, SmtpSettings
    from cautionflow.adapters.outbox import FailedMessage, Outbox
    from cautionflow.config import Recipient

log = logging.getLogger(__name__)

# Roles whose address is the message's own (from the register), not a recipient in the config.
OWN_ADDRESS_ROLES = frozenset({"resident"})
# What the summary calls a kind; any other kind is "<kind> message", so a new kind needs no entry.
LABELS = {
    "digest": "digest", "reminder": "review reminder", "appeals": "appeals list",
    "operations": "operations notice", "letter": "letter email", "urgent": "urgent notice",
}


def label(kind: str) -> str:
    return LABELS.get(kind, f"{kind} message")


def replaced_reason(kind: str) -> str:
    return f"a later {label(kind)} to this recipient was sent or is queued: it replaces this one"


def address_gone_reason(kind: str) -> str:
    return (f"this name and address are no longer a {label(kind)} recipient in the config: "
            f"the next {label(kind)} goes to the address there")


class ResendRegister(Protocol):
    """What a resend uses of the register: its outbox."""

    outbox: Outbox

    def migrate(self) -> None: ...


@dataclass(frozen=True)
class ResendSummary:
    step: str
    since: str | None
    requeued: int  # failed messages queued again, to be sent to the same address with the same Message-ID
    retired: int  # failed messages that will not be sent: marked superseded (see `retired_messages`)
    sent: int  # messages accepted by the server in this run (the re-queued and any others outstanding)
    failed: int  # re-queued messages the server refused again
    pending: int  # messages still to go: temporary failures, or another run is delivering
    # messages whose delivery is uncertain after this run: left alone without `include_uncertain`,
    # or resent and again not confirmed; listed in `uncertain_messages`
    uncertain: int
    delivery: str
    complete: bool  # nothing refused again, nothing pending, nothing resent left uncertain
    requeued_messages: list[dict[str, str]] = field(default_factory=list)
    retired_messages: list[dict[str, str]] = field(default_factory=list)
    failures: list[dict[str, str]] = field(default_factory=list)
    waiting: list[dict[str, str]] = field(default_factory=list)
    uncertain_messages: list[dict[str, str]] = field(default_factory=list)
    kinds: list[str] = field(default_factory=list)  # the kinds of mail looked at
    unknown_kinds: list[str] = field(default_factory=list)  # kinds asked for that the outbox never held

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def _entry(kind: str, m: Any, **extra: Any) -> dict[str, Any]:
    return {"kind": kind, "recipient": m.recipient_name, "email": m.recipient_email, "as_of": m.as_of.isoformat(),
            "status": m.status, "error": m.last_error or "", **extra}


def _who(m: Any) -> tuple[str, str]:
    return m.recipient_name, m.recipient_email.strip().lower()


def choose(
    kind: str, found: Sequence[FailedMessage], current: Collection[tuple[str, str, str]],
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(to requeue, to retire) among one kind's failed messages, oldest first (the rules above).
    `current` holds (name, lower-cased email, role) of every recipient in the config."""
    latest = {_who(m): m.id for m in found}  # oldest first: the last one wins
    requeue, retire = [], []
    for m in found:
        if m.recipient_role not in OWN_ADDRESS_ROLES and (*_who(m), m.recipient_role) not in current:
            retire.append(_entry(kind, m, reason=address_gone_reason(kind), id=m.id))
        elif kind in SUPERSEDING_KINDS and (m.replaced or latest[_who(m)] != m.id):
            retire.append(_entry(kind, m, reason=replaced_reason(kind), id=m.id))
        else:
            requeue.append(_entry(kind, m, id=m.id, message_id=m.message_id))
    return requeue, retire


async def resend_failed(
    register: ResendRegister,
    settings: SmtpSettings | None,
    recipients: Sequence[Recipient],
    *,
    kinds: Sequence[str] | None = None,
    since: dt.date | None = None,
    dry_run: bool = False,
    include_uncertain: bool = False,
    retry: RetryPolicy | None = None,
    clock: Callable[[], dt.datetime] = system_clock,
) -> ResendSummary:
    """Failed mail of `kinds` (None: every kind the outbox holds) as of `since` or later, queued
    again or retired by the rules above, then sent. With `dry_run`, nothing changes and nothing is
    sent: the summary says what would be. Uncertain mail is listed, and treated as failed only
    with `include_uncertain`."""
    outbox = register.outbox
    reports: list[DeliveryReport] = []
    requeue: list[dict[str, Any]] = []
    retire: list[dict[str, Any]] = []
    try:
        register.migrate()
        present = outbox.kinds()
        looked_at = sorted(dict.fromkeys(kinds)) if kinds else present
        unknown = [k for k in looked_at if k not in present]
        current = {(r.name, r.email.strip().lower(), r.role) for r in recipients}
        statuses = ("failed", "uncertain") if include_uncertain else ("failed",)
        for kind in looked_at:
            chosen, gone = choose(kind, outbox.failed(kind, since=since, statuses=statuses), current)
            requeue += chosen
            retire += gone
        delivery = "nothing to send"
        if dry_run:
            delivery = "dry run: nothing changed"
        else:
            outbox.retire_failed([x["id"] for x in retire], now=clock())
            outbox.requeue_failed([x["id"] for x in requeue], now=clock())
            if settings is None:
                delivery = "no smtp settings"
            else:
                # Each kind's outstanding mail, one delivery run at a time (the outbox's lock).
                for kind in looked_at:
                    report = await deliver_outstanding(outbox, settings, kind, retry=retry, clock=clock)
                    if report is None:
                        delivery = "skipped: another run is delivering"
                        break
                    reports.append(report)
                    delivery = "done"
        outstanding = [(k, s) for k in looked_at for s in outbox.outstanding(k)]
        unconfirmed = [(k, s) for k in looked_at for s in outbox.uncertain(k) if since is None or s.as_of >= since]
    finally:
        outbox.close()
    requeued_ids = {x["message_id"]: x for x in requeue}
    resent_uncertain = {f.message_id for report in reports for f in report.uncertain}
    uncertain = [
        {"kind": k, "recipient": s.recipient_name, "email": s.recipient_email, "as_of": s.as_of.isoformat(),
         "error": s.last_error or "", "resent": s.message_id in resent_uncertain}
        for k, s in unconfirmed
    ]
    failures = [
        {**{k: v for k, v in requeued_ids[f.message_id].items() if k in ("kind", "recipient", "email", "as_of")},
         "error": f.reply}
        for report in reports for f in report.permanent if f.message_id in requeued_ids
    ]
    waiting = [
        {"kind": k, "recipient": s.recipient_name, "email": s.recipient_email, "as_of": s.as_of.isoformat(),
         "status": s.status, "error": s.last_error or ""}
        for k, s in outstanding
    ]
    for entry in (*requeue, *retire):
        entry.pop("id", None)
    summary = ResendSummary(
        step="resend-failed", since=since.isoformat() if since else None, requeued=len(requeue),
        retired=len(retire), sent=sum(len(report.accepted) for report in reports), failed=len(failures),
        pending=len(outstanding), uncertain=len(uncertain), delivery=delivery,
        complete=not failures and not outstanding and not resent_uncertain,
        requeued_messages=requeue, retired_messages=retire, failures=failures, waiting=waiting,
        uncertain_messages=uncertain, kinds=looked_at, unknown_kinds=unknown,
    )
    log.info("failed mail (%s): %d queued again, %d retired, %d sent, %d failed again, %d pending, %d uncertain",
             ", ".join(looked_at) or "none", summary.requeued, summary.retired, summary.sent, summary.failed,
             summary.pending, summary.uncertain)
    return summary
