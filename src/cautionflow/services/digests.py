"""Digests: compose each due recipient's flag list, queue it in the outbox, deliver, summarise.

1. Plan: read the active alerts (only the allow-listed fields) with their review due dates; for
   each recipient due today select what it may see, hash it, and derive the idempotency key
   (recipient, as-of date, content hash). A key already in the outbox is not composed again: a
   retried task or a rerun of the day sends nothing twice. For the others, compare with the
   recipient's previous digest (from the disclosure log: what it was actually told, and what each
   flag showed: added, changed, lifted), and find the urgent notices it was sent since.
2. Compose and send, overlapped: digests are rendered (HTML and text templates, CSV attachment) in
   chunks of 1, 2, 4, ... then CHUNK (`chunks`); each chunk is written to the outbox already
   claimed for sending and handed to the senders, so the first digest goes out while later ones
   are still being rendered.
3. Then everything else outstanding: digests earlier runs left pending, or sending when they died.

All database work runs on one thread of its own (the outbox's connection lives there), rendering
on another, and the network in the event loop; an acceptance is recorded before the connection
that carried it completes another message (`deliver`: it begins the next one meanwhile and holds
back its final "."). Acceptances that arrive while one is being committed are
committed together in the next transaction (a group commit), and a flag that is in many
recipients' digests is turned into a template row and a CSV line once (`RowCache`); its markup
(table row, card, text) is then written once too, since its template row is the same read-only
mapping for every recipient who sees it unmarked (the templates' `each_row` and `each_card`,
adapters/templates.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
import re
from collections import ChainMap
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from functools import partial
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.mail import Attachment, MessageQueue, OutgoingMessage, build_message, deliver
from cautionflow.adapters.outbox import Outbox, OutboxMessage, QueuedMessage
from cautionflow.clock import system_clock
from cautionflow.domain import digests as d
from cautionflow.progress import StepProgress
from cautionflow.services.outbox_delivery import failure_mark

if TYPE_CHECKING:
    from cautionflow.adapters.digest_reads import DigestReads
    from cautionflow.adapters.mail import DeliveryFailure, DeliveryReport, RetryPolicy, SmtpSettings
    from cautionflow.config import Recipient

log = logging.getLogger(__name__)

Render = Callable[..., str]
HTML_TEMPLATE = "email/digest.html"
TEXT_TEMPLATE = "email/digest.txt"
HEADERS = {
    "Sensitivity": "Company-Confidential",
    "Auto-Submitted": "auto-generated",
    "X-Auto-Response-Suppress": "All",
}
CHUNK = 25  # digests rendered and queued together


class DigestRegister(Protocol):
    """What the digests use of the register: its alerts (allow-listed fields) and its outbox."""

    digest_reads: DigestReads
    outbox: Outbox

    def migrate(self) -> None: ...


@dataclass(frozen=True)
class DigestsSummary:
    step: str
    as_of: str
    run_id: str
    recipients: int  # due today
    queued: int  # new digests this run wrote to the outbox
    sent: int  # accepted by the server in this run (older digests left pending included)
    already_sent: int  # due today, and this content had been accepted before this run
    failed: int  # refused permanently (5xx): listed in `failures`, not retried
    pending: int  # still to go: temporary failures, or a run that died mid-send; listed in `waiting`
    # The server took the whole message and never answered (RFC 5321's 10 minutes): it may have it.
    # Listed in `uncertain_messages`; never resent by a run, only by `digests resend-failed
    # --include-uncertain`.
    uncertain: int
    delivery: str  # "done", "nothing to send", or why this run did not deliver
    complete: bool  # nothing failed, nothing is pending and nothing is uncertain
    failures: list[dict[str, str]] = field(default_factory=list)
    waiting: list[dict[str, str]] = field(default_factory=list)
    uncertain_messages: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class PlannedDigest:
    recipient: Recipient
    rows: tuple[d.DigestRow, ...]
    content_hash: str
    key: str
    changes: d.DigestChanges
    shown: Mapping[str, str] = field(default_factory=dict)  # alert_id -> shown record, for the disclosure log
    notified: Mapping[str, dt.datetime] = field(default_factory=dict)  # alert_id -> urgent notice sent at


@dataclass(frozen=True)
class DigestPlan:
    keys: dict[tuple[str, str], str]  # (name, email) -> idempotency key, for every due recipient
    already_sent: int
    revive: list[str]  # today's keys superseded earlier whose content is current again
    todo: list[PlannedDigest]


class _Worker:
    """A one-thread executor: the database thread (the outbox's connection belongs to it; SQLite
    connections belong to their thread) or the rendering thread."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name)

    async def run(self, function: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self._executor, partial(function, *args, **kwargs))

    def close(self) -> None:
        self._executor.shutdown(wait=True)


