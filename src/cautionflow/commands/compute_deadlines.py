"""`cautionflow compute-deadlines`: review, expiry and appeal dates for an alerts CSV.

Reads the CSV as text (empty cells stay empty), appends the deadline columns and writes the
same rows in the same order to stdout. Rows with bad data get an `error` and no dates; the
command still succeeds, because one bad row must not hide every other alert's review date.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from datetime import date
from typing import TYPE_CHECKING, Any

from cautionflow.cli import CommandError

if TYPE_CHECKING:
    import pandas as pd

REQUIRED_COLUMNS: tuple[str, ...] = (
    "alert_id", "alert_code", "effective_from", "last_reviewed_on", "ends_on", "notified_on",
    "appeal_received_on",
)


def _iso_date(text: str) -> date:
    try:
        if re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", text):
            return date.fromisoformat(text)
    except ValueError:
        pass
    raise argparse.ArgumentTypeError(f"{text!r} is not a date written YYYY-MM-DD")


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "compute-deadlines",
        help="add review, expiry and appeal deadlines to an alerts CSV",
        description=__doc__,
    )
    parser.add_argument("--policy", required=True, metavar="NAME_OR_PATH",
                        help="a shipped profile (hexagon, karbon, teign, wandle, dover) or a .yaml file")
    parser.add_argument("--input", required=True, metavar="ALERTS.csv", help="the alerts CSV to read")
    parser.add_argument("--as-of", required=True, type=_iso_date, metavar="YYYY-MM-DD",
                        help="the date that decides which reviews are overdue")
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


def with_deadlines(frame: pd.DataFrame, policy: str, as_of: date) -> pd.DataFrame:
    """`frame` with the deadline columns appended as text: ISO dates, '' when empty, true/false."""
    import numpy as np
    import pandas as pd

    from cautionflow.domain.deadlines import OUTPUT_COLUMNS, compute_deadline_arrays
    from cautionflow.profiles import ProfileError, load_profile

    try:
        profile = load_profile(policy)
    except ProfileError as exc:
        raise CommandError(str(exc)) from None
    clashes = [c for c in OUTPUT_COLUMNS if c in frame.columns]
    if clashes:
        raise CommandError(f"input already has output column(s): {', '.join(clashes)}; remove them first")

    arrays = compute_deadline_arrays(frame, profile, as_of)
    out = frame.copy(deep=False)
    for name, values in arrays.items():
        if name == "overdue":
            out[name] = np.where(values, "true", "false")
        elif name == "error":
            out[name] = np.where(pd.isna(values), "", values)
        else:
            out[name] = np.where(np.isnat(values), "", np.datetime_as_string(values, unit="D"))
    return out


def handle(args: argparse.Namespace) -> int:
    # The profile is checked before the CSV is read, so a typo in --policy fails fast.
    from cautionflow.profiles import ProfileError, load_profile

    try:
        load_profile(args.policy)
    except ProfileError as exc:
        raise CommandError(str(exc)) from None
    frame = read_alerts(args.input)
    out = with_deadlines(frame, args.policy, args.as_of)
    try:
        out.to_csv(sys.stdout, index=False, lineterminator="\n")
        sys.stdout.flush()
    except BrokenPipeError:  # e.g. `| head`: the reader has all it wants
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
    return 0
