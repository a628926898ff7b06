"""Urgent notices: sync the register, find the urgent changes, tell the people who visit at once.

One run (every 15 minutes in `cautionflow_urgent`): the sync the daily DAG runs (its lock, its
mass-end guard), then the urgent changes of `cautionflow.domain.urgent` for each contractor and
out-of-hours recipient; one notice per recipient listing its alerts with exactly the columns its
digest shows, from the same `DigestOptions` (minimum disclosure: `digests.recipient_columns` and
`digests.digest_row`: the contact instruction column with the duty contact where an alert has none,
a contractor's past review date as "under review"), queued in the outbox as kind "urgent" and
delivered. The disclosure log records each alert told as "current" with the code shown, so the next
digest lists it as already notified and the next run tells nothing twice.

A broken feed: when the sync is refused (the mass-end guard) or the housing database cannot be read,
this run still tells of the urgent changes already in the register (an earlier run's sync may have
recorded them just before), and the operations recipients get one notice a day saying the urgent
notices' sync is refused (through the outbox, keyed by day: not one every 15 minutes). The daily
`cautionflow_sync` fails on the same export and sends its own failure notice.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import hashlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.mail import build_message
from cautionflow.adapters.outbox import QueuedMessage
from cautionflow.clock import Clock, system_clock
from cautionflow.domain import urgent as u
from cautionflow.domain.digests import (
    UNDER_REVIEW,
    DigestOptions,
    digest_row,
    display,
    is_highest_risk,
    message_id,
    recipient_columns,
)
from cautionflow.services.outbox_delivery import deliver_outstanding

if TYPE_CHECKING:
    from cautionflow.adapters.digest_reads import DigestReads
    from cautionflow.adapters.mail import RetryPolicy, SmtpSettings
    from cautionflow.adapters.outbox import Outbox
    from cautionflow.adapters.register import Register
    from cautionflow.adapters.urgent_reads import UrgentReads
    from cautionflow.config import Recipient
    from cautionflow.domain.guards import MassEndLimit
    from cautionflow.services.sync import AlertSource

log = logging.getLogger(__name__)

HTML_TEMPLATE = "email/urgent.html"
TEXT_TEMPLATE = "email/urgent.txt"
HEADERS = {
    "Sensitivity": "Company-Confidential",
    "Auto-Submitted": "auto-generated",
    "X-Auto-Response-Suppress": "All",
    "Importance": "high",
    "X-Priority": "1",
}
# The operations' notice of a refused sync: one per recipient and day, whatever the reason's wording.
SYNC_REFUSED_CONTENT = hashlib.sha256(b"urgent notices: sync refused").hexdigest()
NOTICE_COLUMN = "urgent"  # the first column: why the alert is in the notice


class UrgentRegister(Protocol):
    """What the urgent notices read and write of the register (after the sync, which takes the
    register itself). The alerts come from the digests' reader: a notice shows what a digest would."""

    urgent_reads: UrgentReads
    digest_reads: DigestReads
    outbox: Outbox

    def migrate(self) -> None: ...


@dataclass(frozen=True)
class UrgentSummary:
    step: str
    as_of: str
    run_id: str
    sync: dict[str, Any]  # the sync's counts, or {"refused": why} when it was refused
    changes: int  # urgent alert changes found (told before or not)
    already_notified: int  # (recipient, change) pairs an earlier urgent notice told
    notices: int  # queued this run
    sent: int  # accepted by the server in this run (earlier urgent notices left pending included)
    failed: int
    pending: int
    uncertain: int
    complete: bool  # nothing failed, pending or uncertain, and the sync was not refused
    operations_told: int = 0  # operations notices of a refused sync sent this run
    failures: list[dict[str, str]] = field(default_factory=list)
    waiting: list[dict[str, str]] = field(default_factory=list)
    uncertain_messages: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- composing ------------------------------------------------------------------------------------