# --- reading --------------------------------------------------------------------------------------


def current_alerts(register: DigestRegister) -> list[dict[str, Any]]:
    """Active alerts, allow-listed fields only, with review_due; in a stable order (area, then
    postcode and address read naturally: QE1, QE2, QE10; 2 before 10 Mill Lane)."""
    alerts = register.digest_reads.active_alerts()
    alerts.sort(key=d.alert_order)
    return alerts


def alerts_by_id(register: DigestRegister, alert_ids: set[str]) -> dict[str, dict[str, Any]]:
    """Allow-listed fields of the given alerts, whatever their state (for flags since lifted)."""
    return register.digest_reads.alerts_by_id(alert_ids)


def start_of_day(as_of: dt.date, timezone: dt.tzinfo) -> dt.datetime:
    """Midnight at the start of `as_of` in the landlord's time zone."""
    return dt.datetime.combine(as_of, dt.time(), tzinfo=timezone)


def plan_digests(
    register: DigestRegister, outbox: Outbox, due: Sequence[Recipient], *, as_of: dt.date,
    options: d.DigestOptions | None = None,
) -> DigestPlan:
    """What each due recipient is to be sent today, and which of those the outbox already has."""
    options = options or d.DigestOptions()
    selector = d.DigestSelector(current_alerts(register) if due else [], as_of=as_of, options=options)
    selected = []
    for recipient in due:
        rows = selector.rows_for(recipient)
        digest_hash = d.content_hash(recipient.role, rows, d.recipient_columns(recipient.role, options))
        selected.append((recipient, rows, digest_hash, d.idempotency_key(d.KIND, recipient.name, recipient.email,
                                                                         as_of, digest_hash)))
    states = outbox.states(key for *_, key in selected)
    new = [s for s in selected if s[3] not in states]
    previous = outbox.previous(d.KIND, as_of) if new else {}

    def before(recipient: Recipient) -> Any:
        return previous.get((recipient.name, recipient.email))

    lifted_needed: set[str] = set()
    for recipient, rows, _, _ in new:
        last = before(recipient)
        lifted_needed |= d.lifted_ids(last.alert_ids if last else None, rows)
    lifted_alerts = alerts_by_id(register, lifted_needed) if lifted_needed else {}
    # Urgent notices since each recipient's previous digest was accepted (with no previous digest:
    # since the start of the day, in the landlord's time), all recipients in one read.
    since = {
        (r.name, r.email): (last.sent_at if (last := before(r)) is not None and last.sent_at is not None
                            else start_of_day(as_of, options.timezone))
        for r, *_ in new
    }
    notified = register.digest_reads.urgent_notices(since) if since else {}
    shown_cache: dict[tuple[tuple[d.Column, ...], d.DigestRow], str] = {}  # a flag's record once per role
    todo = []
    for recipient, rows, digest_hash, key in new:
        last = before(recipient)
        columns = d.recipient_columns(recipient.role, options)
        shown = {}
        for row in rows:
            record = shown_cache.get((columns, row))
            if record is None:
                record = shown_cache[(columns, row)] = d.shown_record(columns, row)
            shown[row.alert_id] = record
        gone = d.lifted_ids(last.alert_ids if last else None, rows)
        changes = d.changes_since(
            last.as_of if last else None, last.alert_ids if last else None, rows,
            {alert_id: d.lifted_row(recipient, lifted_alerts.get(alert_id), alert_id, options=options)
             for alert_id in gone},
            previous_shown=last.shown if last else None, shown=shown, severity_overrides=options.severity,
        )
        told = notified.get((recipient.name, recipient.email), {})
        current = {row.alert_id for row in rows}
        todo.append(PlannedDigest(
            recipient, rows, digest_hash, key, changes, shown,
            {alert_id: at for alert_id, at in told.items() if alert_id in current},
        ))
    return DigestPlan(
        keys={(r.name, r.email): key for r, *_, key in selected},
        already_sent=sum(1 for *_, key in selected if key in states and states[key].status == "sent"),
        revive=[key for *_, key in selected if key in states and states[key].status == "superseded"],
        todo=todo,
    )


