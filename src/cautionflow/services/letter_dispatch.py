"""Dispatching the approved resident letters: one print batch for the post, the outbox for email.

`dispatch_letters` makes one print batch (a combined PDF and a manifest CSV) for approved post
letters and queues approved email letters in the outbox with the PDF attached, then delivers them
exactly once, as the review reminders are delivered. It is idempotent per letter: a letter is
printed in one batch only, ever (see `cautionflow.adapters.letters`), and a letter whose email
cannot be made (not one address, its PDF gone) stays approved with the reason recorded while the
others go. Queueing and rendering the letters is `cautionflow.services.letters`.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.files import shown_path, write_csv
from cautionflow.adapters.letters import BEING_WRITTEN, StoredLetter
from cautionflow.clock import Clock, system_clock
from cautionflow.services.letters import letter_reference, stored_pdf
from cautionflow.services.outbox_delivery import send_outstanding

if TYPE_CHECKING:
    from cautionflow.adapters.letters import LetterQueue
    from cautionflow.adapters.mail import RetryPolicy, SmtpSettings
    from cautionflow.adapters.outbox import Outbox
    from cautionflow.services.letters import LetterContact

log = logging.getLogger(__name__)

KIND = "letter"  # the outbox's kind for letters by email


class DispatchRegister(Protocol):
    """What a dispatch uses of the register (`adapters.register.Register`)."""

    letter_queue: LetterQueue
    outbox: Outbox

    def migrate(self) -> None: ...

    def dispatch_lock(self, *, wait_seconds: float) -> AbstractContextManager[None]: ...


@dataclass(frozen=True)
class DispatchSummary:
    approved: int
    printed: int
    emailed: int  # queued in the outbox this dispatch
    sent: int
    pending: int
    failed: int
    held_listed: int
    print_batch: str | None
    manifest: str | None
    complete: bool
    uncertain: int = 0  # letter emails sent but never confirmed by the server: not resent (outbox `uncertain`)
    waiting: list[dict[str, str]] = field(default_factory=list)
    not_dispatched: int = 0  # approved letters this dispatch could not send: kept approved, reason recorded
    problems: list[dict[str, Any]] = field(default_factory=list)  # {"id", "alert_id", "reason"} of those
    told: int = 0  # alerts the register now records as told, by an "alert added" letter dispatched (told_on)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


MANIFEST_COLUMNS = (
    "letter_id", "alert_id", "kind", "name", "address_line_1", "address_line_2", "address_line_3",
    "address_line_4", "address_line_5", "large_print", "held", "hold_reason", "first_page", "pages", "language",
    "translated",
)


def write_print_batch(
    letters: Sequence[StoredLetter], held: Sequence[StoredLetter], output_dir: Path, stamp: str
) -> tuple[Path | None, Path]:
    """One combined PDF of the post letters, in order, and a manifest CSV for the print room that also
    lists the held letters (not printed) so nobody thinks them lost."""
    from cautionflow.adapters.pdf import combine_pdfs

    folder = output_dir / "dispatch"
    folder.mkdir(parents=True, exist_ok=True)
    combined = folder / f"print-batch-{stamp}.pdf" if letters else None
    manifest = folder / f"print-batch-{stamp}-manifest.csv"
    parts = [stored_pdf(output_dir, letter.pdf_path) for letter in letters]
    counts = combine_pdfs(parts, combined) if combined is not None else []
    rows = []
    page = 1
    for letter, pages in zip(letters, counts, strict=True):
        rows.append(_manifest_row(letter, first_page=page, pages=pages))
        page += pages
    rows.extend(_manifest_row(letter, first_page=0, pages=0) for letter in held)
    write_csv(manifest, MANIFEST_COLUMNS, rows)  # the one CSV writer: formula-safe cells, BOM, atomic
    return combined, manifest


def _manifest_row(letter: StoredLetter, *, first_page: int, pages: int) -> list[Any]:
    lines = list(letter.address_lines[1:])  # the first line is the name
    if len(lines) > 5:
        lines = [*lines[:4], ", ".join(lines[4:])]
    lines += [""] * (5 - len(lines))
    return [
        letter.id, letter.alert_id, letter.kind, letter.person_name, *lines,
        "yes" if letter.large_print else "no", "yes" if letter.status == "held" else "no",
        letter.hold_reason or "", first_page, pages, letter.language,
        # A translation an officer supplied (never machine-translated), after the English letter.
        f"yes ({letter.translation_file})" if letter.translated else "no",
    ]


def letter_email(
    letter: StoredLetter, *, organisation: str, settings: SmtpSettings, now: dt.datetime, output_dir: Path,
    contact: LetterContact | None = None,
) -> Any:
    """The outbox message for one letter: a short covering note with the PDF attached, Reply-To the
    landlord's appeals email and the contact details in its text (`contact`).

    Raises ValueError when the letter's email is not one address, OSError when its PDF is gone.
    """
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime, parseaddr

    from cautionflow.adapters.mail import safe_address
    from cautionflow.adapters.outbox import QueuedMessage
    from cautionflow.adapters.templates import long_date
    from cautionflow.domain.digests import idempotency_key, message_id

    assert letter.email is not None
    # The address header is built from cleaned parts (never by formatting text): a quote, comma or
    # line break in a name can add no address and no header. The key keeps the name as stored, so a
    # letter queued before names were cleaned keeps the one key it always had.
    to = safe_address(letter.person_name, letter.email)
    recipient = to.display_name or "Resident"
    key = idempotency_key(KIND, letter.person_name or "Resident", letter.email, letter.batch, letter.letter_key)
    mid = message_id(KIND, key, letter.batch, settings.sender_domain)
    subject = f"A letter from {organisation}"  # says nothing about the alert: mailboxes are shared
    attachment = stored_pdf(output_dir, letter.pdf_path).read_bytes()
    message = EmailMessage(policy=SMTP)
    message["From"] = safe_address(parseaddr(settings.sender)[0], settings.sender_address)
    message["To"] = to
    message["Subject"] = subject
    message["Date"] = format_datetime(now)
    message["Message-ID"] = mid
    message["Auto-Submitted"] = "auto-generated"
    if contact is not None:
        # Answers go to the people who read appeals (Dover 6.34), not to the sender's mailbox, which
        # nobody reads: a letter that names who answers it looks less like phishing, too.
        message["Reply-To"] = safe_address(organisation, contact.appeals_email)
    message.set_content(_covering_note(
        letter, recipient, dated=long_date(letter.dated_on or letter.as_of), organisation=organisation, contact=contact,
    ))
    message.add_attachment(
        attachment, maintype="application", subtype="pdf",
        filename=f"{organisation}-letter-{(letter.dated_on or letter.as_of).isoformat()}.pdf".replace(" ", "-").lower(),
    )
    return QueuedMessage(
        idempotency_key=key, kind=KIND, recipient_name=recipient, recipient_email=to.addr_spec,
        recipient_role="resident", as_of=letter.batch, content_hash=letter.letter_key, message_id=mid,
        subject=subject, message=message.as_bytes().decode("ascii"), current_ids=(letter.alert_id,),
    )


def _covering_note(
    letter: StoredLetter, recipient: str, *, dated: str, organisation: str, contact: LetterContact | None,
) -> str:
    """The email's text: what is attached, our reference, and how to reach the landlord (the letter's
    own contact block). What the letter decides is in the PDF only: mailboxes are shared."""
    lines = [
        f"Dear {recipient},", "",
        f"Please find attached a letter from {organisation}, dated {dated}. It is a PDF file; if you cannot "
        "open it, or need it in another format or language, please contact us.", "",
        f"Our reference: {letter_reference(letter.alert_id, letter.letter_key)} (please quote it when you "
        "contact us)", "",
    ]
    if contact is not None:
        lines += [
            "How to contact us:",
            f"- reply to this email, or write to {contact.appeals_email}",
            f"- phone {contact.phone}",
            f"- by post: {organisation}, {', '.join(contact.address)}",
        ]
        if contact.appeals_address != contact.address:
            lines.append(f"- appeals by post: {', '.join(contact.appeals_address)}")
        lines += ["", "Yours sincerely,", "", contact.signed_by, contact.signed_title]
    lines.append(organisation)
    return "\n".join(lines) + "\n"


def _print_batch_of(letter: StoredLetter) -> str | None:
    """The print batch file an approved letter was given (complete or being written), if any."""
    ref = letter.dispatch_ref or ""
    return ref.removesuffix(BEING_WRITTEN) if ref.startswith("print-batch-") else None


def _problem(letter: StoredLetter, what: str, exc: BaseException) -> str:
    log.warning("letter %s (alert %s): %s: %s", letter.id, letter.alert_id, what, type(exc).__name__)
    return " ".join(f"{what}: {exc}".split())  # one line, for the officers' list


# Renders approved letters again for the dispatch's day; returns {letter id: why not} (services.letters).
Redate = Callable[[Sequence[StoredLetter]], dict[int, str]]

# How long a letters dispatch waits for another one to finish (seconds; a dispatch takes seconds).
DISPATCH_LOCK_WAIT_SECONDS = 300.0


async def dispatch_letters(
    register: DispatchRegister, settings: SmtpSettings | None, *, organisation: str, output_dir: Path,
    retry: RetryPolicy | None = None, clock: Clock = system_clock, contact: LetterContact | None = None,
    redate: Redate | None = None,
) -> DispatchSummary:
    """Print batch for approved post letters; approved email letters through the outbox; mark them.

    Idempotent per letter. Post: the letters are given the batch's name before its files are
    written and marked printed once they are complete (`cautionflow.adapters.letters`), so a rerun
    after any failure rewrites that batch under the same name instead of printing its letters in a
    second one, and leaves a complete batch alone. Email: a letter whose message cannot be made (not
    one address, its PDF gone) stays approved with the reason recorded (`hold_reason`, shown by
    `letters list`) and counted in `not_dispatched`; the others go on, and the step returns
    normally, not complete (so `run all` goes on to the digests).

    A letter is dated the day it leaves: `redate` (the step's `services.letters.redate_letters`
    for the dispatch's as-of date) first renders again every approved letter not dated that day; one
    it cannot is kept back, approved, with the reason. Without `redate` letters go as they were dated.
    Once an "alert added" letter is dispatched the register records the resident told that day
    (`alerts.told_on`, `LetterQueue.record_told`), so the alert gets its appeal deadline and is never
    flagged "never told" (Dover 6.24/6.36, Teign 11: the decision recorded).
    """
    register.migrate()
    # One dispatch at a time (the DAG's beside an officer's): both would write the same unfinished batch.
    with register.dispatch_lock(wait_seconds=DISPATCH_LOCK_WAIT_SECONDS):
        return await _dispatch_letters(register, settings, organisation=organisation, output_dir=output_dir,
                                       retry=retry, clock=clock, contact=contact, redate=redate)


async def _dispatch_letters(
    register: DispatchRegister, settings: SmtpSettings | None, *, organisation: str, output_dir: Path,
    retry: RetryPolicy | None, clock: Clock, contact: LetterContact | None, redate: Redate | None,
) -> DispatchSummary:
    from cautionflow.config import ConfigError

    now = clock()
    queue = register.letter_queue
    approved = queue.list(status="approved")
    if settings is None and any("email" in letter.channels and letter.email for letter in approved):
        raise ConfigError("smtp: letters are approved for email but the config has no smtp section to send them")
    problems: dict[int, str] = {}
    told = queue.record_told()  # mends a dispatch that died before recording its letters' telling
    if redate is not None:  # dated the day they leave, before anything is printed or emailed
        problems.update(redate(approved))
        approved = queue.list(status="approved")
    kept_back = set(problems)

    # Post: claim the letters not in a batch yet; one whose PDF is gone stays out, with the reason.
    unclaimed = []
    for letter in approved:
        if letter.id in kept_back:
            continue
        if "post" in letter.channels and _print_batch_of(letter) is None:
            if stored_pdf(output_dir, letter.pdf_path).is_file():
                unclaimed.append(letter.id)
            else:
                problems[letter.id] = f"not printed: its PDF {letter.pdf_path} is missing"
    if unclaimed:
        stamp = now.astimezone(dt.UTC).strftime("%Y%m%dT%H%M%S%fZ")
        queue.claim_for_print(unclaimed, f"print-batch-{stamp}.pdf")
        approved = queue.list(status="approved")
    held = queue.list(status="held")
    batches: dict[str, list[StoredLetter]] = {}
    for letter in approved:
        if "post" in letter.channels and (letter.dispatch_ref or "").endswith(BEING_WRITTEN):
            batches.setdefault(_print_batch_of(letter) or "", []).append(letter)
    combined = manifest = None
    for batch_file, letters in batches.items():
        # A batch a failed dispatch left unfinished is written again under its own name, never doubled.
        stamp = batch_file.removeprefix("print-batch-").removesuffix(".pdf")
        combined, manifest = write_print_batch(letters, held, output_dir, stamp)
        queue.printed(batch_file, now=now)

    # Email: the approved letters whose post, if any, is done.
    by_email = [
        letter for letter in queue.list(status="approved") if "email" in letter.channels and letter.email
        and ("post" not in letter.channels or _print_batch_of(letter) is not None) and letter.id not in kept_back
    ]
    emailed = sent = 0
    states: dict[str, Any] = {}
    outstanding: list[Any] = []
    outbox = register.outbox
    try:
        built: list[tuple[StoredLetter, Any]] = []
        for letter in by_email if settings is not None else []:
            try:
                message = letter_email(letter, organisation=organisation, settings=settings, now=now,
                                       output_dir=output_dir, contact=contact)
            except (ValueError, OSError) as exc:  # this letter's data, not the run's: the others still go
                problems[letter.id] = _problem(letter, "not emailed", exc)
            else:
                built.append((letter, message))
        messages = [message for _, message in built]
        emailed = len(outbox.enqueue(messages, run_id=f"letters-dispatch-{now.isoformat()}", now=now))
        queue.mark_dispatched(
            {letter.id: "; ".join(filter(None, (_print_batch_of(letter), message.message_id)))
             for letter, message in built},
            now=now,
        )
        queue.record_problem(problems)
        told += queue.record_told()
        if settings is not None:
            sent = await send_outstanding(outbox, settings, KIND, retry=retry, clock=clock)
        states = outbox.states(m.idempotency_key for m in messages)
        outstanding = outbox.outstanding(KIND) if settings is not None else []
    finally:
        outbox.close()
    failed = sum(1 for s in states.values() if s.status == "failed")
    uncertain = sum(1 for s in states.values() if s.status == "uncertain")
    alert_of = {letter.id: letter.alert_id for letter in queue.list(ids=list(problems))}
    return DispatchSummary(
        approved=len(approved), printed=sum(map(len, batches.values())), emailed=emailed, sent=sent,
        pending=len(outstanding), failed=failed, held_listed=len(held) if batches else 0,
        print_batch=shown_path(combined) if combined else None, manifest=shown_path(manifest) if manifest else None,
        complete=not failed and not outstanding and not uncertain and not problems,
        uncertain=uncertain,
        waiting=[{"recipient": s.recipient_name, "email": s.recipient_email, "status": s.status,
                  "error": s.last_error or ""} for s in outstanding],
        not_dispatched=len(problems),
        problems=[{"id": i, "alert_id": alert_of.get(i, ""), "reason": r} for i, r in sorted(problems.items())],
        told=told,
    )


# --- the dispatch export for the housing system ------------------------------------------------------

# Dover 6.24/6.36 and Teign 11 expect the decision, and the telling, recorded in the housing system:
# one row per dispatched letter, for its import. No name, address or code: the alert id is the key.
EXPORT_COLUMNS = ("alert_id", "kind", "reference", "channels", "dispatched_on", "appeal_by")


def dispatch_export_rows(letters: Sequence[StoredLetter]) -> list[list[str]]:
    """The export's rows for dispatched letters (in the order given: by date, then id). `dispatched_on`
    is the date the letter bears, the day it left (dispatch dates it so); `appeal_by` the deadline it
    gave, empty when it gave none; `reference` its "our ref"; `channels` post, email or post+email."""
    return [
        [x.alert_id, x.kind, letter_reference(x.alert_id, x.letter_key), "+".join(x.channels),
         (x.dated_on or x.as_of).isoformat(), x.appeal_by.isoformat() if x.appeal_by else ""]
        for x in letters
    ]
