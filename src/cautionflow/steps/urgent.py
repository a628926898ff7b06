"""Urgent notices: sync, then tell contractors and call handlers of urgent changes at once
(services/urgent.py; the `cautionflow_urgent` DAG, every 15 minutes)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock, system_clock
from cautionflow.steps.wiring import digest_options, renderer, smtp_settings

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig


async def run_urgent_async(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, clock: Clock = system_clock, now: dt.datetime | None = None,
) -> dict[str, Any]:
    """Sync the register as `cautionflow_sync` does (its lock and mass-end guard), then queue and
    deliver one urgent notice per contractor or call handler with an urgent change untold (config
    `urgent.codes`). `now` (default: the clock after the sync) bounds the 24-hour window of a
    recipient that has had no digest. No freshness check: this step's own sync is the freshness.
    The notices show what each recipient's digest shows, from the digests' own options."""
    from cautionflow.adapters.register import Register
    from cautionflow.adapters.source import SqlAlertSource
    from cautionflow.domain.guards import MassEndLimit, contractor_areas
    from cautionflow.services.urgent import run_urgent

    told = any(r.role in ("contractor", "out_of_hours") for r in config.recipients)
    settings = smtp_settings(config, "urgent notices", told, smtp_overrides, tls_context)
    source = SqlAlertSource(config.source.url, config.source_query())
    options = digest_options(config)  # a profile that cannot be read fails the step before it syncs
    # Register itself, not open_register: like the sync step, this one may create the register.
    with Register(config.register_url) as register:
        summary = await run_urgent(
            register, source, settings, config.recipients, urgent_codes=config.urgent.codes,
            organisation=config.organisation, options=options, as_of=as_of, run_id=run_id,
            render=renderer(config),
            mass_end=MassEndLimit(share=config.sync.mass_end_share, minimum=config.sync.mass_end_minimum),
            contractor_areas=contractor_areas(config.recipients), retry=retry, clock=clock, now=now,
        )
    return summary.as_dict()