# --- composing ------------------------------------------------------------------------------------


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "cautionflow"


class RowCache:
    """What digests composed in one run (one set of options) share: a flag in many recipients'
    digests is turned into a template row and a CSV line once. Template rows are read-only
    mappings, so one template's rendering cannot change what the next recipient's shows; a
    recipient's marks (new, changed, already notified) lie over the shared row in a mapping of
    that recipient's own, never in the shared one."""

    def __init__(self) -> None:
        self.template_rows: dict[tuple[tuple[str, ...], d.DigestRow], Mapping[str, Any]] = {}
        self.csv_lines: dict[d.DigestRow, str] = {}


def _template_rows(
    columns: Sequence[d.Column], rows: Sequence[d.DigestRow], cache: RowCache | None = None,
    marks: Mapping[str, Mapping[str, Any]] | None = None, severity: Mapping[str, int] | None = None,
) -> list[Mapping[str, Any]]:
    """Rows for the templates: `row["cells"]` in column order, each column's text by its key,
    `alert_id`, `highest_risk`, and the recipient's marks (`mark`: "new", "changed" or "";
    `notified`: when an urgent notice told them, or ""; `escalated`), from `marks` by alert id."""
    keys = tuple(c.key for c in columns)
    known = cache.template_rows if cache is not None else {}
    found: list[Mapping[str, Any]] = []
    for row in rows:
        entry = known.get((keys, row))
        if entry is None:
            entry = MappingProxyType({
                "cells": row.cells, **dict(zip(keys, row.cells, strict=True)), "alert_id": row.alert_id,
                "highest_risk": d.is_highest_risk(d.row_code(columns, row), severity), **_UNMARKED,
            })
            known[(keys, row)] = entry
        overlay = marks.get(row.alert_id) if marks else None
        found.append(MappingProxyType(ChainMap(dict(overlay), entry)) if overlay else entry)
    return found


_UNMARKED: Mapping[str, Any] = MappingProxyType({"mark": "", "notified": "", "escalated": False})


def _marks(
    changes: d.DigestChanges, notified: Mapping[str, dt.datetime], timezone: dt.tzinfo
) -> dict[str, dict[str, Any]]:
    """This recipient's marks by alert id: new or changed since its previous digest (none on its
    first: everything is new), escalated, and already told by an urgent notice."""
    marks: dict[str, dict[str, Any]] = {}
    for row in changes.added:
        marks[row.alert_id] = {"mark": "new"}
    for change in changes.changed:
        marks[change.row.alert_id] = {"mark": "changed", "escalated": change.escalated}
    for alert_id, at in notified.items():
        marks.setdefault(alert_id, {})["notified"] = d.notified_text(at, timezone)
    return marks


