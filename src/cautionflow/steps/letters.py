"""Resident letters: the day's queue, dispatch, and what officers do by hand (list, approve,
attach a translation, the flags list)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.storage import storage_path
from cautionflow.clock import Clock, system_clock
from cautionflow.steps.wiring import open_register, policy_profile, renderer, smtp_settings

if TYPE_CHECKING:
    from pathlib import Path

    from cautionflow.adapters.letters import StoredFlag, StoredLetter
    from cautionflow.adapters.register import Register
    from cautionflow.config import CautionflowConfig, LettersConfig

NO_LETTERS = "no letters section in the config"


def run_letters(
    config: CautionflowConfig, *, as_of: dt.date, run_id: str, smtp_overrides: dict[str, Any] | None = None,
    retry: Any = None, tls_context: Any = None, dispatch: bool = True, clock: Clock = system_clock,
) -> dict[str, Any]:
    """Queue the day's resident letters; with `letters.auto_approve`, dispatch them too (unless
    `dispatch=False`: the DAG dispatches in its own async task, `run_letters_dispatch_async`).

    Letters need an existing register (never created here) but not a recent sync, unlike digests:
    each tells one resident of a decision on their own alert, already recorded, and none is owed
    by an alert leaving the register (a removal letter follows a recorded review outcome), so a
    stale or empty register cannot lift anything through them.

    A config with no `letters` section queues nothing and says so (`skipped`); the register is still
    opened first, so a missing one is reported as by every other step. Every letter carries the
    landlord's contact block (`letters.contact`, required by the loader with the section): the
    templates offer its appeals email, never the SMTP sender."""
    import asyncio

    from cautionflow.services.letters import queue_letters

    with open_register(config) as register:
        if config.letters is None:
            register.require()  # a missing register is said as every other step says it
            return _skipped("letters", as_of, run_id) | {"owed": 0, "queued": 0, "held": 0, "approved": 0}
        summary = queue_letters(
            register, policy_profile(config), as_of=as_of, run_id=run_id, render=renderer(config),
            output_dir=storage_path(config, config.letters.output_dir), organisation=config.organisation,
            contact=config.letters.contact, auto_approve=config.letters.auto_approve, clock=clock,
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
    if config.letters is None or not config.letters.auto_approve:
        nothing = {"auto_approve": False, "approved": 0, "sent": 0, "pending": 0, "failed": 0, "waiting": []}
        if config.letters is None:
            return _skipped("letters_dispatch", as_of, run_id) | nothing
        return {"step": "letters_dispatch", "as_of": as_of.isoformat(), "run_id": run_id, **nothing, "complete": True}
    summary = await dispatch_approved_letters(
        config, as_of=as_of, smtp_overrides=smtp_overrides, retry=retry, tls_context=tls_context, clock=clock,
    )
    return {"step": "letters_dispatch", "as_of": as_of.isoformat(), "run_id": run_id, "auto_approve": True, **summary}


async def dispatch_approved_letters(
    config: CautionflowConfig, *, as_of: dt.date, smtp_overrides: dict[str, Any] | None = None, retry: Any = None,
    tls_context: Any = None, clock: Clock = system_clock,
) -> dict[str, Any]:
    """Dispatch every approved letter: the print batch, and letters by email through the outbox.
    What the DAG does with `letters.auto_approve` and an officer does with `cautionflow letters dispatch`.
    Each letter is dated `as_of`, the day it leaves (rendered again first when it bears another date),
    and an "alert added" letter dispatched records the resident told that day (`alerts.told_on`)."""
    from cautionflow.services.letter_dispatch import dispatch_letters

    letters = _letters_section(config, "dispatch")
    settings = smtp_settings(config, "letters", False, smtp_overrides, tls_context)
    with open_register(config) as register:
        summary = await dispatch_letters(
            register, settings, organisation=config.organisation, output_dir=storage_path(config, letters.output_dir),
            retry=retry, clock=clock, contact=letters.contact, redate=_redater(config, register, as_of),
        )
    return {"dated_on": as_of.isoformat(), **summary.as_dict()}


def _redater(config: CautionflowConfig, register: Register, as_of: dt.date) -> Callable[..., dict[int, str]]:
    """`services.letters.redate_letters` for this deployment and day: what dates letters the day they leave."""
    from cautionflow.services.letters import redate_letters

    letters = _letters_section(config, "date")
    profile, render = policy_profile(config), renderer(config)

    def redate(stored: Sequence[StoredLetter]) -> dict[int, str]:
        return redate_letters(
            register, stored, profile, as_of=as_of, render=render, output_dir=storage_path(config, letters.output_dir),
            organisation=config.organisation, contact=letters.contact,
        )

    return redate


def export_dispatched(config: CautionflowConfig, *, since: dt.date, out: Path | None) -> tuple[int, str | None]:
    """The dispatch export for the housing system (`cautionflow letters export`; Dover 6.24/6.36, Teign 11:
    the decision recorded there): one row per letter dispatched on or after `since` (the date it bears),
    by date then id. Written to `out` as every CSV file is (`adapters.files.write_csv`: formula-safe,
    BOM, CRLF, whole or not at all), so a rerun writes the same bytes; without `out`, returned as text
    for stdout, without a BOM (a stream for the housing system's import). Returns (rows, the text or None)."""
    from cautionflow.adapters.files import write_csv
    from cautionflow.domain.csv_format import csv_text
    from cautionflow.services.letter_dispatch import EXPORT_COLUMNS, dispatch_export_rows

    with _migrated_register(config) as register:
        rows = dispatch_export_rows(register.letter_queue.dispatched_since(since))
    if out is None:
        return len(rows), csv_text(EXPORT_COLUMNS, rows, bom=False)
    write_csv(out, EXPORT_COLUMNS, rows)
    return len(rows), None


def _skipped(step: str, as_of: dt.date, run_id: str) -> dict[str, Any]:
    """A letters step's summary without a letters section: done, nothing to do (the DAG's task
    succeeds and `run all` goes on)."""
    return {"step": step, "as_of": as_of.isoformat(), "run_id": run_id, "skipped": NO_LETTERS, "complete": True}


def _letters_section(config: CautionflowConfig, what: str) -> LettersConfig:
    """The config's letters section, for what an officer does by hand; a one-line ConfigError without it."""
    from cautionflow.config import ConfigError

    if config.letters is None:
        raise ConfigError(f"letters: {NO_LETTERS}: nothing to {what} (add letters: output_dir, contact)")
    return config.letters


def list_letters(config: CautionflowConfig, *, status: str | None) -> list[StoredLetter]:
    """The letters queue (`cautionflow letters list`), optionally of one status."""
    with _migrated_register(config) as register:
        return register.letter_queue.list(status=status)


def approve_letters(
    config: CautionflowConfig, *, batch: dt.date | None, letter_id: int | None, as_of: dt.date,
    clock: Clock = system_clock,
) -> list[StoredLetter]:
    """An officer approves a day's batch or one letter (`cautionflow letters approve`): the letters
    this approval moved from queued to approved, so the officer sees what was approved. Each is dated
    `as_of` (rendered again when it bore another date), so `letters show` shows the dates it will go
    with; dispatch dates it again only if it leaves another day. One that cannot be dated again stays
    approved with the reason in its `hold_reason`, and dispatch tries again."""
    with _migrated_register(config) as register:
        queue = register.letter_queue
        ids = queue.approve(now=clock(), batch=batch, letter_id=letter_id)
        if not ids:
            return []
        queue.record_problem(_redater(config, register, as_of)(queue.list(ids=ids)))
        return queue.list(ids=ids)


class LetterNotFound(Exception):
    """No letter with that id in the queue (one line for the officer)."""


def show_letter(config: CautionflowConfig, letter_id: int) -> tuple[StoredLetter, list[str]]:
    """One queued letter and its PDF's text, page by page, as the resident would read it
    (`cautionflow letters show`): what an officer reads before approving it."""
    from cautionflow.adapters.files import shown_path
    from cautionflow.adapters.pdf import UnreadablePdfError, pdf_text
    from cautionflow.services.letters import stored_pdf

    with _migrated_register(config) as register:
        letter = register.letter_queue.get(letter_id)
    if letter is None:
        raise LetterNotFound(f"letter {letter_id}: no such letter (cautionflow letters list shows the queue)")
    path = stored_pdf(storage_path(config, config.letters.output_dir), letter.pdf_path)
    try:
        return letter, pdf_text(path)
    except UnreadablePdfError as exc:
        raise LetterNotFound(f"letter {letter_id}: its PDF {shown_path(path)} cannot be read ({exc})") from None


def attach_translated_letter(config: CautionflowConfig, *, letter_id: int, file: str | Path) -> StoredLetter:
    """An officer attaches a translated letter's PDF to a held letter (`cautionflow letters translated`):
    a local file (relative to where the officer is), or a URL read through the object store, where a
    translator may have uploaded it."""
    from pathlib import Path

    from cautionflow.config import storage_scheme
    from cautionflow.services.letters import attach_translation

    letters = _letters_section(config, "attach a translation to")
    translation = storage_path(config, str(file)) if storage_scheme(str(file)) else Path(file)
    with open_register(config) as register:
        return attach_translation(
            register, letter_id, translation, output_dir=storage_path(config, letters.output_dir), auto_approve=letters.auto_approve,
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
