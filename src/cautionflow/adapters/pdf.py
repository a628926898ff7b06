"""A4 PDFs drawn with fpdf2: the resident letters and the subject access export share this layout.

* A body is the template's plain HTML (rendered with `pdf=True`, so the HTML and the PDF say the same
  thing), laid out here a word at a time (`PdfBlocks`, `lay_out_pdf`).
* A text that fits Latin-1 (after plain quotes and dashes; nearly all) uses the PDF core font
  Helvetica; one with any other character (Łukasiewicz, Ŵ, Cyrillic) embeds DejaVu Sans from
  `include/fonts/` (a subset, per document), so names are printed as recorded (`PdfFace`).
* A letter's name and address sit in a DL window envelope's window (20 mm from the left, 45 mm from
  the top, 90 x 35 mm): `window_letter_pdf`. Beside it, right of the window, the letterhead, the
  landlord's return address, "Our ref" and the date; on every page a footer "Ref ... · Page N of M".
"""

from __future__ import annotations

import datetime as dt
import functools
import io
import logging
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cautionflow.resources import shipped_folder

log = logging.getLogger(__name__)

# The DL window envelope's window, in mm from the page's top left (a C5/6 or DL window sits about
# 20 mm from the left and 45-50 mm from the top, 90 x 35 mm). The text keeps a 3 mm margin inside it.
WINDOW_X, WINDOW_Y, WINDOW_W, WINDOW_H = 20.0, 45.0, 90.0, 35.0
_INSET = 3.0
_PT_TO_MM = 25.4 / 72


# --- fonts --------------------------------------------------------------------------------------

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



# --- layout -------------------------------------------------------------------------------------


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


KEEP_TOGETHER_LINES = 6  # a block of at most this many lines is never split across pages
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
        # A short block (the signature, a few lines) moves whole to the next page rather than split:
        # "Yours sincerely" on one page and the name signing it on the next reads as unsigned.
        if 1 < len(lines) <= KEEP_TOGETHER_LINES and y + line_h * len(lines) > bottom and y > pdf.t_margin + line_h:
            pdf.add_page()
            y = pdf.t_margin
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



# --- pages --------------------------------------------------------------------------------------


def _a4(title: str, created_on: dt.date) -> Any:
    """An empty A4 document in mm: its creation date the day it speaks for (never the clock, so the
    same letter is the same bytes), margins 20 mm each side and 15 mm at the top, pages broken by
    `lay_out_pdf`, not by fpdf2."""
    from fpdf import FPDF

    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creation_date(dt.datetime.combine(created_on, dt.time(), dt.UTC))
    pdf.set_title(latin1(title))
    pdf.set_margins(20, 15, 20)
    pdf.set_auto_page_break(False)
    return pdf


# Page 1's right-hand column (the letterhead, the return address, "Our ref" and the date): from the
# window's right edge plus a 5 mm gutter to the right margin, so none of it shows through the window.
COLUMN_X = WINDOW_X + WINDOW_W + 5.0
LETTERHEAD_H = 22.0  # mm: the tallest a letterhead is drawn (a wide one is scaled to the column's width)
FOOTER_TOP = 280.0  # mm from the top: the footer's line, below the body (lay_out_pdf stops at 277 mm)


def _column_lines(pdf: Any, line: str, room: float, size: float, family: str) -> list[str]:
    """One entry of the right-hand column broken to fit `room` mm: between words, and inside a word
    wider than the column (an odd alert id in "Our ref"), so that nothing runs left into the window."""
    pieces: list[str] = []
    for word in line.split():
        while len(word) > 1 and _width(pdf, word, "", size, family) > room:
            cut = len(word) - 1
            while cut > 1 and _width(pdf, word[:cut], "", size, family) > room:
                cut -= 1
            pieces.append(word[:cut])
            word = word[cut:]
        pieces.append(word)
    lines: list[str] = []
    for piece in pieces:
        joined = f"{lines[-1]} {piece}" if lines else piece
        if lines and _width(pdf, joined, "", size, family) <= room:
            lines[-1] = joined
        else:
            lines.append(piece)
    return lines


def _draw_letterhead(pdf: Any, image: Path) -> float:
    """The letterhead at the top of the right-hand column, right-aligned, at most LETTERHEAD_H tall
    and the column wide, its proportions kept; returns its bottom edge in mm."""
    from PIL import Image  # fpdf2's own dependency; read here for the image's proportions only

    with Image.open(image) as picture:
        width_px, height_px = picture.size
    room = pdf.w - pdf.r_margin - COLUMN_X
    w, h = LETTERHEAD_H * width_px / height_px, LETTERHEAD_H
    if w > room:
        w, h = room, room * height_px / width_px
    top = 10.0
    pdf.image(str(image), x=pdf.w - pdf.r_margin - w, y=top, w=w, h=h)
    return top + h


