"""No mail from a register that has not synced: digests, review reminders and the daily
summary check, before composing anything, that the register exists and that its last completed
sync (`sync_runs.finished_at`) is no older than `mail.max_sync_age_hours`. See
`cautionflow.domain.freshness` for why."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

from cautionflow.adapters.register import RegisterNotFoundError, RegisterNotReadyError
from cautionflow.clock import Clock, system_clock
from cautionflow.domain.freshness import sync_age_problem


class SyncedRegister(Protocol):
    def migrate(self) -> None: ...

    def last_sync_finished_at(self) -> dt.datetime | None: ...


class RegisterNotSyncedError(RegisterNotReadyError):
    """The register has never completed a sync, or not recently enough to mail from."""


def require_recent_sync(
    register: SyncedRegister, *, what: str, max_age_hours: float, clock: Clock = system_clock
) -> dt.datetime:
    """When the register's last completed sync finished; refuses (one line naming `what`) when
    there is no register, no completed sync, or only one older than `max_age_hours` by `clock`."""
    try:
        register.migrate()  # an existing register only: it is never created here
    except RegisterNotFoundError as exc:
        raise RegisterNotFoundError(f"{what} not sent: {exc}") from None
    finished = register.last_sync_finished_at()
    problem = sync_age_problem(finished, clock(), dt.timedelta(hours=max_age_hours))
    if problem is not None:
        setting = "" if finished is None else f" (mail.max_sync_age_hours: {max_age_hours:g})"
        raise RegisterNotSyncedError(f"{what} not sent: {problem}{setting}; run the sync first")
    assert finished is not None
    return finished
