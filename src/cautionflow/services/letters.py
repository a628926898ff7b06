"""Resident letters: decide, render (HTML and an A4 PDF), queue, approve and dispatch.

* `queue_letters` reads every alert with its stored deadlines, asks `cautionflow.domain.letters`
  which letters are owed, renders only those whose key is not queued yet and queues them.
* The PDF is drawn with fpdf2 from the same template's body (rendered with `pdf=True`), so HTML
  and PDF say the same thing. The name and address sit in a DL window envelope's window (20 mm
  from the left, 45 mm from the top, 90 x 35 mm). A letter whose text fits Latin-1 (after plain
  quotes and dashes; nearly all) uses the PDF core font Helvetica; one with any other character (Łukasiewicz, Ŵ, Cyrillic) embeds
  DejaVu Sans from `include/fonts/` (a subset, per letter), so names are printed as recorded.
* `attach_translation` gives a letter held for translation the translated PDF an officer supplies
  (never machine-translated) and returns it to the queue.
* `dispatch_letters` makes one print batch (a combined PDF and a manifest CSV) for approved post
  letters and queues approved email letters in the outbox with the PDF attached, then delivers
  them exactly once, as the review reminders are delivered. It is idempotent per letter: a letter
  is printed in one batch only, ever (see `cautionflow.adapters.letters`), and a letter whose
  email cannot be made (not one address, its PDF gone) stays approved with the reason recorded
  while the others go.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import re
import unicodedata
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.files import write_csv
from cautionflow.adapters.letters import BEING_WRITTEN, LetterFlags, LetterQueue, NewLetter, StoredLetter
from cautionflow.clock import Clock, system_clock
from cautionflow.domain import letters as d
from cautionflow.progress import StepProgress
from cautionflow.resources import shipped_folder
from cautionflow.services.outbox_delivery import send_outstanding

if TYPE_CHECKING:
    from cautionflow.adapters.mail import RetryPolicy, SmtpSettings
    from cautionflow.adapters.register import Register
    from cautionflow.domain.policy import PolicyProfile

log = logging.getLogger(__name__)

KIND = "letter"  # the outbox's kind for letters by email
ALERT_COLUMNS = (
    "alert_id", "alert_code", "subject_type", "person_ref", "person_name", "address", "postcode", "effective_from",
    "last_reviewed_on", "review_outcome", "status", "notify_resident", "no_notify_reason", "notified_on",
    "appeal_decided_on", "appeal_outcome", "source", "preferred_channel", "email", "language", "large_print",
    "register_state",
)

# The DL window envelope's window, in mm from the page's top left (a C5/6 or DL window sits about
# 20 mm from the left and 45-50 mm from the top, 90 x 35 mm). The text keeps a 3 mm margin inside it.
WINDOW_X, WINDOW_Y, WINDOW_W, WINDOW_H = 20.0, 45.0, 90.0, 35.0
_INSET = 3.0
NORMAL_PT, LARGE_PT = 11.0, 16.0
_PT_TO_MM = 25.4 / 72


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

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --- reading ------------------------------------------------------------------------------------


def letter_alerts(register: Register) -> list[dict[str, Any]]:
    """Every alert (active and ended) with its stored review_due and expires_on."""
    from cautionflow.adapters.database import fetch_all

    columns = ", ".join(f"a.{c}" for c in ALERT_COLUMNS)
    with register.engine.connect() as conn:
        names, rows = fetch_all(
            conn,
            f"SELECT {columns}, d.review_due, d.expires_on FROM alerts a "
            "LEFT JOIN alert_deadlines d ON d.alert_id = a.alert_id ORDER BY a.alert_id",
        )
    return [dict(zip(names, row, strict=True)) for row in rows]


# --- rendering ----------------------------------------------------------------------------------

# Typography the core font's Latin-1 lacks, and its plain equivalent (the same text, not a loss).
_TYPOGRAPHY = str.maketrans({
    "\u2018": "'", "\u2019": "'", "\u201c": '"', "\u201d": '"', "\u2013": "-", "\u2014": "-", "\u2026": "...",
    "\u2022": "-", "\u00a0": " ", "\u200b": "",
})
# Only for the fallback without the Unicode font: letters with no decomposition to a Latin-1 base.
_PUNCTUATION = str.maketrans({
    **_TYPOGRAPHY, "\u0141": "L", "\u0142": "l", "\u0110": "D", "\u0111": "d", "\u0152": "OE", "\u0153": "oe",
    "\u0131": "i",
})

# DejaVu Sans (Bitstream Vera licence, include/fonts/LICENSE): embedded only in the letters that need it.
# Looked for in the project home's include/fonts, then in the package's own copy (package data, see
# cautionflow.resources), which an installed wheel carries.
FONTS_DIR = shipped_folder("fonts")
UNICODE_FONT = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf"}
CORE_FAMILY, UNICODE_FAMILY = "helvetica", "dejavusans"


def needs_unicode(*texts: str) -> bool:
    """Whether any text has a character the core font (Latin-1, after plain typography) cannot show."""
    for text in texts:
        if not text.isascii() and any(ord(c) > 0xFF for c in text.translate(_TYPOGRAPHY)):
            return True
    return False


# The scripts most letters need beyond Latin-1: every Latin alphabet (Polish, Czech, Romanian,
# Turkish, Welsh, Vietnamese ...), Greek and Cyrillic, with punctuation and currency signs. A
# subset of the font holding only these is about 2.5 times faster to embed than the whole font
# (fpdf2 parses and subsets the font for every document); other scripts use the whole font.
_QUICK_RANGES = (
    (0x20, 0x7E), (0xA0, 0x24F), (0x2B0, 0x36F), (0x370, 0x3FF), (0x400, 0x4FF), (0x1E00, 0x1EFF),
    (0x2000, 0x206F), (0x20A0, 0x20CF), (0x2100, 0x214F),
)


@dataclass(frozen=True)
class _UnicodeFonts:
    folder: Path  # the shipped regular and bold
    coverage: frozenset[int]  # what both can draw
    quick_folder: Path | None  # the same fonts cut to _QUICK_RANGES, in a temporary folder
    quick_coverage: frozenset[int]
    _keep: Any = None  # the temporary folder, deleted when the process ends


@functools.cache
def _unicode_font() -> _UnicodeFonts | None:
    """The Unicode font (regular and bold), found once per process; None without it (a warning)."""
    from cautionflow.config import project_home

    folders = list(dict.fromkeys((project_home() / "include" / "fonts", FONTS_DIR)))
    folder = next((f for f in folders if all((f / name).is_file() for name in UNICODE_FONT.values())), None)
    if folder is None:
        log.warning("letters: %s not found in %s; letters with characters beyond Latin-1 are printed without "
                    "their accents", " and ".join(UNICODE_FONT.values()), " or ".join(map(str, folders)))
        return None
    import tempfile

    from fontTools import subset
    from fontTools.ttLib import TTFont

    covered: set[int] | None = None
    for name in UNICODE_FONT.values():
        with TTFont(folder / name, lazy=True) as font:
            cmap = set(font.getBestCmap())
        covered = cmap if covered is None else covered & cmap
    keep = tempfile.TemporaryDirectory(prefix="cautionflow-fonts-")
    quick_folder: Path | None = Path(keep.name)
    wanted = [c for low, high in _QUICK_RANGES for c in range(low, high + 1)]
    options = subset.Options(glyph_names=True, notdef_outline=True, name_IDs=["*"], name_legacy=True)
    options.drop_tables += ["GSUB", "GPOS", "GDEF", "kern", "FFTM", "MATH"]  # fpdf2 does not use them
    quick: set[int] | None = None
    try:
        for name in UNICODE_FONT.values():
            with TTFont(folder / name) as font:
                subsetter = subset.Subsetter(options)
                subsetter.populate(unicodes=[c for c in wanted if c in (covered or ())])
                subsetter.subset(font)
                font.save(quick_folder / name)  # type: ignore[operator]
                cut = set(font.getBestCmap())
            quick = cut if quick is None else quick & cut
    except Exception as exc:  # noqa: BLE001 - only slower without the quick cut, never wrong
        log.warning("letters: could not cut the Unicode font to size (%s: %s); using the whole font",
                    type(exc).__name__, exc)
        quick_folder, quick = None, set()
    return _UnicodeFonts(folder, frozenset(covered or ()), quick_folder, frozenset(quick or ()), keep)


class PdfFace:
    """The letter's font family and how its text is made drawable: the core font when the text fits
    Latin-1, else the Unicode font (its quick cut when that has every character)."""

    def __init__(self, pdf: Any, *texts: str) -> None:
        self.family = CORE_FAMILY
        self.coverage: frozenset[int] | None = None
        fonts = _unicode_font() if needs_unicode(*texts) else None
        if fonts is None:
            return
        used = {ord(c) for text in texts if not text.isascii() for c in text if not c.isspace()}
        folder, self.coverage = fonts.folder, fonts.coverage
        if fonts.quick_folder is not None and used <= fonts.quick_coverage:
            folder, self.coverage = fonts.quick_folder, fonts.quick_coverage
        for style, name in UNICODE_FONT.items():
            pdf.add_font(UNICODE_FAMILY, style, str(folder / name))
        self.family = UNICODE_FAMILY

    def clean(self, text: str) -> str:
        if self.coverage is None:
            return latin1(text)
        if text.isascii():
            return text
        return "".join(c if ord(c) in self.coverage or c.isspace() else "?" for c in text)


def latin1(text: str) -> str:
    """Text a PDF core font can show: Latin-1 kept, other letters without their accents, else '?'."""
    if text.isascii():
        return text
    text = text.translate(_PUNCTUATION)
    try:
        text.encode("latin-1")
        return text
    except UnicodeEncodeError:
        pass
    out = []
    for c in text:
        if ord(c) < 256:
            out.append(c)
            continue
        base = "".join(b for b in unicodedata.normalize("NFKD", c) if ord(b) < 256 and not unicodedata.combining(b))
        out.append(base or "?")
    return "".join(out)


def template_values(letter: d.OwedLetter, *, organisation: str, reply_email: str | None) -> dict[str, Any]:
    return {"letter": letter, "organisation": organisation, "as_of": letter.as_of, "reply_email": reply_email}


def render_html(render: Callable[..., str], letter: d.OwedLetter, **values: Any) -> tuple[str, str]:
    """(the whole letter as HTML, its body alone for the PDF)."""
    name = f"letters/{letter.kind}.html"
    context = template_values(letter, **values)
    return render(name, pdf=False, **context), render(name, pdf=True, **context)


def _fit_address(pdf: Any, lines: Sequence[str], size: float, family: str = CORE_FAMILY) -> tuple[list[str], float]:
    """The address lines and the font size that fit the window: extra middle lines are joined with
    commas first; a line still too wide is set smaller (never below 9 pt) rather than cut off."""
    line_h = size * _PT_TO_MM * 1.2
    rows = max(1, int((WINDOW_H - 2 * _INSET) // line_h))
    lines = list(lines)
    while len(lines) > rows and len(lines) > 2:
        lines[-3:-1] = [f"{lines[-3]}, {lines[-2]}"]
    pdf.set_font(family, size=size)
    width = max((pdf.get_string_width(line) for line in lines), default=0)
    room = WINDOW_W - 2 * _INSET
    return lines, size if width <= room else max(9.0, size * room / width)


class PdfBlocks:
    """The letter body's blocks (h1, h2, p, li) as runs of (text, bold), from the template's plain HTML.

    fpdf2's own `write_html` breaks lines character by character (about 40 ms a letter); the body
    uses a handful of tags, so it is laid out here a word at a time (under 2 ms)."""

    BLOCKS = ("h1", "h2", "p", "li")

    def __init__(self) -> None:
        self.blocks: list[tuple[str, list[tuple[str, bool]]]] = []
        self._tag: str | None = None
        self._bold = 0

    def feed(self, html: str) -> list[tuple[str, list[tuple[str, bool]]]]:
        from html.parser import HTMLParser

        outer = self

        class Parser(HTMLParser):
            def handle_starttag(self, tag: str, attrs: Any) -> None:
                if tag in outer.BLOCKS:
                    outer._tag = tag
                    outer.blocks.append((tag, []))
                elif tag in ("b", "strong"):
                    outer._bold += 1
                elif tag == "br" and outer.blocks:
                    outer.blocks[-1][1].append(("\n", False))

            def handle_endtag(self, tag: str) -> None:
                if tag in outer.BLOCKS:
                    outer._tag = None
                elif tag in ("b", "strong"):
                    outer._bold = max(0, outer._bold - 1)

            def handle_data(self, data: str) -> None:
                if outer._tag is not None and data:
                    outer.blocks[-1][1].append((data, outer._bold > 0))

        parser = Parser(convert_charrefs=True)
        parser.feed(html)
        parser.close()
        return self.blocks


_WIDTHS: dict[tuple[str, str, float, str], float] = {}


def _width(pdf: Any, word: str, style: str, size: float, family: str = CORE_FAMILY) -> float:
    key = (word, style, size, family)
    found = _WIDTHS.get(key)
    if found is None:
        if len(_WIDTHS) > 200_000:
            _WIDTHS.clear()
        pdf.set_font(family, style=style, size=size)  # the width depends on the face, weight and size
        found = _WIDTHS[key] = pdf.get_string_width(word)
    return found


def lay_out_pdf(pdf: Any, blocks: Sequence[tuple[str, list[tuple[str, bool]]]], size: float, face: PdfFace) -> None:
    """Greedy word wrap between the margins, with page breaks; bold runs keep their weight."""
    family = face.family
    left, right = pdf.l_margin, pdf.w - pdf.r_margin
    bottom = pdf.h - 20
    y = pdf.get_y()
    for tag, runs in blocks:
        pt = size + 4 if tag == "h1" else size + 1 if tag == "h2" else size
        heading = tag in ("h1", "h2")
        line_h = pt * _PT_TO_MM * 1.3
        y += line_h * (0.6 if heading else 0.35)
        indent = 6.0 if tag == "li" else 0.0
        # A word is one or more pieces of one style each ("<b>pairs</b>." is one word, two pieces).
        words: list[list[tuple[str, str]]] = []
        glue = False
        for text, bold in runs:
            style = "B" if bold or heading else ""
            if text == "\n":
                words.append([("\n", style)])
                glue = False
                continue
            text = face.clean(text)
            for i, piece in enumerate(text.split()):
                if i == 0 and glue and not text[:1].isspace() and words:
                    words[-1].append((piece, style))
                else:
                    words.append([(piece, style)])
            glue = bool(text) and not text[-1:].isspace()
        lines: list[list[list[tuple[str, str]]]] = [[]]
        x = 0.0
        room = right - left - indent
        space_w = _width(pdf, " ", "", pt, family)
        for word in words:
            if word[0][0] == "\n":
                lines.append([])
                x = 0.0
                continue
            w = sum(_width(pdf, piece, style, pt, family) for piece, style in word)
            space = space_w if lines[-1] else 0.0
            if lines[-1] and x + space + w > room:
                lines.append([])
                x, space = 0.0, 0.0
            lines[-1].append(word)
            x += space + w
        for i, line in enumerate(lines):
            if y + line_h > bottom:
                pdf.add_page()
                y = pdf.t_margin
            y += line_h
            baseline = y - line_h * 0.25
            cx = left + indent
            if tag == "li" and i == 0:
                pdf.set_font(family, size=pt)
                pdf.text(left + 1, baseline, "-")
            # One text() per stretch of one style: a word's pieces joined, words joined by spaces.
            stretches: list[list[Any]] = []
            for j, word in enumerate(line):
                for k, (piece, style) in enumerate(word):
                    joiner = " " if j and k == 0 else ""
                    if stretches and stretches[-1][1] == style:
                        stretches[-1][0] += joiner + piece
                    else:
                        stretches.append([joiner + piece, style])
            for text, style in stretches:
                pdf.set_font(family, style=style, size=pt)
                pdf.text(cx, baseline, text)
                cx += sum(_width(pdf, part, style, pt, family) for part in text.split(" ")) + space_w * text.count(" ")
    pdf.set_y(y)


def letter_pdf(letter: d.OwedLetter, body_html: str, *, organisation: str) -> bytes:
    """An A4 letter: sender and date top right, the address in the envelope window, then the body."""
    from fpdf import FPDF

    size = LARGE_PT if letter.large_print else NORMAL_PT
    line_h = size * _PT_TO_MM * 1.25
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creation_date(dt.datetime.combine(letter.as_of, dt.time(), dt.UTC))
    pdf.set_title(latin1(f"{organisation}: letter {letter.kind}"))
    pdf.set_margins(20, 15, 20)
    pdf.set_auto_page_break(False)
    face = PdfFace(pdf, organisation, body_html, *letter.address_lines)
    pdf.add_page()
    pdf.set_font(face.family, size=size)
    top = 15 + line_h
    for line in (face.clean(organisation), _long_date(letter.as_of)):
        pdf.text(pdf.w - pdf.r_margin - _width(pdf, line, "", size, face.family), top, line)
        top += line_h

    lines, address_pt = _fit_address(pdf, [face.clean(line) for line in letter.address_lines], size, face.family)
    address_h = address_pt * _PT_TO_MM * 1.2
    pdf.set_font(face.family, size=address_pt)
    y = WINDOW_Y + _INSET
    for line in lines:
        y += address_h
        pdf.text(WINDOW_X + _INSET, y - address_h * 0.25, line)

    pdf.set_y(WINDOW_Y + WINDOW_H + 6)
    lay_out_pdf(pdf, PdfBlocks().feed(body_html), size, face)
    return bytes(pdf.output())


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
    register: Register, profile: PolicyProfile, *, as_of: dt.date, run_id: str, render: Callable[..., str],
    output_dir: Path, organisation: str, reply_email: str | None = None, auto_approve: bool = False,
    clock: Clock = system_clock,
) -> LettersSummary:
    timing = StepProgress("letters", logger=log)  # each stage's time at INFO, for the task log
    register.migrate()
    with timing.timed("owed letters planned"):
        plan = d.owed_letters(letter_alerts(register), profile, as_of)
        queue = LetterQueue(register.engine)
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
        flags = LetterFlags(register.engine).record(plan.officers, as_of=as_of, run_id=run_id)
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
    register: Register, letter_id: int, translation: Path, *, output_dir: Path, auto_approve: bool = False,
    clock: Clock = system_clock,
) -> StoredLetter:
    """Attach the translated PDF an officer supplies (Karbon 12, Hexagon Appendix 1: letters in the
    resident's language on request; cautionflow never machine-translates) to a letter held for
    translation, and return the letter to the queue (approved at once with `auto_approve`).

    The letter becomes one PDF: the English letter first, whose page 1 carries the name and address
    for the envelope window, then the translation. The English PDF is kept as it was."""
    from pypdf import PdfReader, PdfWriter
    from pypdf.errors import PyPdfError

    register.migrate()
    queue = LetterQueue(register.engine)
    letter = queue.get(letter_id)
    if letter is None:
        raise TranslationError(f"letter {letter_id}: no such letter")
    if letter.status != "held" or not (letter.hold_reason or "").startswith(d.HOLD_TRANSLATION):
        state = f"{letter.status} ({letter.hold_reason})" if letter.hold_reason else letter.status
        raise TranslationError(f"letter {letter_id} is {state}, not held for translation")
    try:
        pages = len(PdfReader(translation).pages)
    except (OSError, PyPdfError, ValueError) as exc:
        raise TranslationError(f"{translation}: not a readable PDF ({type(exc).__name__})") from None
    if pages == 0:
        raise TranslationError(f"{translation}: the PDF has no pages")
    english = stored_pdf(output_dir, letter.pdf_path)
    language = re.sub(r"[^A-Za-z0-9_-]", "_", letter.language)[:16] or "xx"
    combined = english.with_name(f"{english.stem}-with-{language}.pdf")
    writer = PdfWriter()
    writer.append(english)
    writer.append(translation)
    with combined.open("wb") as out:
        writer.write(out)
    status = "approved" if auto_approve else "queued"
    changed = queue.attach_translation(
        letter_id, pdf_path=combined.relative_to(output_dir).as_posix(), english_pdf_path=letter.pdf_path,
        file_name=translation.name, status=status, now=clock(),
    )
    if changed != 1:  # another officer attached one meanwhile
        raise TranslationError(f"letter {letter_id} was changed meanwhile; list it and try again")
    return queue.get(letter_id)  # type: ignore[return-value]


# --- dispatching --------------------------------------------------------------------------------


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
    from pypdf import PdfReader, PdfWriter

    folder = output_dir / "dispatch"
    folder.mkdir(parents=True, exist_ok=True)
    combined = folder / f"print-batch-{stamp}.pdf" if letters else None
    manifest = folder / f"print-batch-{stamp}-manifest.csv"
    writer = PdfWriter()
    rows = []
    page = 1
    for letter in letters:
        pdf = stored_pdf(output_dir, letter.pdf_path)
        pages = len(PdfReader(pdf).pages)
        writer.append(pdf)
        rows.append(_manifest_row(letter, first_page=page, pages=pages))
        page += pages
    rows.extend(_manifest_row(letter, first_page=0, pages=0) for letter in held)
    if combined is not None:
        with combined.open("wb") as out:
            writer.write(out)
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
    letter: StoredLetter, *, organisation: str, settings: SmtpSettings, now: dt.datetime, output_dir: Path
) -> Any:
    """The outbox message for one letter: a short covering note with the PDF attached.

    Raises ValueError when the letter's email is not one address, OSError when its PDF is gone.
    """
    from email.message import EmailMessage
    from email.policy import SMTP
    from email.utils import format_datetime, parseaddr

    from cautionflow.adapters.mail import safe_address
    from cautionflow.adapters.outbox import QueuedMessage
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
    message.set_content(
        f"Dear {recipient},\n\nPlease find attached a letter from {organisation}, dated "
        f"{_long_date(letter.as_of)}. It is a PDF file; if you cannot open it, or need it in another format "
        f"or language, please contact us.\n\n{organisation}\n"
    )
    message.add_attachment(
        attachment, maintype="application", subtype="pdf",
        filename=f"{organisation}-letter-{letter.as_of.isoformat()}.pdf".replace(" ", "-").lower(),
    )
    return QueuedMessage(
        idempotency_key=key, kind=KIND, recipient_name=recipient, recipient_email=to.addr_spec,
        recipient_role="resident", as_of=letter.batch, content_hash=letter.letter_key, message_id=mid,
        subject=subject, message=message.as_bytes().decode("ascii"), current_ids=(letter.alert_id,),
    )


def _print_batch_of(letter: StoredLetter) -> str | None:
    """The print batch file an approved letter was given (complete or being written), if any."""
    ref = letter.dispatch_ref or ""
    return ref.removesuffix(BEING_WRITTEN) if ref.startswith("print-batch-") else None


def _problem(letter: StoredLetter, what: str, exc: BaseException) -> str:
    log.warning("letter %s (alert %s): %s: %s", letter.id, letter.alert_id, what, type(exc).__name__)
    return " ".join(f"{what}: {exc}".split())  # one line, for the officers' list


# How long a letters dispatch waits for another one to finish (seconds; a dispatch takes seconds).
DISPATCH_LOCK_WAIT_SECONDS = 300.0


async def dispatch_letters(
    register: Register, settings: SmtpSettings | None, *, organisation: str, output_dir: Path,
    retry: RetryPolicy | None = None, clock: Clock = system_clock,
) -> DispatchSummary:
    """Print batch for approved post letters; approved email letters through the outbox; mark them.

    Idempotent per letter. Post: the letters are given the batch's name before its files are
    written and marked printed once they are complete (`cautionflow.adapters.letters`), so a rerun
    after any failure rewrites that batch under the same name instead of printing its letters in a
    second one, and leaves a complete batch alone. Email: a letter whose message cannot be made (not
    one address, its PDF gone) stays approved with the reason recorded (`hold_reason`, shown by
    `letters list`) and counted in `not_dispatched`; the others go on, and the step returns
    normally, not complete (so `run all` goes on to the digests).
    """
    register.migrate()
    # One dispatch at a time (the DAG's beside an officer's): both would write the same unfinished batch.
    with register.dispatch_lock(wait_seconds=DISPATCH_LOCK_WAIT_SECONDS):
        return await _dispatch_letters(register, settings, organisation=organisation, output_dir=output_dir,
                                       retry=retry, clock=clock)


async def _dispatch_letters(
    register: Register, settings: SmtpSettings | None, *, organisation: str, output_dir: Path,
    retry: RetryPolicy | None, clock: Clock,
) -> DispatchSummary:
    from cautionflow.adapters.outbox import Outbox
    from cautionflow.config import ConfigError

    now = clock()
    queue = LetterQueue(register.engine)
    approved = queue.list(status="approved")
    if settings is None and any("email" in letter.channels and letter.email for letter in approved):
        raise ConfigError("smtp: letters are approved for email but the config has no smtp section to send them")
    problems: dict[int, str] = {}

    # Post: claim the letters not in a batch yet; one whose PDF is gone stays out, with the reason.
    unclaimed = []
    for letter in approved:
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
        and ("post" not in letter.channels or _print_batch_of(letter) is not None)
    ]
    emailed = sent = 0
    states: dict[str, Any] = {}
    outstanding: list[Any] = []
    outbox = Outbox(register.engine)
    try:
        built: list[tuple[StoredLetter, Any]] = []
        for letter in by_email if settings is not None else []:
            try:
                message = letter_email(letter, organisation=organisation, settings=settings, now=now,
                                       output_dir=output_dir)
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
        print_batch=str(combined) if combined else None, manifest=str(manifest) if manifest else None,
        complete=not failed and not outstanding and not uncertain and not problems,
        uncertain=uncertain,
        waiting=[{"recipient": s.recipient_name, "email": s.recipient_email, "status": s.status,
                  "error": s.last_error or ""} for s in outstanding],
        not_dispatched=len(problems),
        problems=[{"id": i, "alert_id": alert_of.get(i, ""), "reason": r} for i, r in sorted(problems.items())],
    )