def render_digest(
    render: Render,
    *,
    organisation: str,
    recipient: Recipient,
    as_of: dt.date,
    rows: Sequence[d.DigestRow],
    changes: d.DigestChanges,
    sender: str,
    message_id: str,
    now: dt.datetime,
    cache: RowCache | None = None,
    options: d.DigestOptions | None = None,
    notified: Mapping[str, dt.datetime] | None = None,
) -> tuple[str, str]:
    """(subject, complete MIME message) for one recipient's digest; `notified`: the current flags an
    urgent notice told the recipient of since its previous digest, and when."""
    options = options or d.DigestOptions()
    columns = d.recipient_columns(recipient.role, options)
    subject = d.digest_subject(organisation, recipient.name, as_of, len(rows))
    attachment_name = f"{_slug(organisation)}-caution-alerts-{as_of.isoformat()}.csv"
    marks = _marks(changes, notified or {}, options.timezone)

    def template_rows(found: Sequence[d.DigestRow], marked: bool = True) -> list[Mapping[str, Any]]:
        return _template_rows(columns, found, cache, marks if marked else None, options.severity)

    current = template_rows(rows)
    by_id = {row["alert_id"]: row for row in current}
    values = {
        "organisation": organisation, "recipient_name": recipient.name, "role": recipient.role,
        "areas": list(recipient.areas), "as_of": as_of, "count": len(rows), "subject": subject,
        "columns": columns, "rows": current, "attachment_name": attachment_name,
        "under_review": d.UNDER_REVIEW,  # a contractor's review date already past (the domain's rule)
        "duty_contact": options.duty_contact,
        "highest_risk": [row for row in current if row["highest_risk"]],
        "changes": {
            "first": changes.first, "previous_as_of": changes.previous_as_of,
            "added": template_rows(changes.added),
            "changed": [
                {"row": by_id[c.row.alert_id], "before": dict(c.before), "after": dict(c.after),
                 "escalated": c.escalated}
                for c in changes.changed
            ],
            "lifted": template_rows(changes.lifted, marked=False),  # no longer current: nothing to mark
        },
    }
    csv_text = d.digest_csv(columns, rows, cache.csv_lines if cache is not None else None)  # BOM included
    message = build_message(
        sender=sender, to_name=recipient.name, to_email=recipient.email, subject=subject, message_id=message_id,
        date=now, text=render(TEXT_TEMPLATE, **values), html=render(HTML_TEMPLATE, **values),
        attachments=[Attachment(attachment_name, "text/csv", csv_text)],
        headers={**HEADERS, "X-Cautionflow-As-Of": as_of.isoformat()},
    )
    return subject, message


def chunks(todo: Sequence[PlannedDigest]) -> Iterator[Sequence[PlannedDigest]]:
    """`todo` in chunks of 1, 2, 4, ... then CHUNK digests: the first digest goes to the senders as
    soon as it is rendered, not with a whole chunk (the benchmark at 5 ms, three runs each: the
    first acceptance 0.60-0.69 s into the step, against 0.77-0.83 s with chunks of 25 from the
    start, whose first held the out-of-hours desks' long digests); later chunks are large, so the
    outbox takes them in few transactions."""
    start, size = 0, 1
    while start < len(todo):
        yield todo[start : start + size]
        start, size = start + size, min(CHUNK, size * 2)


def compose(
    planned: Sequence[PlannedDigest],
    *,
    render: Render,
    organisation: str,
    as_of: dt.date,
    sender: str,
    sender_domain: str,
    now: dt.datetime,
    cache: RowCache | None = None,
    options: d.DigestOptions | None = None,
) -> list[QueuedMessage]:
    messages = []
    for p in planned:
        message_id = d.message_id(d.KIND, p.key, as_of, sender_domain)
        subject, message = render_digest(
            render, organisation=organisation, recipient=p.recipient, as_of=as_of, rows=p.rows, changes=p.changes,
            sender=sender, message_id=message_id, now=now, cache=cache, options=options, notified=p.notified,
        )
        messages.append(
            QueuedMessage(
                idempotency_key=p.key, kind=d.KIND, recipient_name=p.recipient.name,
                recipient_email=p.recipient.email, recipient_role=p.recipient.role, as_of=as_of,
                content_hash=p.content_hash, message_id=message_id, subject=subject, message=message,
                current_ids=tuple(r.alert_id for r in p.rows), lifted_ids=tuple(r.alert_id for r in p.changes.lifted),
                shown=p.shown,
            )
        )
    return messages


# --- sending --------------------------------------------------------------------------------------


