"""The one way cautionflow writes CSV: reports, digest attachments, the print manifest, deadlines.

Every CSV the project writes is opened by someone in a spreadsheet sooner or later, and its text
comes from the housing database, which a resident's name or an officer's typing can put anything
into. So the rules, in one place (pure: no files, no pandas):

* **Formula injection** (OWASP "CSV Injection", CWE-1236): a text cell that begins with `=`, `+`,
  `-`, `@`, tab, carriage return or line feed is written with a leading `'`, so Excel and
  LibreOffice show it as text instead of running it (`=cmd|' /C calc'!A0`, `=HYPERLINK(...)`).
  OWASP's list includes `-`, so text that reads like a negative number ("-5") gets the quote too:
  it came from the source and we cannot tell a number from `-2+3+cmd|...`. A number our own code
  computes (an `int` or `float`, e.g. days overdue) is written as a number, unescaped: it cannot
  carry a formula, and a spreadsheet must be able to sort and sum it.
* **Every text cell is quoted** (OWASP's further advice, `csv.QUOTE_NONNUMERIC`): a separator or
  quote inside a value cannot start a new cell, even in a spreadsheet whose list separator is `;`.
  Quotes inside a cell are doubled (RFC 4180 2.7); a line break inside a cell stays inside its quotes.
* **CRLF line ends** (RFC 4180 2.1), the same on every platform.
* **UTF-8 with a byte order mark** for files people open: without it Excel reads UTF-8 as its
  legacy code page and shows "ZoÃ«" for "Zoë". `compute-deadlines`, a pipe for other programs,
  writes no BOM (see that command).
* A missing value is an empty cell, never "None" or "nan".
"""

from __future__ import annotations

import csv
import io
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import IO, Any

BOM = "\ufeff"
# OWASP CSV Injection: no cell may begin with these (line feed added to its list in 2025).
FORMULA_START = frozenset("=+-@\t\r\n")


class SpreadsheetCsv(csv.Dialect):
    """RFC 4180 with every text cell quoted; numbers stay numbers."""

    delimiter = ","
    quotechar = '"'
    doublequote = True
    skipinitialspace = False
    lineterminator = "\r\n"
    quoting = csv.QUOTE_NONNUMERIC
    strict = True


def safe_text(text: str) -> str:
    """Text a spreadsheet will show as text, never run as a formula."""
    return "'" + text if text[:1] in FORMULA_START else text


def cell(value: Any) -> str | int | float:
    """One cell: text made safe, a number kept as a number, nothing as an empty cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        return safe_text(value)
    if isinstance(value, bool):  # an int to Python, but "True" is not a number to a reader
        return "Yes" if value else "No"
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else ""
    return safe_text(str(value))  # a date prints as ISO 8601


def safe_cells(values: Iterable[Any]) -> list[str | int | float]:
    return [cell(v) for v in values]


class Writer:
    """csv.writer with the rules above, for a stream (e.g. stdout)."""

    def __init__(self, out: IO[str]) -> None:
        self._writer = csv.writer(out, dialect=SpreadsheetCsv)

    def writerow(self, values: Iterable[Any]) -> None:
        self._writer.writerow(safe_cells(values))

    def writerows(self, rows: Iterable[Iterable[Any]]) -> None:
        self._writer.writerows(safe_cells(row) for row in rows)


def csv_line(values: Iterable[Any]) -> str:
    """One row as CSV text, with its CRLF."""
    out = io.StringIO()
    Writer(out).writerow(values)
    return out.getvalue()


def csv_text(
    columns: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]], *, bom: bool = True
) -> str:
    """A whole CSV file as text: the header, then the rows (sequences in column order, or mappings
    read by column name, a missing key being an empty cell)."""
    out = io.StringIO()
    if bom:
        out.write(BOM)
    writer = Writer(out)
    writer.writerow(columns)
    writer.writerows(
        [row.get(c) for c in columns] if isinstance(row, Mapping) else row for row in rows
    )
    return out.getvalue()


def safe_text_column(values: Iterable[str]) -> list[str]:
    """`safe_text` over a whole column of text, for a writer that goes column by column over
    millions of cells (`compute-deadlines`): the same rule, without a call per cell."""
    return [("'" + v) if v[:1] in FORMULA_START else v for v in values]
