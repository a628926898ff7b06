"""The sync: the housing system's export into the register (services/sync.py)."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock, system_clock
from cautionflow.progress import Progress, no_progress

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig


def run_sync(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, allow_mass_end: bool = False,
    clock: Clock = system_clock, progress: Progress = no_progress,
) -> dict[str, Any]:
    """`progress` sees the rows read, validated and written (the command line's bar on a terminal).
    `allow_mass_end` lets an officer's real clean-up past the mass-end guard
    (`sync.mass_end_share`, `sync.mass_end_minimum`)."""
    from cautionflow.adapters.register import Register
    from cautionflow.adapters.source import SqlAlertSource
    from cautionflow.domain.guards import MassEndLimit, contractor_areas
    from cautionflow.services.sync import sync_register

    source = SqlAlertSource(config.source.url, config.source_query())
    # Register itself, not open_register: the sync alone may create a register (migrate(create=True)).
    with Register(config.register_url) as register:
        summary = sync_register(
            source, register, as_of=as_of, run_id=run_id, allow_mass_end=allow_mass_end,
            mass_end=MassEndLimit(share=config.sync.mass_end_share, minimum=config.sync.mass_end_minimum),
            contractor_areas=contractor_areas(config.recipients), clock=clock, progress=progress,
        )
    return summary.as_dict()
