"""The weekly housekeeping: retention's anonymisation and the governance reports."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.storage import letters_storage, reports_storage
from cautionflow.clock import Clock, system_clock
from cautionflow.steps.wiring import open_register, policy_profile, renderer

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig


def run_retention(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, dry_run: bool = False, clock: Clock = system_clock,
) -> dict[str, Any]:
    """Anonymise ended alerts kept longer than the profile's `retention_months_after_end`; nothing
    while the profile leaves it unset. Weekly, from `cautionflow_housekeeping`."""
    from cautionflow.services.retention import anonymise_expired

    profile = policy_profile(config)
    with open_register(config) as register:
        summary = anonymise_expired(
            register, profile, as_of=as_of, run_id=run_id, dry_run=dry_run,
            letters_dir=letters_storage(config), clock=clock,
        )
    return summary.as_dict()


def run_governance(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str = "", reports: tuple[str, ...] | None = None,
) -> dict[str, Any]:
    """The governance reports and officers' lists (services/governance_reports.py): all of them for
    the housekeeping DAG's `governance_reports` task, or those `reports` names
    (`cautionflow governance --report`). The summary's `reports` name each file written."""
    from cautionflow.adapters.equality_source import configured_equality
    from cautionflow.services.governance_reports import REPORTS, run_governance_reports

    with open_register(config) as register:
        return run_governance_reports(
            register, as_of, organisation=config.organisation, folder=reports_storage(config),
            render=renderer(config), profile=policy_profile(config), equality=configured_equality(config),
            reports=reports or REPORTS,
        ).summary()
