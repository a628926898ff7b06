"""Resident letters: the day's queue, dispatch, and what officers do by hand (list, approve,
attach a translation, the flags list)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock, system_clock
from cautionflow.steps.wiring import open_register, policy_profile, renderer, smtp_settings

if TYPE_CHECKING:
    from pathlib import Path

    from cautionflow.adapters.letters import StoredFlag, StoredLetter
    from cautionflow.adapters.register import Register
    from cautionflow.config import CautionflowConfig


def run_letters(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, dispatch: bool = True, clock: Clock = system_clock,
) -> dict[str, Any]:
    """Queue the day's resident letters; with `letters.auto_approve`, dispatch them too (unless
    `dispatch=False`: the DAG dispatches in its own async task, `run_letters_dispatch_async`).

    Letters need an existing register (never created here) but not a recent sync, unlike digests:
    each tells one resident of a decision on their own alert, already recorded, and none is owed
    by an alert leaving the register (a removal letter follows a recorded review outcome), so a
    stale or empty register cannot lift anything through them."""
    import asyncio

    from cautionflow.services.letters import queue_letters

    settings = smtp_settings(config, "letters", False, smtp_overrides, tls_context)
    with open_register(config) as register:
        summary = queue_letters(
            register, policy_profile(config), as_of=as_of, run_id=run_id, render=renderer(config),
            output_dir=config.path(config.letters.output_dir), organisation=config.organisation,
            reply_email=settings.sender_address if settings else None, auto_approve=config.letters.auto_approve,
            clock=clock,
        ).as_dict()
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
    """The letters DAG's dispatch: with `letters.auto_approve`, dispatch the approved letters (print
    batch; email through the outbox, with the Airflow task's SMTP overrides). Without it officers
    dispatch by hand (`cautionflow letters dispatch`, `dispatch_approved_letters`): nothing is done."""
    if not config.letters.auto_approve:
        return {"step": "letters_dispatch", "as_of": as_of.isoformat(), "run_id": run_id, "auto_approve": False,
                "approved": 0, "sent": 0, "pending": 0, "failed": 0, "waiting": [], "complete": True}
    summary = await dispatch_approved_letters(
        config, smtp_overrides=smtp_overrides, retry=retry, tls_context=tls_context, clock=clock,
    )
    return {"step": "letters_dispatch", "as_of": as_of.isoformat(), "run_id": run_id, "auto_approve": True, **summary}


async def dispatch_approved_letters(
    config: CautionflowConfig, *, smtp_overrides: dict[str, Any] | None = None, retry: Any = None,
    tls_context: Any = None, clock: Clock = system_clock,
) -> dict[str, Any]:
    """Dispatch every approved letter: the print batch, and letters by email through the outbox.
    What the DAG does with `letters.auto_approve` and an officer does with `cautionflow letters dispatch`."""
    from cautionflow.services.letter_dispatch import dispatch_letters

    settings = smtp_settings(config, "letters", False, smtp_overrides, tls_context)
    with open_register(config) as register:
        summary = await dispatch_letters(
            register, settings, organisation=config.organisation, output_dir=config.path(config.letters.output_dir),
            retry=retry, clock=clock,
        )
    return summary.as_dict()


def list_letters(config: CautionflowConfig, *, status: str | None) -> list[StoredLetter]:
    """The letters queue (`cautionflow letters list`), optionally of one status."""
    with _migrated_register(config) as register:
        return register.letter_queue.list(status=status)


def approve_letters(
    config: CautionflowConfig, *, batch: dt.date | None, letter_id: int | None, clock: Clock = system_clock,
) -> int:
    """An officer approves a day's batch or one letter (`cautionflow letters approve`); how many."""
    with _migrated_register(config) as register:
        return register.letter_queue.approve(now=clock(), batch=batch, letter_id=letter_id)


def attach_translated_letter(config: CautionflowConfig, *, letter_id: int, file: Path) -> StoredLetter:
    """An officer attaches a translated letter's PDF to a held letter (`cautionflow letters translated`)."""
    from cautionflow.services.letters import attach_translation

    with open_register(config) as register:
        return attach_translation(
            register, letter_id, file, output_dir=config.path(config.letters.output_dir),
            auto_approve=config.letters.auto_approve,
        )


def officer_flags(config: CautionflowConfig, *, include_resolved: bool) -> list[StoredFlag]:
    """The officers' list of alerts no letter can settle (`cautionflow letters flags`)."""
    with _migrated_register(config) as register:
        return register.letter_flags.list(include_resolved=include_resolved)


def translation_errors() -> tuple[type[BaseException], ...]:
    """A translation an officer attached that cannot be used: reported as one line, like step_errors."""
    from cautionflow.services.letters import TranslationError

    return (TranslationError,)


@contextmanager
def _migrated_register(config: CautionflowConfig) -> Iterator[Register]:
    """The register, its schema brought up to date (the letters' tables came after the first sync)."""
    with open_register(config) as register:
        register.migrate()
        yield register
