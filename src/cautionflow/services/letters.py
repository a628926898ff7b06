"""Resident letters: decide, render (HTML and an A4 PDF), queue, and attach translations.

* `queue_letters` reads every alert with its stored deadlines, asks `cautionflow.domain.letters`
  which letters are owed, renders only those whose key is not queued yet and queues them.
* The PDF is drawn from the same template's body (rendered with `pdf=True`), so HTML and PDF say
  the same thing; its typesetting and fonts are `cautionflow.adapters.pdf`, which puts the name and
  address in a DL window envelope's window and prints names beyond Latin-1 as recorded.
* `attach_translation` gives a letter held for translation the translated PDF an officer supplies
  (never machine-translated) and returns it to the queue.
* Dispatching the approved letters (print batch, email) is `cautionflow.services.letter_dispatch`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.letters import NewLetter, StoredLetter
from cautionflow.clock import Clock, system_clock
from cautionflow.domain import letters as d
from cautionflow.progress import StepProgress

if TYPE_CHECKING:
    from cautionflow.adapters.letters import LetterFlags, LetterQueue, LetterReads
    from cautionflow.domain.policy import PolicyProfile

log = logging.getLogger(__name__)

# The letter's type size in points; large print for a resident who asked for it.
NORMAL_PT, LARGE_PT = 11.0, 16.0


class LettersRegister(Protocol):
    """What queueing letters and attaching translations use of the register (`adapters.register.Register`)."""

    letter_reads: LetterReads
    letter_queue: LetterQueue
    letter_flags: LetterFlags

    def migrate(self) -> None: ...


@dataclass(frozen=True)
class LettersSummary:
    step: str
    as_of: str
    run_id: str
    owed: int  # letters the policy owes today, queued before or now
    queued: int  # newly queued by this run (sendable or held)
    held: int  # of those, held (translation, no address)
    already_queued: int
    suppressed: int
    suppressed_by_reason: dict[str, int]
    officers: list[dict[str, str]]  # untold old alerts, missing reasons: for an officer, not a letter
    approved: int
    flags: dict[str, int] = field(default_factory=dict)  # the stored officers' list: open, new, resolved
    dispatched: int | None = None
    dispatch: dict[str, Any] | None = None
    complete: bool = True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

# --- rendering ----------------------------------------------------------------------------------


def template_values(letter: d.OwedLetter, *, organisation: str, reply_email: str | None) -> dict[str, Any]:
    return {"letter": letter, "organisation": organisation, "as_of": letter.as_of, "reply_email": reply_email}


def render_html(render: Callable[..., str], letter: d.OwedLetter, **values: Any) -> tuple[str, str]:
    """(the whole letter as HTML, its body alone for the PDF)."""
    name = f"letters/{letter.kind}.html"
    context = template_values(letter, **values)
    return render(name, pdf=False, **context), render(name, pdf=True, **context)


def letter_pdf(letter: d.OwedLetter, body_html: str, *, organisation: str) -> bytes:
    """An A4 letter: sender and date top right, the address in the envelope window, then the body
    (large print when the resident asked for it)."""
    from cautionflow.adapters.pdf import window_letter_pdf

    return window_letter_pdf(
        body_html, sender=organisation, dated=_long_date(letter.as_of), address_lines=letter.address_lines,
        size=LARGE_PT if letter.large_print else NORMAL_PT, title=f"{organisation}: letter {letter.kind}",
        created_on=letter.as_of,
    )


def _long_date(day: dt.date) -> str:
    from cautionflow.adapters.templates import long_date

    return long_date(day)


def pdf_path(output_dir: Path, letter: d.OwedLetter) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", letter.alert_id)[:40]
    return output_dir / letter.as_of.isoformat() / f"{letter.kind}-{safe}-{letter.key[:12]}.pdf"


def stored_pdf(output_dir: Path, stored: str) -> Path:
    """A queued letter's PDF. The queue keeps the path relative to `letters.output_dir`, so another
    worker or the officer's host finds it wherever that shared folder is mounted."""
    path = Path(stored)
    return path if path.is_absolute() else output_dir / path


def render_letter(
    letter: d.OwedLetter, *, render: Callable[..., str], output_dir: Path, organisation: str,
    reply_email: str | None, status: str,
) -> NewLetter:
    """Render one owed letter to HTML and to its PDF file; the row to queue."""
    html, body = render_html(render, letter, organisation=organisation, reply_email=reply_email)
    path = pdf_path(output_dir, letter)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(letter_pdf(letter, body, organisation=organisation))
    return NewLetter(
        letter_key=letter.key, alert_id=letter.alert_id, person_ref=letter.person_ref,
        person_name=letter.person_name, address_lines=letter.address_lines, email=letter.email, kind=letter.kind,
        outcome=letter.outcome, alert_code=letter.alert_code, decision_date=letter.decision_date,
        as_of=letter.as_of, status="held" if letter.held else status, hold_reason=letter.hold_reason,
        channels=letter.channels, large_print=letter.large_print, language=letter.language, html=html,
        pdf_path=path.relative_to(output_dir).as_posix(),
    )


