"""Notices to the operations recipients: a task's failure, and a sync not finished by its deadline."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock, system_clock
from cautionflow.steps.wiring import open_register, smtp_settings

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig, Recipient

log = logging.getLogger(__name__)


def operations_recipients(config: CautionflowConfig, what: str, subject: str) -> list[Recipient]:
    """The config's operations recipients, when there are any and mail can be sent (else logged)."""
    recipients = [r for r in config.recipients if r.role == "operations"]
    if not recipients:
        log.info("no operations recipients in the config: no %s sent for %s", what, subject)
        return []
    if config.smtp is None:
        log.warning("the config has no smtp section: no %s sent for %s", what, subject)
        return []
    return recipients


async def notify_operations(
    config: CautionflowConfig, *, subject: str, text: str, kind: str, what: str, overrides: dict[str, Any],
    tls_context: Any = None, clock: Clock = system_clock,
) -> Any:
    """A plain-text notice to every operations recipient, sent directly (see
    `services.operations_notices.send_operations_notice`); the delivery report, or None when there is
    no one to send it to."""
    from cautionflow.services.operations_notices import send_operations_notice

    recipients = operations_recipients(config, what, subject)
    if not recipients:
        return None
    settings = smtp_settings(config, what, True, overrides, tls_context)
    return await send_operations_notice(settings, recipients, subject=subject, text=text, kind=kind, what=what,
                                        clock=clock)


async def check_sync_finished_async(
    config: CautionflowConfig, *, as_of: dt.date, deadline: dt.datetime, run_id: str,
    smtp_overrides: Callable[[], Awaitable[dict[str, Any]]], base_url: str | None, tls_context: Any = None,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """The sync watch: if the sync for `as_of` had not finished by `deadline`, email the operations
    recipients (dates and times only), once per recipient and day. It reads the register's
    `sync_runs`, so it also notices a day on which no sync ran at all. `smtp_overrides` (the Airflow
    connection's settings, {} when it cannot be read) is awaited only when a notice is due."""
    import asyncio

    from cautionflow.domain.operations import LatenessNotice, sync_is_late
    from cautionflow.services.sync_watch import sync_progress

    def progress() -> tuple[Any, Any]:
        with open_register(config) as register:
            return sync_progress(register, as_of)

    def register_exists() -> bool:
        with open_register(config) as register:
            return register.exists()

    finished_at, last = await asyncio.to_thread(progress)
    summary: dict[str, Any] = {"as_of": as_of.isoformat(), "deadline": deadline.isoformat(),
                               "finished_at": finished_at.isoformat() if finished_at else None, "late": False}
    if not sync_is_late(finished_at, deadline):
        log.info("the sync for %s finished at %s, by its deadline %s", as_of, finished_at, deadline)
        return summary
    notice = LatenessNotice(
        as_of=as_of, deadline=deadline, timezone=config.timezone, last_sync_as_of=last, finished_at=finished_at,
        dag_url=f"{base_url.rstrip('/')}/dags/cautionflow_sync" if base_url else None,
    )
    log.warning("%s", notice.subject)
    overrides = await smtp_overrides()
    operations = operations_recipients(config, "lateness notice", notice.subject)
    if not operations:
        return {**summary, "late": True, "notified": 0}
    from cautionflow.adapters.database import safe_url
    from cautionflow.services.operations_notices import send_to_operations_once_a_day

    if not await asyncio.to_thread(register_exists):
        # No register, so no outbox to send it once through (only the sync creates a register): the
        # notice goes directly, as a failure notice does; a rerun may repeat it, which beats silence.
        log.warning("no register at %s: the lateness notice goes directly", safe_url(config.register_url))
        report = await notify_operations(
            config, subject=notice.subject, text=notice.text, kind="operations-late", what="lateness notice",
            overrides=overrides, tls_context=tls_context, clock=clock,
        )
        if report is not None and report.failures:
            raise RuntimeError(f"the lateness notice was not accepted: {[f.reply for f in report.failures]}")
        return {**summary, "late": True, "notified": len(report.accepted) if report else 0, "register": "missing"}
    settings = smtp_settings(config, "lateness notices", True, overrides, tls_context)

    async def send() -> Any:
        with open_register(config) as register:
            await asyncio.to_thread(register.migrate)
            return await send_to_operations_once_a_day(
                register, settings, operations, as_of=as_of, run_id=run_id, content="sync-late",
                subject=notice.subject, text=notice.text, header_kind="operations-late", clock=clock,
            )

    result = await send()  # through the outbox, once per recipient and day: a rerun sends nothing twice
    if result.waiting:
        raise RuntimeError(f"the lateness notice was not accepted: {[w['error'] for w in result.waiting]}")
    return {**summary, "late": True, "notified": result.sent, "already_notified": result.already_sent}
