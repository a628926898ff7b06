"""The appeals list to the `appeals` recipients (services/appeals.py)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock, system_clock
from cautionflow.steps.wiring import register_to_mail_from, renderer, smtp_settings

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig


async def run_appeals_async(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, clock: Clock = system_clock,
) -> dict[str, Any]:
    """The open appeals, overdue first, to each `appeals` recipient weekly on its `weekday` and daily
    once one is overdue, through the digests' outbox; refused, as the reminders are, unless the
    register completed a sync recently by `clock` (an appeal decided since would be chased)."""
    from cautionflow.domain.appeals import ROLE
    from cautionflow.services.appeals import send_appeals_lists

    # Needed whenever an `appeals` recipient is configured: whether one is due today depends on
    # the register (an overdue appeal makes the list daily), read only after the freshness check.
    settings = smtp_settings(
        config, "appeals lists", any(r.role == ROLE for r in config.recipients), smtp_overrides, tls_context,
    )
    with register_to_mail_from(config, "appeals list", clock) as register:
        summary = await send_appeals_lists(
            register, settings, config.recipients, organisation=config.organisation, as_of=as_of,
            run_id=run_id, render=renderer(config), retry=retry, clock=clock,
        )
    return summary.as_dict()