def _outgoing(message: OutboxMessage) -> OutgoingMessage:
    return OutgoingMessage(message.message_id, (message.recipient_email,), message.message.encode("utf-8"))


class _GroupCommit:
    """Acceptances recorded in groups. A connection's worker waits until its acceptance is
    committed before it ends its next message (so it is recorded before that connection completes
    anything else), but the acceptances that arrive while one commit is running go together in the
    next one: one commit per round of the connections instead of one per message."""

    def __init__(self, db: _Worker, outbox: Outbox, clock: Callable[[], dt.datetime]) -> None:
        self.db, self.outbox, self.clock = db, outbox, clock
        self.waiting: list[tuple[OutboxMessage, asyncio.Future[None]]] = []
        self.flusher: asyncio.Task[None] | None = None

    async def record(self, message: OutboxMessage) -> None:
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting.append((message, done))
        if self.flusher is None or self.flusher.done():
            self.flusher = asyncio.create_task(self._flush())
        await done

    async def _flush(self) -> None:
        while self.waiting:
            group, self.waiting = self.waiting, []
            try:
                await self.db.run(self.outbox.mark_sent_many, [m for m, _ in group], at=self.clock())
            except BaseException as exc:  # noqa: BLE001 - handed to every waiting worker
                for _, done in group:
                    if done.done():
                        continue
                    if isinstance(exc, asyncio.CancelledError):
                        done.cancel()
                    else:
                        done.set_exception(exc)
                if not isinstance(exc, Exception):
                    raise
                continue
            for _, done in group:
                if not done.done():
                    done.set_result(None)

    async def drain(self) -> None:
        """Wait for a commit still running (a run that stops early), whatever its outcome."""
        if self.flusher is not None:
            await asyncio.gather(self.flusher, return_exceptions=True)


def _recorders(db: _Worker, outbox: Outbox, by_id: dict[str, OutboxMessage], clock: Callable[[], dt.datetime],
               group: _GroupCommit):
    async def on_accepted(message_id: str) -> None:
        await group.record(by_id[message_id])

    async def on_failed(failure: DeliveryFailure) -> None:
        await db.run(failure_mark(outbox, failure), failure.message_id, failure.reply, now=clock())

    return {"on_accepted": on_accepted, "on_failed": on_failed}


async def send_digests(
    register: DigestRegister,
    settings: SmtpSettings | None,
    recipients: Sequence[Recipient],
    *,
    organisation: str,
    as_of: dt.date,
    run_id: str,
    render: Render,
    retry: RetryPolicy | None = None,
    clock: Callable[[], dt.datetime] = system_clock,
    options: d.DigestOptions | None = None,
) -> DigestsSummary:
    """`options`: the config's and the profile's choices (contact instructions, the duty contact,
    severity overrides, the time zone); the defaults without."""
    options = options or d.DigestOptions()
    timing = StepProgress("digests", logger=log)  # each stage's time at INFO, for the task log
    due = d.due_recipients(recipients, as_of)
    outbox = register.outbox
    db, renderer = _Worker("cautionflow-db"), _Worker("cautionflow-render")
    group = _GroupCommit(db, outbox, clock)  # acceptances, committed together
    by_id: dict[str, OutboxMessage] = {}
    report: DeliveryReport | None = None
    queued = 0
    try:
        await db.run(register.migrate)
        planning = timing.timed("planned")
        plan = await db.run(plan_digests, register, outbox, due, as_of=as_of, options=options)
        planning.finish()
        if plan.revive:
            await db.run(outbox.revive, plan.revive, now=clock())
        sending = settings is not None and await db.run(outbox.acquire_delivery_lock, d.KIND)
        queue = MessageQueue()
        cache = RowCache()

        async def produce() -> None:
            nonlocal queued
            try:
                for chunk in chunks(plan.todo):
                    messages = await renderer.run(
                        compose, chunk, render=render, organisation=organisation,
                        as_of=as_of, sender=settings.sender if settings else "",
                        sender_domain=settings.sender_domain if settings else "localhost", now=clock(),
                        cache=cache, options=options,
                    )
                    fresh = await db.run(outbox.enqueue, messages, run_id=run_id, now=clock(), claim=sending)
                    queued += len(fresh)
                    for message in fresh if sending else ():
                        by_id[message.message_id] = message
                        queue.put(_outgoing(message))
                if sending:  # then whatever earlier runs left outstanding
                    exclude = {m.id for m in by_id.values()}
                    for message in await db.run(outbox.claim, d.KIND, now=clock(), exclude=exclude):
                        by_id[message.message_id] = message
                        queue.put(_outgoing(message))
            finally:
                queue.close()

        composing = timing.timed("composed, queued and sent" if sending else "composed and queued")
        if sending:
            assert settings is not None
            report = await _together(
                produce(), deliver(settings, queue, retry=retry, **_recorders(db, outbox, by_id, clock, group))
            )
            delivery = "done" if report.accepted or report.failures else "nothing to send"
        else:
            await produce()
            delivery = "no smtp settings" if settings is None else "skipped: another run is delivering"
        composing.finish()
        states = await db.run(outbox.states, plan.keys.values())
        outstanding = await db.run(outbox.outstanding, d.KIND)
    finally:
        await group.drain()
        with contextlib.suppress(Exception):
            await db.run(outbox.release_delivery_lock)
        await db.run(outbox.close)
        db.close()
        renderer.close()
    timing.done()
    return _summary(as_of, run_id, due, plan, queued, report, by_id, states, outstanding, delivery)