def compose_notice(
    planned: u.PlannedNotice, alerts: dict[str, dict[str, Any]], *, render: Callable[..., str], organisation: str,
    options: DigestOptions, as_of: dt.date, sender: str, sender_domain: str, now: dt.datetime,
) -> QueuedMessage:
    """One recipient's notice: each alert told with the columns its digest shows (the same options:
    the contact instruction column and its duty-contact fallback), most serious first."""
    recipient = planned.recipient
    columns = recipient_columns(recipient.role, options)
    keys = (NOTICE_COLUMN, *(c.key for c in columns))
    rows = []
    for change in planned.changes:
        row = digest_row(recipient.role, alerts[change.alert_id], as_of=as_of, columns=columns,
                         fallback=options.fallback_instruction)
        cells = (u.what_happened(change), *row.cells)
        rows.append(MappingProxyType({"cells": cells, **dict(zip(keys, cells, strict=True)),
                                      "escalated": change.what == u.ESCALATED,
                                      "highest_risk": is_highest_risk(change.code, options.severity)}))
    first = alerts[planned.changes[0].alert_id]
    where = ", ".join(p for p in (display(first.get("address")), display(first.get("postcode"))) if p)
    subject = u.notice_subject(organisation, where, len(rows))
    values = {
        "organisation": organisation, "recipient_name": recipient.name, "role": recipient.role, "as_of": as_of,
        "subject": subject, "count": len(rows), "rows": rows, "duty_contact": options.duty_contact,
        "columns": (_Column(NOTICE_COLUMN, "Urgent"), *columns), "under_review": UNDER_REVIEW,
    }
    mid = message_id(u.KIND, planned.key, as_of, sender_domain)
    message = build_message(
        sender=sender, to_name=recipient.name, to_email=recipient.email, subject=subject, message_id=mid, date=now,
        text=render(TEXT_TEMPLATE, **values), html=render(HTML_TEMPLATE, **values),
        headers={**HEADERS, "X-Cautionflow-Kind": u.KIND},
    )
    return QueuedMessage(
        idempotency_key=planned.key, kind=u.KIND, recipient_name=recipient.name, recipient_email=recipient.email,
        recipient_role=recipient.role, as_of=as_of, content_hash=planned.key, message_id=mid, subject=subject,
        message=message, current_ids=tuple(c.alert_id for c in planned.changes),
        shown={c.alert_id: u.shown(c.code) for c in planned.changes},
    )


@dataclass(frozen=True, slots=True)
class _Column:
    key: str
    label: str


# --- the run --------------------------------------------------------------------------------------


def _sync(source: AlertSource, register: Register, *, as_of: dt.date, run_id: str, mass_end: MassEndLimit | None,
          contractor_areas: frozenset[str] | None, clock: Clock) -> dict[str, Any]:
    """The daily DAG's sync; a refused one (mass-end guard, unreadable source) as {"refused": why}."""
    from cautionflow.adapters.source import SourceError
    from cautionflow.domain.validation import SourceShapeError
    from cautionflow.services.sync import MassEndError, sync_register

    try:
        return sync_register(source, register, as_of=as_of, run_id=run_id, mass_end=mass_end,
                             contractor_areas=contractor_areas, clock=clock).as_dict()
    except (MassEndError, SourceError, SourceShapeError) as exc:
        if not register.exists():  # never synced: nothing to tell of, and the error is the news
            raise
        log.warning("urgent notices: the sync was refused; telling of the changes already in the register: %s", exc)
        return {"refused": str(exc)}


async def run_urgent(
    register: Register,
    source: AlertSource,
    settings: SmtpSettings | None,
    recipients: Sequence[Recipient],
    *,
    urgent_codes: Sequence[str],
    organisation: str,
    options: DigestOptions | None = None,
    as_of: dt.date,
    run_id: str,
    render: Callable[..., str],
    mass_end: MassEndLimit | None = None,
    contractor_areas: frozenset[str] | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock = system_clock,
    now: dt.datetime | None = None,
) -> UrgentSummary:
    """Sync, then tell of the urgent changes (`send_urgent_notices`). `now` (default: `clock()` after
    the sync) starts the 24-hour window of a recipient that has had no digest. `options`: the
    digests' (`steps.wiring.digest_options`), so a notice shows what the recipient's digest shows."""
    sync = await asyncio.to_thread(_sync, source, register, as_of=as_of, run_id=run_id, mass_end=mass_end,
                                   contractor_areas=contractor_areas, clock=clock)
    summary = await send_urgent_notices(
        register, settings, recipients, urgent_codes=urgent_codes, organisation=organisation,
        options=options, as_of=as_of, run_id=run_id, render=render, sync=sync, retry=retry, clock=clock,
        now=now,
    )
    if "refused" in sync:
        told = 0
        if settings is not None:
            told = await _tell_operations_sync_refused(register, settings, recipients, organisation=organisation,
                                                       as_of=as_of, run_id=run_id, why=sync["refused"], retry=retry,
                                                       clock=clock)
        # Not complete (the command line exits 3), though the Airflow task succeeds: see the module.
        summary = dataclasses.replace(summary, operations_told=told, complete=False)
    return summary