# --- queueing -----------------------------------------------------------------------------------


def queue_letters(
    register: LettersRegister, profile: PolicyProfile, *, as_of: dt.date, run_id: str,
    render: Callable[..., str], output_dir: Path, organisation: str, reply_email: str | None = None, auto_approve: bool = False,
    clock: Clock = system_clock,
) -> LettersSummary:
    timing = StepProgress("letters", logger=log)  # each stage's time at INFO, for the task log
    register.migrate()
    with timing.timed("owed letters planned"):
        plan = d.owed_letters(register.letter_reads.alerts_with_deadlines(), profile, as_of)
        queue = register.letter_queue
        known = queue.known_keys(letter.key for letter in plan.letters)
        new = [letter for letter in plan.letters if letter.key not in known]
    status = "approved" if auto_approve else "queued"
    rendering = timing.stage("rendered", total=len(new), unit="letters")
    rows = [
        render_letter(letter, render=render, output_dir=output_dir, organisation=organisation,
                      reply_email=reply_email, status=status)
        for letter in new
    ]
    rendering.finish(rows=len(rows))
    with timing.timed("queued"):
        queued = queue.enqueue(rows, now=clock())
        flags = register.letter_flags.record(plan.officers, as_of=as_of, run_id=run_id)
    timing.done()
    return LettersSummary(
        step="letters", as_of=as_of.isoformat(), run_id=run_id, owed=len(plan.letters), queued=queued,
        held=sum(1 for r in rows if r.status == "held"), already_queued=len(known),
        suppressed=len(plan.suppressed), suppressed_by_reason=plan.suppressed_by_reason,
        officers=[{"alert_id": o.alert_id, "person": o.person_name, "flag": o.code, "reason": o.reason}
                  for o in plan.officers],
        approved=sum(1 for r in rows if r.status == "approved"), flags=flags,
    )


# --- translations ---------------------------------------------------------------------------------


class TranslationError(ValueError):
    """A translation that cannot be attached: one line for the officer."""


def attach_translation(
    register: LettersRegister, letter_id: int, translation: Path, *, output_dir: Path,
    auto_approve: bool = False, clock: Clock = system_clock,
) -> StoredLetter:
    """Attach the translated PDF an officer supplies (Karbon 12, Hexagon Appendix 1: letters in the
    resident's language on request; cautionflow never machine-translates) to a letter held for
    translation, and return the letter to the queue (approved at once with `auto_approve`).

    The letter becomes one PDF: the English letter first, whose page 1 carries the name and address
    for the envelope window, then the translation. The English PDF is kept as it was."""
    from cautionflow.adapters.pdf import UnreadablePdfError, combine_pdfs, readable_page_count

    register.migrate()
    queue = register.letter_queue
    letter = queue.get(letter_id)
    if letter is None:
        raise TranslationError(f"letter {letter_id}: no such letter")
    if letter.status != "held" or not (letter.hold_reason or "").startswith(d.HOLD_TRANSLATION):
        state = f"{letter.status} ({letter.hold_reason})" if letter.hold_reason else letter.status
        raise TranslationError(f"letter {letter_id} is {state}, not held for translation")
    try:
        pages = readable_page_count(translation)
    except UnreadablePdfError as exc:
        raise TranslationError(f"{translation}: not a readable PDF ({exc})") from None
    if pages == 0:
        raise TranslationError(f"{translation}: the PDF has no pages")
    english = stored_pdf(output_dir, letter.pdf_path)
    language = re.sub(r"[^A-Za-z0-9_-]", "_", letter.language)[:16] or "xx"
    combined = english.with_name(f"{english.stem}-with-{language}.pdf")
    combine_pdfs([english, translation], combined)
    status = "approved" if auto_approve else "queued"
    changed = queue.attach_translation(
        letter_id, pdf_path=combined.relative_to(output_dir).as_posix(), english_pdf_path=letter.pdf_path,
        file_name=translation.name, status=status, now=clock(),
    )
    if changed != 1:  # another officer attached one meanwhile
        raise TranslationError(f"letter {letter_id} was changed meanwhile; list it and try again")
    return queue.get(letter_id)  # type: ignore[return-value]
