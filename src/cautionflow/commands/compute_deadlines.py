"""`cautionflow compute-deadlines`: review, expiry and appeal dates for an alerts CSV.

Reads the CSV as text (empty cells stay empty), appends the deadline columns and writes the
same rows in the same order to stdout. Rows with bad data get an `error` and no dates; the
command still succeeds, because one bad row must not hide every other alert's review date.

The output follows the one CSV writer's rules (`cautionflow.domain.csv_format`): a text cell a
spreadsheet would run as a formula gets a leading `'`, every cell is quoted, lines end CRLF. No
byte order mark unless `--bom`: the output is a stream for other programs (a pipe, `| head`, a
script's csv reader), where a BOM would become part of the first column's name; add `--bom` when
the file is for Excel, which needs it to show "Zoë" rather than "ZoÃ«".
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from datetime import date
from typing import IO, TYPE_CHECKING, Any

from cautionflow.commands.common import EARLIEST, LATEST, CommandError, with_example

if TYPE_CHECKING:
    import numpy as np
    import pandas as pd

    from cautionflow.domain.policy import PolicyProfile

REQUIRED_COLUMNS: tuple[str, ...] = (
    "alert_id", "alert_code", "effective_from", "last_reviewed_on", "ends_on", "notified_on",
    "appeal_received_on",
)


def _iso_date(text: str) -> date:

    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            day = date.fromisoformat(text)
            if EARLIEST <= day <= LATEST:
                return day
            raise argparse.ArgumentTypeError(f"{text} is out of range ({EARLIEST.year} to {LATEST.year})")
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date written YYYY-MM-DD")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compute-deadlines",
        help="add review, expiry and appeal deadlines to an alerts CSV",
        description=__doc__,
        **with_example("cautionflow compute-deadlines --policy teign --input alerts.csv --as-of 2026-11-23 > deadlines.csv"),
    )
    parser.add_argument("--policy", required=True, metavar="NAME_OR_PATH",
                        help="a shipped profile (hexagon, karbon, teign, wandle, dover) or a .yaml file")
    parser.add_argument("--input", required=True, metavar="ALERTS.csv", help="the alerts CSV to read")
    parser.add_argument("--as-of", required=True, type=_iso_date, metavar="YYYY-MM-DD",
                        help="the date that decides which reviews are overdue")
    parser.add_argument("--bom", action="store_true",
                        help="start the output with a UTF-8 byte order mark, for a file to open in Excel")
    parser.set_defaults(handler=handle)


def read_alerts(path: str) -> pd.DataFrame:
    """Every cell as text, exactly as written (no 'NA' guessing); a BOM from Excel is dropped."""
    import pandas as pd

    try:
        frame = pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    except FileNotFoundError:
        raise CommandError(f"input file not found: {path}") from None
    except IsADirectoryError:
        raise CommandError(f"input is a directory, not a CSV file: {path}") from None
    except pd.errors.EmptyDataError:
        raise CommandError(f"input file is empty: {path}") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CommandError(f"input file is not a readable UTF-8 CSV: {path}: {reason}") from None
    except OSError as exc:
        raise CommandError(f"input file cannot be read: {path}: {exc.strerror}") from None
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise CommandError(f"input file {path} is missing required column(s): {', '.join(missing)}")
    return frame


def deadline_text(frame: pd.DataFrame, profile: PolicyProfile, as_of: date) -> dict[str, np.ndarray]:
    """The deadline columns as CSV text: ISO dates, '' when empty, overdue as true/false."""
    import numpy as np
    import pandas as pd

    from cautionflow.domain.deadlines import DATE_OUTPUTS, OUTPUT_COLUMNS, compute_deadline_arrays, iso_text

    clashes = [c for c in OUTPUT_COLUMNS if c in frame.columns]
    if clashes:
        raise CommandError(f"input already has output column(s): {', '.join(clashes)}; remove them first")
    arrays = compute_deadline_arrays(frame, profile, as_of)
    text = {name: iso_text(arrays[name]) for name in DATE_OUTPUTS}
    text["overdue"] = np.array(["false", "true"], dtype=object)[arrays["overdue"].astype(np.intp)]
    text["error"] = np.where(pd.isna(arrays["error"]), "", arrays["error"])
    return text


def write_csv(out: IO[str], frame: pd.DataFrame, added: dict[str, np.ndarray], *, bom: bool = False) -> None:
    """The input rows, in order, with the added columns after them.

    The csv module writes the columns straight from their (formula-safe) arrays, with no call per
    row; every cell is text here (the input is read as text), so the column-wise form of the one
    writer's rule covers it all, the header and our own `error` text (which quotes source values) too.
    """
    from cautionflow.domain.csv_format import BOM, SpreadsheetCsv, safe_text_column

    if bom:
        out.write(BOM)
    writer = csv.writer(out, dialect=SpreadsheetCsv)
    writer.writerow(safe_text_column([*frame.columns, *added]))
    passed_through = (safe_text_column(frame.iloc[:, i].to_numpy()) for i in range(frame.shape[1]))
    writer.writerows(zip(*passed_through, *map(safe_text_column, added.values()), strict=True))


def handle(args: argparse.Namespace) -> int:
    from cautionflow.profiles import ProfileError, load_profile

    try:
        profile = load_profile(args.policy)  # before reading the CSV: a typo fails fast
    except ProfileError as exc:
        raise CommandError(str(exc)) from None
    frame = read_alerts(args.input)
    added = deadline_text(frame, profile, args.as_of)
    try:
        write_csv(sys.stdout, frame, added, bom=args.bom)
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `| head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