async def _together(producer: Any, consumer: Any) -> DeliveryReport:
    """Run the composer and the senders at once; if either fails, stop the other and re-raise."""
    tasks = [asyncio.ensure_future(producer), asyncio.ensure_future(consumer)]
    try:
        done, _ = await asyncio.wait(tasks, return_when=asyncio.FIRST_EXCEPTION)
        for task in done:
            if task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        await asyncio.gather(*tasks)
        return tasks[1].result()
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _summary(as_of, run_id, due, plan, queued, report, by_id, states, outstanding, delivery) -> DigestsSummary:
    todays = {s.message_id for s in states.values()}
    failures = [
        {"recipient": s.recipient_name, "email": s.recipient_email, "as_of": s.as_of.isoformat(),
         "error": s.last_error or ""}
        for s in states.values() if s.status == "failed"
    ]
    for failure in report.permanent if report else ():  # older digests refused in this run
        if failure.message_id not in todays:
            m = by_id[failure.message_id]
            failures.append({"recipient": m.recipient_name, "email": m.recipient_email,
                             "as_of": m.as_of.isoformat(), "error": failure.reply})
    uncertain = [
        {"recipient": s.recipient_name, "email": s.recipient_email, "as_of": s.as_of.isoformat(),
         "error": s.last_error or ""}
        for s in states.values() if s.status == "uncertain"
    ]
    for failure in report.uncertain if report else ():  # older digests this run could not confirm
        if failure.message_id not in todays:
            m = by_id[failure.message_id]
            uncertain.append({"recipient": m.recipient_name, "email": m.recipient_email,
                              "as_of": m.as_of.isoformat(), "error": failure.reply})
    waiting = [
        {"recipient": s.recipient_name, "email": s.recipient_email, "as_of": s.as_of.isoformat(),
         "status": s.status, "error": s.last_error or ""}
        for s in outstanding
    ]
    summary = DigestsSummary(
        step="digests", as_of=as_of.isoformat(), run_id=run_id, recipients=len(due), queued=queued,
        sent=len(report.accepted) if report else 0, already_sent=plan.already_sent, failed=len(failures),
        pending=len(outstanding), uncertain=len(uncertain), delivery=delivery,
        complete=not failures and not outstanding and not uncertain, failures=failures, waiting=waiting,
        uncertain_messages=uncertain,
    )
    log.info(
        "digests as of %s: %d due, %d queued, %d sent, %d already sent, %d failed, %d pending, %d uncertain",
        as_of, summary.recipients, queued, summary.sent, summary.already_sent, summary.failed, summary.pending,
        summary.uncertain,
    )
    return summary