def window_letter_pdf(
    body_html: str, *, sender: str, dated: str, address_lines: Sequence[str], size: float, title: str,
    created_on: dt.date, return_address: Sequence[str] = (), reference: str | None = None,
    letterhead: Path | None = None,
) -> bytes:
    """An A4 letter. Page 1: the letterhead (if any) and under it, top right, the sender, its return
    address, "Our ref" and the date; the resident's name and address in the envelope window; then the
    body. Every page: a footer "Ref ... · Page N of M", so a page that comes loose finds its letter."""
    line_h = size * _PT_TO_MM * 1.25
    pdf = _a4(title, created_on)
    face = PdfFace(pdf, sender, body_html, *address_lines, *return_address, reference or "")
    footer = f"Ref {face.clean(reference)} \u00b7 " if reference else ""

    def page_footer() -> None:
        # fpdf2 calls this as each page is finished; a cell's "{nb}" becomes the page count on output.
        # In the letter's own size: a large print letter is large print to its last line.
        pdf.set_font(face.family, size=size)
        pdf.set_xy(pdf.l_margin, FOOTER_TOP)
        pdf.cell(w=0, h=line_h, text=f"{footer}Page {pdf.page_no()} of {{nb}}")

    pdf.footer = page_footer  # type: ignore[method-assign]
    pdf.add_page()
    pdf.set_font(face.family, size=size)
    right, room = pdf.w - pdf.r_margin, pdf.w - pdf.r_margin - COLUMN_X
    top = (_draw_letterhead(pdf, letterhead) + 2 if letterhead is not None else 15.0) + line_h
    column = [face.clean(sender), *(face.clean(line) for line in return_address)]
    if reference:
        column += ["", f"Our ref: {face.clean(reference)}"]
    column.append(dated)
    for entry in column:
        if not entry:  # half a line between the address and "Our ref"
            top += line_h / 2
            continue
        for line in _column_lines(pdf, entry, room, size, face.family):
            pdf.text(right - _width(pdf, line, "", size, face.family), top, line)
            top += line_h

    lines, address_pt = _fit_address(pdf, [face.clean(line) for line in address_lines], size, face.family)
    address_h = address_pt * _PT_TO_MM * 1.2
    pdf.set_font(face.family, size=address_pt)
    y = WINDOW_Y + _INSET
    for line in lines:
        y += address_h
        pdf.text(WINDOW_X + _INSET, y - address_h * 0.25, line)

    # The body starts below the window, or below a return address that runs longer (large print).
    pdf.set_y(max(WINDOW_Y + WINDOW_H, top - line_h) + 6)
    lay_out_pdf(pdf, PdfBlocks().feed(body_html), size, face)
    return bytes(pdf.output())


def document_pdf(body_html: str, *, size: float, title: str, created_on: dt.date) -> bytes:
    """An A4 document of the body alone, from the top margin."""
    pdf = _a4(title, created_on)
    pdf.add_page()
    pdf.set_y(15)
    lay_out_pdf(pdf, PdfBlocks().feed(body_html), size, PdfFace(pdf, body_html))
    return bytes(pdf.output())


# --- whole PDF files ------------------------------------------------------------------------------


class UnreadablePdfError(ValueError):
    """A file that is not a readable PDF; the message names the error pypdf or the OS raised."""


def _pdf_bytes(path: Any) -> io.BytesIO:
    """A PDF's bytes as the seekable file pypdf reads. `path` is a `Path` or an ObjectStoragePath:
    one whole read, which an object store serves as one GET (pypdf seeks back and forth)."""
    return io.BytesIO(path.read_bytes())


def _write_pdf(writer: Any, out: Any) -> None:
    buffer = io.BytesIO()
    writer.write(buffer)
    out.write_bytes(buffer.getvalue())  # one write: one PUT on an object store


def readable_page_count(path: Any) -> int:
    """How many pages a PDF from outside (an officer's translation) has; UnreadablePdfError when it
    cannot be read."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        return len(PdfReader(_pdf_bytes(path)).pages)
    except (OSError, PyPdfError, ValueError) as exc:
        raise UnreadablePdfError(type(exc).__name__) from None


def combine_pdfs(parts: Sequence[Any], out: Any) -> list[int]:
    """Write the parts, in order, as one PDF; returns each part's page count. The parts are PDFs
    cautionflow wrote or already checked, so a failure to read one is the run's error, raised as is."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    pages = []
    for part in parts:
        reader = PdfReader(_pdf_bytes(part))
        pages.append(len(reader.pages))
        writer.append(reader)
    _write_pdf(writer, out)
    return pages


def pdf_text(path: Any) -> list[str]:
    """Each page's text as a reader of the PDF gets it (pypdf's extraction, layout kept): what an
    officer previews before approving a letter (`cautionflow letters show`)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    try:
        return [page.extract_text(extraction_mode="layout") for page in PdfReader(_pdf_bytes(path)).pages]
    except (OSError, PyPdfError, ValueError) as exc:
        raise UnreadablePdfError(type(exc).__name__) from None


def replace_first_pages(combined: Any, first: int, replacement: Any, out: Any) -> None:
    """`out`: `replacement`'s pages, then `combined`'s pages after its first `first` (a translated
    letter whose English letter, its first pages, was rendered again: the translation is kept as supplied)."""
    from pypdf import PdfReader, PdfWriter

    writer = PdfWriter()
    writer.append(PdfReader(_pdf_bytes(replacement)))
    old = PdfReader(_pdf_bytes(combined))
    writer.append(old, pages=(first, len(old.pages)))
    _write_pdf(writer, out)
