"""The daily digests to contractors and call handlers, and the operations' daily run summary."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock, system_clock
from cautionflow.steps.wiring import digest_options, register_to_mail_from, renderer, smtp_settings

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig


async def run_digests_async(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, clock: Clock = system_clock,
) -> dict[str, Any]:
    """Compose, queue and deliver today's digests (the Airflow task awaits this in its event loop).

    `smtp_overrides` are the Airflow connection's host, port, login, password, security and sender;
    `retry` a mail.RetryPolicy; `tls_context` an ssl.SSLContext trusting a private CA. Refused (see
    `register_to_mail_from`) unless the register completed a sync recently by `clock`."""
    from cautionflow.domain.digests import due_recipients
    from cautionflow.services.digests import send_digests

    settings = smtp_settings(
        config, "digests", bool(due_recipients(config.recipients, as_of)), smtp_overrides, tls_context
    )
    render = renderer(config)
    options = digest_options(config)
    with register_to_mail_from(config, "digests", clock) as register:
        summary = await send_digests(
            register, settings, config.recipients, organisation=config.organisation, as_of=as_of,
            run_id=run_id, render=render, retry=retry, clock=clock, options=options,
        )
    return summary.as_dict()


async def resend_failed_digests(
    config: CautionflowConfig, *, since: dt.date | None, dry_run: bool, include_uncertain: bool,
) -> dict[str, Any]:
    """`cautionflow digests resend-failed`: digests the server refused (and, when asked, those whose
    delivery is uncertain) since a day, resent; with `dry_run`, only listed. The same step as
    `cautionflow mail resend-failed`, for the digest kind only."""
    from cautionflow.domain.digests import KIND
    from cautionflow.steps.mail import resend_failed_mail

    return await resend_failed_mail(
        config, kinds=(KIND,), since=since, dry_run=dry_run, include_uncertain=include_uncertain,
        purpose="failed digests",
    )


async def run_summary_async(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, clock: Clock = system_clock,
) -> dict[str, Any]:
    """The daily run summary to operations: nothing unless `operations.daily_summary` is on and there
    are operations recipients; then one summary per recipient and day. Refused, as the digests are,
    when the register is missing or has no recent completed sync by `clock`: the failure (exit 2, or
    the task's failure notice) tells operations more plainly than a summary of a stale register."""
    from cautionflow.services.run_summary import send_run_summary

    operations = [r for r in config.recipients if r.role == "operations"]
    if not config.operations.daily_summary or not operations:
        why = "operations.daily_summary is off" if not config.operations.daily_summary else "no operations recipients"
        return {"step": "summary", "as_of": as_of.isoformat(), "run_id": run_id, "skipped": why, "pending": 0,
                "failed": 0, "uncertain": 0, "sent": 0}
    settings = smtp_settings(config, "daily run summaries", True, smtp_overrides, tls_context)
    with register_to_mail_from(config, "daily run summary", clock) as register:
        result = await send_run_summary(
            register, settings, config.recipients, organisation=config.organisation, as_of=as_of, run_id=run_id,
            retry=retry, clock=clock,
        )
    return result.as_dict()
