"""Resident letters: decide, render (HTML and an A4 PDF), queue, and attach translations.

* `queue_letters` reads every alert with its stored deadlines, asks `cautionflow.domain.letters`
  which letters are owed, renders only those whose key is not queued yet and queues them.
* The PDF is drawn from the same template's body (rendered with `pdf=True`), so HTML and PDF say
  the same thing; its typesetting and fonts are `cautionflow.adapters.pdf`, which puts the name and
  address in a DL window envelope's window and prints names beyond Latin-1 as recorded.
* A decision letter owed with no `resident_reason` is held (`no reason recorded for the resident`)
  and on the officers' list; `release_reasoned` renders it again with the reason and returns it to
  the queue on the first run after a sync brings one (Hexagon 5.3, Karbon 5.2, Teign Appendix E).
* `attach_translation` gives a letter held for translation the translated PDF an officer supplies
  (never machine-translated) and returns it to the queue.
* `redate_letters` dates letters the day they are approved or dispatched (a letter is dated
  the day it leaves), rendering again with `render_letter` from the register's alert row.
* Dispatching the approved letters (print batch, email) is `cautionflow.services.letter_dispatch`.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
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
    released: int = 0  # held for want of a reason for the resident, released now the register has one

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- rendering ----------------------------------------------------------------------------------


class LetterContact(Protocol):
    """The landlord's contact block (`config.LettersContact`), printed on every letter."""

    @property
    def address(self) -> tuple[str, ...]: ...
    @property
    def phone(self) -> str: ...
    @property
    def appeals_email(self) -> str: ...
    @property
    def appeals_address(self) -> tuple[str, ...]: ...
    @property
    def signed_by(self) -> str: ...
    @property
    def signed_title(self) -> str: ...
    @property
    def letterhead(self) -> str | None: ...


def letter_reference(alert_id: str, key: str) -> str:
    """The letter's "our ref": the alert's id in the housing system (what an officer looks up) and the
    first 8 characters of the letter's key (which of that alert's letters), e.g. `CX-0001/3fa2b9c1`.
    Stable, since the key is one per (alert, kind, decision date), and it names nobody: no name,
    address or code. One line, the id cut at 40 characters."""
    return f"{' '.join(str(alert_id).split())[:40]}/{key[:8]}"


def template_values(
    letter: d.OwedLetter, *, organisation: str, reply_email: str | None = None, contact: LetterContact | None = None,
) -> dict[str, Any]:
    """The letter templates' context. With the landlord's `contact` block, `reply_email` is its appeals
    email whatever is passed, so no template offers the SMTP sender, which nobody reads."""
    return {
        "letter": letter, "organisation": organisation, "as_of": letter.as_of, "contact": contact,
        "reply_email": contact.appeals_email if contact is not None else reply_email,
        "our_ref": letter_reference(letter.alert_id, letter.key),
    }


def render_html(render: Callable[..., str], letter: d.OwedLetter, **values: Any) -> tuple[str, str]:
    """(the whole letter as HTML, its body alone for the PDF)."""
    name = f"letters/{letter.kind}.html"
    context = template_values(letter, **values)
    return render(name, pdf=False, **context), render(name, pdf=True, **context)


def letter_pdf(
    letter: d.OwedLetter, body_html: str, *, organisation: str, contact: LetterContact | None = None,
) -> bytes:
    """An A4 letter: the letterhead, and top right the sender, its return address and phone, "Our ref"
    and the date; the address in the envelope window; the body (large print when the resident asked
    for it); a footer with the reference and "Page N of M" on every page."""
    from cautionflow.adapters.pdf import window_letter_pdf

    return window_letter_pdf(
        body_html, sender=organisation, dated=_long_date(letter.as_of), address_lines=letter.address_lines,
        size=LARGE_PT if letter.large_print else NORMAL_PT, title=f"{organisation}: letter {letter.kind}",
        created_on=letter.as_of, reference=letter_reference(letter.alert_id, letter.key),
        return_address=() if contact is None else (*contact.address, f"Phone: {contact.phone}"),
        letterhead=Path(contact.letterhead) if contact is not None and contact.letterhead else None,
    )


def _long_date(day: dt.date) -> str:
    from cautionflow.adapters.templates import long_date

    return long_date(day)


def pdf_path(output_dir: Path, letter: d.OwedLetter) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", letter.alert_id)[:40]
    return output_dir / letter.as_of.isoformat() / f"{letter.kind}-{safe}-{letter.key[:12]}.pdf"


