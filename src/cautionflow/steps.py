"""The pipeline's steps by name: what `cautionflow run STEP` and the DAG tasks call.

Each step takes the validated config, the as-of date and a run id, and returns a JSON-able
summary. Adapters are created here, inside the step, so credentials never outlive it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock, system_clock
from cautionflow.config import CautionflowConfig
from cautionflow.progress import Progress, no_progress

if TYPE_CHECKING:
    from cautionflow.adapters.register import Register

Step = Callable[..., dict[str, Any]]


def run_sync(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, allow_mass_end: bool = False,
    allow_empty_source: bool = False, clock: Clock = system_clock, progress: Progress = no_progress,
) -> dict[str, Any]:
    """`progress` sees the rows read, validated and written (the command line's bar on a terminal).
    `allow_mass_end` (or its older name `allow_empty_source`) lets an officer's real clean-up past
    the mass-end guard (`sync.mass_end_share`, `sync.mass_end_minimum`)."""
    from cautionflow.adapters.register import Register
    from cautionflow.adapters.source import SqlAlertSource
    from cautionflow.domain.guards import MassEndLimit, contractor_areas
    from cautionflow.services.sync import sync_register

    source = SqlAlertSource(config.source.url, config.source_query())
    register = Register(config.register_url)
    try:
        summary = sync_register(
            source, register, as_of=as_of, run_id=run_id, allow_mass_end=allow_mass_end or allow_empty_source,
            mass_end=MassEndLimit(share=config.sync.mass_end_share, minimum=config.sync.mass_end_minimum),
            contractor_areas=contractor_areas(config.recipients), clock=clock, progress=progress,
        )
    finally:
        register.dispose()
    return summary.as_dict()


def policy_profile(config: CautionflowConfig):
    """The configured profile: a shipped name, or a file path resolved against the project home."""
    from cautionflow.profiles import load_profile

    policy = config.policy
    if "/" in policy or policy.endswith((".yaml", ".yml")):
        return load_profile(config.path(policy))
    return load_profile(policy)


def run_deadlines(config: CautionflowConfig, *, as_of: dt.date, run_id: str) -> dict[str, Any]:
    from cautionflow.adapters.register import Register
    from cautionflow.adapters.templates import renderer
    from cautionflow.services.deadlines import compute_register_deadlines

    profile = policy_profile(config)
    register = Register(config.register_url)
    try:
        summary = compute_register_deadlines(
            register,
            profile,
            as_of=as_of,
            run_id=run_id,
            reports_dir=config.path(config.output_dir),
            render=renderer(config),
            organisation=config.organisation,
        )
    finally:
        register.dispose()
    return summary.as_dict()


def smtp_settings(
    config: CautionflowConfig, purpose: str, needed: bool, overrides: dict[str, Any] | None, tls_context: Any
) -> Any:
    """The SMTP settings for a mail step, or None without an smtp section (an error if mail is due)."""
    from cautionflow.adapters.mail import SmtpSettings
    from cautionflow.config import ConfigError

    if config.smtp is None:
        if needed:
            raise ConfigError(f"smtp: {purpose} are due but the config has no smtp section to send them with")
        return None
    return SmtpSettings.from_config(config.smtp, overrides=overrides, tls_context=tls_context)


def register_to_mail_from(config: CautionflowConfig, what: str, clock: Clock) -> Register:
    """The register, once it is known to exist and to have completed a sync within
    `mail.max_sync_age_hours` by `clock`; else a RegisterNotReadyError naming `what` (exit 2 on the
    command line; an Airflow task fails without retries and operations are told). Mail that lists
    or lifts flags is never composed from a missing, never-synced or stale register."""
    from cautionflow.adapters.register import Register
    from cautionflow.services.register_freshness import require_recent_sync

    register = Register(config.register_url)
    try:
        require_recent_sync(register, what=what, max_age_hours=config.mail.max_sync_age_hours, clock=clock)
    except BaseException:
        register.dispose()
        raise
    return register


async def run_digests_async(
    config: CautionflowConfig,
    *,
    as_of: dt.date,
    run_id: str,
    smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None,
    tls_context: Any = None,
    clock: Clock = system_clock,
) -> dict[str, Any]:
    """Compose, queue and deliver today's digests (the Airflow task awaits this in its event loop).

    `smtp_overrides` are the Airflow connection's host, port, login, password, security and sender;
    `retry` a mail.RetryPolicy; `tls_context` an ssl.SSLContext trusting a private CA. Refused (see
    `register_to_mail_from`) unless the register completed a sync recently by `clock`."""
    from cautionflow.adapters.templates import renderer
    from cautionflow.domain.digests import due_recipients
    from cautionflow.services.digests import send_digests

    settings = smtp_settings(
        config, "digests", bool(due_recipients(config.recipients, as_of)), smtp_overrides, tls_context
    )
    render = renderer(config)
    register = register_to_mail_from(config, "digests", clock)
    try:
        summary = await send_digests(
            register, settings, config.recipients, organisation=config.organisation, as_of=as_of,
            run_id=run_id, render=render, retry=retry, clock=clock,
        )
    finally:
        register.dispose()
    return summary.as_dict()


def blocking(step: Callable[..., Any]) -> Step:
    """An async mail step for callers without an event loop (the command line, `run all`)."""

    def run(config: CautionflowConfig, **kwargs: Any) -> dict[str, Any]:
        import asyncio

        return asyncio.run(step(config, **kwargs))

    run.__doc__ = step.__doc__
    return run


run_digests = blocking(run_digests_async)


async def run_reminders_async(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, clock: Clock = system_clock,
) -> dict[str, Any]:
    """The officers' weekly review reminder (deadlines issue), through the digests' outbox; refused,
    as the digests are, unless the register completed a sync recently by `clock`."""
    from cautionflow.adapters.templates import renderer
    from cautionflow.domain.reminders import reminder_is_due
    from cautionflow.services.reminders import send_review_reminders

    settings = smtp_settings(
        config, "review reminders", any(reminder_is_due(o, as_of) for o in config.recipients), smtp_overrides,
        tls_context,
    )
    register = register_to_mail_from(config, "review reminders", clock)
    try:
        summary = await send_review_reminders(
            register, settings, config.recipients, organisation=config.organisation, as_of=as_of,
            run_id=run_id, render=renderer(config), retry=retry, clock=clock,
        )
    finally:
        register.dispose()
    return summary.as_dict()


run_reminders = blocking(run_reminders_async)


def run_letters(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, dispatch: bool = True, clock: Clock = system_clock,
) -> dict[str, Any]:
    """Queue the day's resident letters (letters issue); with `letters.auto_approve`, dispatch them too
    (unless `dispatch=False`: the DAG dispatches in its own async task, `run_letters_dispatch_async`).

    Letters need an existing register (never created here) but not a recent sync, unlike digests:
    each tells one resident of a decision on their own alert, already recorded, and none is owed
    by an alert leaving the register (a removal letter follows a recorded review outcome), so a
    stale or empty register cannot lift anything through them."""
    import asyncio

    from cautionflow.adapters.register import Register
    from cautionflow.adapters.templates import renderer
    from cautionflow.services.letters import queue_letters

    settings = smtp_settings(config, "letters", False, smtp_overrides, tls_context)
    register = Register(config.register_url)
    try:
        summary = queue_letters(
            register, policy_profile(config), as_of=as_of, run_id=run_id, render=renderer(config),
            output_dir=config.path(config.letters.output_dir), organisation=config.organisation,
            reply_email=settings.sender_address if settings else None, auto_approve=config.letters.auto_approve,
            clock=clock,
        ).as_dict()
    finally:
        register.dispose()
    if config.letters.auto_approve and dispatch:
        dispatched = asyncio.run(run_letters_dispatch_async(
            config, as_of=as_of, run_id=run_id, smtp_overrides=smtp_overrides, retry=retry, tls_context=tls_context,
            clock=clock,
        ))
        summary.update(dispatched=dispatched["approved"], dispatch=dispatched, complete=dispatched["complete"])
    return summary


async def run_letters_dispatch_async(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, clock: Clock = system_clock,
) -> dict[str, Any]:
    """With `letters.auto_approve`: dispatch the approved letters (print batch; email through the outbox,
    with the Airflow task's SMTP overrides). Without it officers dispatch by hand: nothing is done."""
    from cautionflow.adapters.register import Register
    from cautionflow.services.letters import dispatch_letters

    if not config.letters.auto_approve:
        return {"step": "letters_dispatch", "as_of": as_of.isoformat(), "run_id": run_id, "auto_approve": False,
                "approved": 0, "sent": 0, "pending": 0, "failed": 0, "waiting": [], "complete": True}
    settings = smtp_settings(config, "letters", False, smtp_overrides, tls_context)
    register = Register(config.register_url)
    try:
        summary = (await dispatch_letters(
            register, settings, organisation=config.organisation, output_dir=config.path(config.letters.output_dir),
            retry=retry, clock=clock,
        )).as_dict()
    finally:
        register.dispose()
    return {"step": "letters_dispatch", "as_of": as_of.isoformat(), "run_id": run_id, "auto_approve": True, **summary}


def run_retention(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, dry_run: bool = False, clock: Clock = system_clock,
) -> dict[str, Any]:
    """Anonymise ended alerts kept longer than the profile's `retention_months_after_end` (governance
    issue); nothing while the profile leaves it unset. Weekly, from `cautionflow_housekeeping`."""
    from cautionflow.adapters.register import Register
    from cautionflow.services.retention import anonymise_expired

    profile = policy_profile(config)
    register = Register(config.register_url)
    try:
        summary = anonymise_expired(
            register, profile, as_of=as_of, run_id=run_id, dry_run=dry_run,
            letters_dir=config.path(config.letters.output_dir), clock=clock,
        )
    finally:
        register.dispose()
    return summary.as_dict()


def run_governance(config: CautionflowConfig, *, as_of: dt.date, run_id: str) -> dict[str, Any]:
    """The governance reports and officers' lists (services/governance_reports.py), for the
    housekeeping DAG's `governance_reports` task; `cautionflow governance` runs them by hand."""
    from cautionflow.adapters.register import Register
    from cautionflow.services.governance_reports import run_governance_reports

    register = Register(config.register_url)
    try:
        return run_governance_reports(config, register, as_of).summary()
    finally:
        register.dispose()


STEPS: dict[str, Step] = {
    "sync": run_sync, "deadlines": run_deadlines, "reminders": run_reminders, "digests": run_digests,
    "letters": run_letters, "retention": run_retention,
    "governance": run_governance,
}
# `run all` runs these in order.
PIPELINE: tuple[str, ...] = ("sync", "deadlines", "reminders", "letters", "digests")


def step_errors() -> tuple[type[BaseException], ...]:
    """The errors a person fixes (config, source, register), reported as one line."""
    from cautionflow.adapters.register import RegisterError
    from cautionflow.adapters.source import SourceError
    from cautionflow.config import ConfigError
    from cautionflow.domain.policy import ProfileError
    from cautionflow.domain.validation import SourceShapeError
    from cautionflow.services.sync import MassEndError  # EmptySourceError is one

    return (ConfigError, SourceError, RegisterError, SourceShapeError, MassEndError, ProfileError)
