"""Operations' side of the outbox, for every kind of mail: failed mail resent (`cautionflow mail
resend-failed`, and `cautionflow digests resend-failed` for digests only)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock, system_clock
from cautionflow.steps.wiring import open_register, smtp_settings

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig


async def resend_failed_mail(
    config: CautionflowConfig, *, kinds: Sequence[str] | None = None, since: dt.date | None = None,
    dry_run: bool = False, include_uncertain: bool = False, retry: Any = None, clock: Clock = system_clock,
    purpose: str = "failed messages",
) -> dict[str, Any]:
    """Mail of `kinds` (None: every kind in the outbox) the server refused (and, when asked, mail
    whose delivery is uncertain) as of `since` or later, queued again and sent; with `dry_run`, only
    listed. The register must exist (only the sync creates one), but no recent sync is required:
    what is resent was composed when it was first queued. `purpose` names the mail in the one-line
    error when the config has no smtp section."""
    from cautionflow.services.resend import resend_failed

    settings = smtp_settings(config, purpose, not dry_run)
    with open_register(config) as register:
        summary = await resend_failed(
            register, settings, config.recipients, kinds=kinds, since=since, dry_run=dry_run,
            include_uncertain=include_uncertain, retry=retry, clock=clock,
        )
    return summary.as_dict()