def stored_pdf(output_dir: Path, stored: str) -> Path:
    """A queued letter's PDF. The queue keeps the path relative to `letters.output_dir`, so another
    worker or the officer's host finds it wherever that shared folder is mounted, or whichever store
    (`output_dir` is a `Path` or an ObjectStoragePath) the folder has moved to. An absolute path,
    from a queue older than that, joins as itself on the local disk."""
    return output_dir / stored


def render_letter(
    letter: d.OwedLetter, *, render: Callable[..., str], output_dir: Path, organisation: str,
    reply_email: str | None, status: str, contact: LetterContact | None = None,
) -> NewLetter:
    """Render one owed letter to HTML and to its PDF file, with the landlord's `contact` block; the row to queue."""
    html, body = render_html(render, letter, organisation=organisation, reply_email=reply_email, contact=contact)
    path = pdf_path(output_dir, letter)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(letter_pdf(letter, body, organisation=organisation, contact=contact))
    return NewLetter(
        letter_key=letter.key, alert_id=letter.alert_id, person_ref=letter.person_ref,
        person_name=letter.person_name, address_lines=letter.address_lines, email=letter.email, kind=letter.kind,
        outcome=letter.outcome, alert_code=letter.alert_code, decision_date=letter.decision_date,
        as_of=letter.as_of, status="held" if letter.held else status, hold_reason=letter.hold_reason,
        channels=letter.channels, large_print=letter.large_print, language=letter.language, html=html,
        pdf_path=path.relative_to(output_dir).as_posix(), dated_on=letter.as_of, appeal_by=letter.appeal_by,
    )


# --- queueing -----------------------------------------------------------------------------------


def queue_letters(
    register: LettersRegister, profile: PolicyProfile, *, as_of: dt.date, run_id: str,
    render: Callable[..., str], output_dir: Path, organisation: str, reply_email: str | None = None, auto_approve: bool = False,
    clock: Clock = system_clock, contact: LetterContact | None = None,
) -> LettersSummary:
    timing = StepProgress("letters", logger=log)  # each stage's time at INFO, for the task log
    register.migrate()
    with timing.timed("owed letters planned"):
        plan = d.owed_letters(register.letter_reads.alerts_with_deadlines(), profile, as_of)
        queue = register.letter_queue
        known = queue.known_keys(letter.key for letter in plan.letters)
        new = [letter for letter in plan.letters if letter.key not in known]
    status = "approved" if auto_approve else "queued"

    def rendered(letter: d.OwedLetter) -> NewLetter:
        return render_letter(letter, render=render, output_dir=output_dir, organisation=organisation,
                             reply_email=reply_email, status=status, contact=contact)

    rendering = timing.stage("rendered", total=len(new), unit="letters")
    rows = [rendered(letter) for letter in new]
    rendering.finish(rows=len(rows))
    with timing.timed("released"):
        released = release_reasoned(queue, plan, rendered=rendered, output_dir=output_dir, now=clock())
    with timing.timed("queued"):
        queued = queue.enqueue(rows, now=clock())
        officers = (*plan.officers, *reason_flags(queue))
        flags = register.letter_flags.record(officers, as_of=as_of, run_id=run_id)
    timing.done()
    return LettersSummary(
        step="letters", as_of=as_of.isoformat(), run_id=run_id, owed=len(plan.letters), queued=queued,
        held=sum(1 for r in rows if r.status == "held"), already_queued=len(known),
        suppressed=len(plan.suppressed), suppressed_by_reason=plan.suppressed_by_reason,
        officers=[{"alert_id": o.alert_id, "person": o.person_name, "flag": o.code, "reason": o.reason}
                  for o in officers],
        approved=sum(1 for r in rows if r.status == "approved"), flags=flags, released=released,
    )


def release_reasoned(
    queue: LetterQueue, plan: d.LetterPlan, *, rendered: Callable[[d.OwedLetter], NewLetter], output_dir: Path,
    now: dt.datetime,
) -> int:
    """Release the letters held for want of a reason for the resident (Hexagon 5.3, Karbon 5.2, Teign
    Appendix E) whose alert now has one; how many.

    Each is rendered again from today's plan (the reason, today's date and appeal deadline; the same
    key, and the same file name in today's folder) and returns to the queue as a new letter would:
    queued, approved with `auto_approve`, or held for what else it now waits on (a translation is of
    the whole letter, so it is made only once the reason is in). The PDF without the reason is
    deleted, so it cannot be printed by mistake. A held letter no longer owed today (its decision left
    the look-back window, or the alert is now not to be told) stays held, on the officers' list, for
    an officer to settle. A rerun finds nothing held for this reason: it changes nothing."""
    owed = {letter.key: letter for letter in plan.letters}
    released = 0
    for held in queue.list(status="held"):
        fresh = owed.get(held.letter_key)
        if held.hold_reason != d.HOLD_NO_REASON or fresh is None or fresh.hold_reason == d.HOLD_NO_REASON:
            continue
        row = rendered(fresh)
        if queue.release(held.id, row, held_for=d.HOLD_NO_REASON, now=now) != 1:
            continue  # released meanwhile by another run, into the same file
        released += 1
        before = stored_pdf(output_dir, held.pdf_path)
        if before != stored_pdf(output_dir, row.pdf_path):
            before.unlink(missing_ok=True)
    return released