async def send_urgent_notices(
    register: UrgentRegister,
    settings: SmtpSettings | None,
    recipients: Sequence[Recipient],
    *,
    urgent_codes: Sequence[str],
    organisation: str,
    options: DigestOptions | None = None,
    as_of: dt.date,
    run_id: str,
    render: Callable[..., str],
    sync: dict[str, Any] | None = None,
    retry: RetryPolicy | None = None,
    clock: Clock = system_clock,
    now: dt.datetime | None = None,
) -> UrgentSummary:
    """Find the urgent changes in the register, queue one notice per recipient, deliver. `options`:
    the digests' choices (columns, duty contact, the profile's severity ranks); the defaults without."""
    options = options or DigestOptions()
    told_roles = [r for r in recipients if r.role in ("contractor", "out_of_hours")]
    now = now or clock()
    reads, outbox = register.urgent_reads, register.outbox
    sent = queued = 0
    try:
        last_digest = await asyncio.to_thread(reads.last_digest_sent) if told_roles else {}
        windows = {(r.name, r.email): u.window_start(last_digest.get((r.name, r.email)), now) for r in told_roles}
        since = min(windows.values(), default=now)
        history = await asyncio.to_thread(reads.history_since, since) if told_roles else []
        alerts = (await asyncio.to_thread(register.digest_reads.alerts_by_id, {h.alert_id for h in history})
                  if history else {})
        earlier = await asyncio.to_thread(reads.notices_since, since) if history else []
        plan = u.plan_notices(told_roles, history, alerts, urgent_codes=urgent_codes, windows=windows, earlier=earlier,
                              severity_overrides=options.severity)
        messages = [
            compose_notice(p, alerts, render=render, organisation=organisation, options=options, as_of=as_of,
                           sender=settings.sender if settings else "",
                           sender_domain=settings.sender_domain if settings else "localhost", now=clock())
            for p in plan.notices
        ]
        queued = len(outbox.enqueue(messages, run_id=run_id, now=clock()))  # the outbox's connection: this thread's
        if settings is not None:
            report = await deliver_outstanding(outbox, settings, u.KIND, retry=retry, clock=clock)
            if report is None:
                # Another run holds the outbox's delivery: another urgent cycle (a `run urgent` by hand
                # beside the DAG's) sends these too; the digests' leaves them pending for the retry.
                # Said here, since "pending" alone in the summary reads as if the server had refused.
                log.warning("urgent notices: another run is delivering from the outbox; the notices are left "
                            "to it (pending until it sends them, or this step's next run does)")
            sent = len(report.accepted) if report is not None else 0
        states = outbox.states(m.idempotency_key for m in messages)
        outstanding = outbox.outstanding(u.KIND)
        uncertain = outbox.uncertain(u.KIND)
    finally:
        outbox.close()
    failures = [{"recipient": s.recipient_name, "email": s.recipient_email, "error": s.last_error or ""}
                for s in states.values() if s.status == "failed"]
    summary = UrgentSummary(
        step="urgent", as_of=as_of.isoformat(), run_id=run_id, sync=sync or {}, changes=plan.found,
        already_notified=plan.already_told, notices=queued, sent=sent, failed=len(failures),
        pending=len(outstanding), uncertain=len(uncertain),
        complete=not failures and not outstanding and not uncertain and "refused" not in (sync or {}),
        failures=failures,
        waiting=[{"recipient": s.recipient_name, "email": s.recipient_email, "status": s.status,
                  "error": s.last_error or ""} for s in outstanding],
        uncertain_messages=[{"recipient": s.recipient_name, "email": s.recipient_email, "error": s.last_error or ""}
                            for s in uncertain],
    )
    log.info("urgent notices as of %s: %d urgent change(s), %d already told, %d notice(s) queued, %d sent, "
             "%d failed, %d pending, %d uncertain", as_of, summary.changes, summary.already_notified, queued, sent,
             summary.failed, summary.pending, summary.uncertain)
    return summary


async def _tell_operations_sync_refused(
    register: UrgentRegister, settings: SmtpSettings, recipients: Sequence[Recipient], *, organisation: str,
    as_of: dt.date, run_id: str, why: str, retry: RetryPolicy | None, clock: Clock,
) -> int:
    """Once a day per operations recipient: new urgent changes cannot be found while the sync is refused."""
    from cautionflow.services.operations_notices import send_to_operations_once_a_day

    operations = [r for r in recipients if r.role == "operations"]
    if not operations:
        return 0
    subject = f"{organisation}: urgent notices' sync refused on {display(as_of)}"
    text = (
        f"The urgent notices' sync (cautionflow_urgent) was refused on {display(as_of)}, so alerts added "
        "in the housing system since its last good sync are not being sent as urgent notices.\n\n"
        f"Why: {why}\n\n"
        "Urgent changes already in the register are still sent. Mend the export, or, for a real "
        "clean-up, trigger cautionflow_sync with allow_mass_end. This notice is sent once a day.\n"
    )
    result = await send_to_operations_once_a_day(
        register, settings, operations, as_of=as_of, run_id=run_id, content=SYNC_REFUSED_CONTENT, subject=subject,
        text=text, header_kind="operations-urgent-sync", retry=retry, clock=clock,
    )
    return result.sent
