"""Deadlines and the officers' weekly review reminder (services/deadlines.py, services/reminders.py)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.storage import reports_storage
from cautionflow.clock import Clock, system_clock
from cautionflow.steps.wiring import (
    open_register,
    policy_profile,
    register_to_mail_from,
    renderer,
    smtp_settings,
)

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig


def run_deadlines(config: CautionflowConfig, *, as_of: dt.date, run_id: str) -> dict[str, Any]:
    """Every alert's review and appeal dates under the profile, and the All Alerts and overdue reports."""
    from cautionflow.services.deadlines import compute_register_deadlines

    profile = policy_profile(config)
    with open_register(config) as register:
        summary = compute_register_deadlines(
            register, profile, as_of=as_of, run_id=run_id, reports_dir=reports_storage(config),
            render=renderer(config), organisation=config.organisation,
        )
    return summary.as_dict()


async def run_reminders_async(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, clock: Clock = system_clock,
) -> dict[str, Any]:
    """The officers' weekly review reminder, through the digests' outbox; refused, as the digests
    are, unless the register completed a sync recently by `clock`."""
    from cautionflow.domain.reminders import reminder_is_due
    from cautionflow.services.reminders import send_review_reminders

    settings = smtp_settings(
        config, "review reminders", any(reminder_is_due(o, as_of) for o in config.recipients), smtp_overrides,
        tls_context,
    )
    with register_to_mail_from(config, "review reminders", clock) as register:
        summary = await send_review_reminders(
            register, settings, config.recipients, organisation=config.organisation, as_of=as_of,
            run_id=run_id, render=renderer(config), retry=retry, clock=clock,
        )
    return summary.as_dict()