def reason_flags(queue: LetterQueue) -> list[d.OfficerItem]:
    """The officers' list shows each letter held for want of a reason for as long as it is held (the
    flag resolves when the letter is released)."""
    return [d.OfficerItem.of(x.alert_id, x.person_name, d.FLAG_RESIDENT_REASON)
            for x in queue.list(status="held") if x.hold_reason == d.HOLD_NO_REASON]


# --- dates at dispatch ----------------------------------------------------------------------------


class RedatingRegister(Protocol):
    """What dating letters again uses of the register (`adapters.register.Register`)."""

    letter_reads: LetterReads
    letter_queue: LetterQueue


NOT_REDATED = "not dated again"  # the start of the reason a letter could not be, in its hold_reason


def redate_letters(
    register: RedatingRegister, letters: Sequence[StoredLetter], profile: PolicyProfile, *, as_of: dt.date,
    render: Callable[..., str], output_dir: Path, organisation: str, reply_email: str | None = None,
    contact: LetterContact | None = None,
) -> dict[int, str]:
    """Date `letters` the day `as_of`: a letter is dated the day it leaves, so one approved or
    dispatched on a later day than it was queued (or released, or translated) is rendered again for
    that day, its appeal deadline counted from it (Teign 9: 28 days; Dover 6.34-6.35: working days).
    Returns {letter id: why not} for those that could not be, to be kept back with the reason.

    Each is built again from the register's alert row (`domain.letters.letter_for`) and rendered as a
    new letter is (`render_letter`): a new PDF in that day's folder, the queue row's HTML, PDF, date
    and deadline updated (and who and where, as the register now has them); its status, key and batch
    stay, and the PDF it replaces is deleted so it cannot be printed by mistake. A translated letter
    keeps the translation's pages as supplied after its English letter rendered again. Letters
    already dated `as_of`, or given to a print batch, are left alone: a rerun changes nothing.
    Not dated again (and kept back): a letter whose alert has left the register, or that would now be
    held (no reason for the resident, no postal address, a translation now needed)."""
    from cautionflow.adapters.pdf import readable_page_count, replace_first_pages

    stale = [x for x in letters
             if x.dated_on != as_of and x.dispatch_ref is None and x.status in ("queued", "approved")]
    if not stale:
        return {}
    queue = register.letter_queue
    alerts = {str(a["alert_id"]): a for a in register.letter_reads.alerts_with_deadlines([x.alert_id for x in stale])}
    problems: dict[int, str] = {}
    for stored in stale:
        alert = alerts.get(stored.alert_id)
        if alert is None:
            problems[stored.id] = f"{NOT_REDATED}: its alert is no longer in the register"
            continue
        fresh = d.letter_for(alert, stored.kind, stored.decision_date, profile, as_of)
        hold = fresh.hold_reason
        if hold is not None and not (stored.translated and hold.startswith(d.HOLD_TRANSLATION)):
            problems[stored.id] = f"{NOT_REDATED}: it would now be held ({hold})"
            continue
        row = render_letter(fresh, render=render, output_dir=output_dir, organisation=organisation,
                            reply_email=reply_email, status=stored.status, contact=contact)
        english = None
        if stored.translated and stored.english_pdf_path:
            english = row.pdf_path
            new_english = stored_pdf(output_dir, english)
            language = re.sub(r"[^A-Za-z0-9_-]", "_", stored.language)[:16] or "xx"
            combined = new_english.with_name(f"{new_english.stem}-with-{language}.pdf")
            english_pages = readable_page_count(stored_pdf(output_dir, stored.english_pdf_path))
            replace_first_pages(stored_pdf(output_dir, stored.pdf_path), english_pages, new_english, combined)
            row = replace(row, pdf_path=combined.relative_to(output_dir).as_posix())
        if queue.redate(stored.id, row, dated_was=stored.dated_on, english_pdf_path=english) != 1:
            continue  # dated meanwhile by another process (the same day: the same files), or printed
        for old in {stored.pdf_path, stored.english_pdf_path} - {row.pdf_path, english, None}:
            stored_pdf(output_dir, old).unlink(missing_ok=True)
    return problems


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
