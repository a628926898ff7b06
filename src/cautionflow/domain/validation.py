"""Validating the rows the housing database returns: keep, flag or quarantine, never lose.

Safety first (policies README, "Principles"): a row that identifies a place or a person stays in
the register even when its paperwork is wrong, carrying its data-quality problems as flags, so
the warning still reaches the people who visit. Only a row that cannot be identified at all
(no alert_id; neither asset_ref nor address; an alert_id seen twice in one read) is quarantined,
with the raw row and the reason.

Built for a million rows:
- each column is cleaned on its own (`clean_column`): its values, its own problems and its part
  of the row fingerprint; the few checks that look at two columns run afterwards;
- low-cardinality columns (codes, enums, dates) are cleaned through their distinct values only
  (`pandas.factorize`), and the row fingerprint hashes each distinct value once;
- free text is stripped value by value; timestamps in the common UTC shapes are recognised by one
  regular-expression pass over the whole column and rewritten by a few text replacements;
- problems, which are rare, are collected per row only where a check fails.

Hostile values (the contract's notes on control characters and caps): NUL, which PostgreSQL cannot
store, and the other control characters are removed from every text value and the row flagged
`<column>_control_characters`; a one-line value's line breaks become spaces (an address's become
", "), so a name can never carry a header or a CSV row of its own; free text longer than its
documented cap is cut and flagged. A column is checked as one joined text first (nearly always
clean), and only a column with a hit is cleaned value by value.

Instructions people can act on (issue 15): an alert whose code only says "contact is arranged"
(SPOC, CM, DNV: `INSTRUCTION_NEEDED`) with no `contact_instruction` is flagged, so an officer records
who to call and how before a contractor or a call handler needs it at 2 a.m. The rule is newer than
the alerts it applies to, so the flag is part of the row's fingerprint (`_INSTRUCTION_SALT`, as the
contractor-coverage flag is): the first sync after the upgrade writes it onto alerts already in the
register, whose content did not change.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.contract import (
    DATE_COLUMNS,
    ENUMS,
    FLAG_COLUMNS,
    FREE_TEXT_CAPS,
    MAX_LENGTHS,
    MULTI_LINE_COLUMNS,
    OPTIONAL_COLUMNS,
    RAW_VALUE_LIMIT,
    SOURCE_COLUMNS,
    TEXT_COLUMNS,
    TIMESTAMP_COLUMNS,
    SourceColumns,
)

# Columns whose change is a change to the alert (updated_at alone is not).
HASHED_COLUMNS: tuple[str, ...] = tuple(c for c in SOURCE_COLUMNS if c != "updated_at")
# Of those, the optional ones count in a row's fingerprint only where they hold a value, so an alert
# without one hashes as it did before the column was added (no spurious "updated" on upgrading).
_ALWAYS_HASHED = tuple(c for c in HASHED_COLUMNS if c not in OPTIONAL_COLUMNS)
_OPTIONALLY_HASHED = tuple(c for c in HASHED_COLUMNS if c in OPTIONAL_COLUMNS)
# Text columns normalised through their distinct values (few of them, many repeats)...
_UPPER_COLUMNS = ("alert_code", "area", "postcode")
_DISTINCT_COLUMNS = (*_UPPER_COLUMNS, *ENUMS, "language")
# ...and the free text, stripped value by value.
_FREE_TEXT_COLUMNS = tuple(c for c in TEXT_COLUMNS if c not in _DISTINCT_COLUMNS)
# What a value may hold at most: the register's widths, then the free text's documented caps.
_TEXT_LIMITS: dict[str, int] = {**MAX_LENGTHS, **FREE_TEXT_CAPS}

# Codes whose required action cannot be followed without the alert's own contact instruction, and
# what the instruction must say. Each code's action defers to an arrangement recorded elsewhere:
INSTRUCTION_NEEDED: dict[str, str] = {
    # "arrange all contact through the named officer" names nobody: the instruction names the
    # officer and how to reach them (and who covers out of hours).
    "SPOC": "who to contact and how",
    # "follow the agreed contact arrangements" gives none: the instruction is the arrangement
    # (letter only, one email a week, appointments through one officer...).
    "CM": "the agreed contact arrangements",
    # "emergency attendance only with police or manager approval" needs someone reachable who can
    # approve it, day and night: the instruction says who and on what number.
    "DNV": "who approves an emergency visit and how to reach them",
}
# Mixed into the fingerprint of a row carrying the missing-instruction flag, so flagging or
# unflagging is a change the merge writes even when no column changed (an alert synced before the
# rule existed gets the flag at the next sync). Distinct from the coverage flag's salt (guards.py).
_INSTRUCTION_SALT = np.int64(0x1C0_47AC_7F1A_6D00)

# The order in which a row's problems are listed in its dq_flags: each column's own checks, and
# the checks that look at more than one column, in the order a reader of the row meets them.
_CHECK_ORDER: tuple[str, ...] = (
    *(f"{column}_control_characters" for column in SOURCE_COLUMNS if column not in TIMESTAMP_COLUMNS),
    "alert_code",
    *ENUMS,
    "status_missing",
    "person_ref_missing",
    *FLAG_COLUMNS,
    *DATE_COLUMNS,
    "effective_from_missing",
    "ends_before_start",
    "contact_instruction_missing",
    *TIMESTAMP_COLUMNS,
    *(f"{column}_too_long" for column in _TEXT_LIMITS),
)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T].*)?$")
# The common timestamp shapes, checked without building timezone-aware datetimes.
_UTC_TIMESTAMP = re.compile(
    r"(\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))[ T]((?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d)"
    r"(?:\.\d{1,6})?(?:Z|[+-]00:?00)?$"
)
# A run of lines each holding a UTC timestamp in a common shape ("YYYY-MM-DD HH:MM:SS", "T" between
# date and time, "Z" or "+00:00" after it) on a real day; 29 February and anything else unusual
# take the slow path. Cleaning such a value keeps its first 19 characters, with a space at 10.
_UTC_TIMESTAMP_LINES = re.compile(
    r"(?:[1-9]\d{3}-(?:(?:0[1-9]|1[0-2])-(?:0[1-9]|1\d|2[0-8])|(?:0[13-9]|1[0-2])-(?:29|30)|(?:0[13578]|1[02])-31)"
    r"[ T](?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d(?:Z|[+-]00:?00)?\n)*"
)
_UTC_SUFFIXES = ("Z\n", "+00:00\n", "-00:00\n", "+0000\n", "-0000\n")
_TRUE = frozenset({"1", "1.0", "true", "t", "y", "yes"})
_FALSE = frozenset({"0", "0.0", "false", "f", "n", "no"})
_EARLIEST, _LATEST = dt.date(1900, 1, 1), dt.date(2100, 12, 31)

# Control characters: C0, DEL and C1, the Unicode line and paragraph separators, and lone surrogates
# (a broken character no database stores as UTF-8). `str.isprintable` is False for all of them, so
# a column whose joined text is printable (nearly every column) needs no other look.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\ud800-\udfff]")
# Line breaks (and the tab, for a one-line value): a space in a one-line value, a line in a note.
_BREAKS = re.compile("[\t\n\x0b\x0c\r\x1c-\x1e\x85\u2028\u2029]+")
_LINE_BREAK = re.compile("\r\n|[\n\x0b\x0c\r\x1c-\x1e\x85\u2028\u2029]")
# What a multi-line value may keep, and what silently becomes its line break.
_MULTI_LINE_CONTROL = re.compile("[\x00-\x09\x0b-\x1f\x7f-\x9f\ud800-\udfff]")
_NEWLINES = re.compile("\r\n|[\r\u2028\u2029]")

# A cleaner maps one distinct raw value to (normalised value, problem message or None).
Cleaner = Callable[[Any], tuple[Any, str | None]]


class SourceShapeError(Exception):
    """The source query does not return the source contract's columns."""


@dataclass(frozen=True)
class CleanColumn:
    """One source column after cleaning, computed from that column alone.

    The cleaned values are held either as `codes` into `distinct` (row i holds
    distinct[codes[i]]; code -1 picks the last entry, None) or as all `values`. `problems` maps a
    check (see `_CHECK_ORDER`) to {row: message}; `fingerprint` is each row's hash of the cleaned
    value, for the columns that make up an alert's content.
    """

    name: str
    codes: np.ndarray | None = None
    distinct: np.ndarray | None = None
    values: list[Any] | None = None
    problems: dict[str, dict[int, str]] = field(default_factory=dict)
    fingerprint: np.ndarray | None = None

    def cleaned(self) -> np.ndarray:
        """The cleaned values in row order, as an object array."""
        if self.codes is not None:
            return self.distinct[self.codes]
        return _object_array(self.values)


@dataclass(frozen=True)
class ValidatedBatch:
    """One read of the source, split into what the register keeps and what it quarantines.

    `columns` holds the kept rows column by column: the contract's columns, normalised (text
    stripped, empty as None, dates as ISO strings or None, flags as 0/1 or None), `dq_flags`
    (None when clean) and `row_hash`. `alerts` is the same as a frame. `quarantine` has
    `alert_id`, `reason`, `raw_row` (JSON) and `row_hash`.
    """

    columns: dict[str, np.ndarray]
    quarantine: pd.DataFrame
    read: int
    factorised: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    """The low-cardinality columns of `columns` also as (codes, distinct values): row i holds
    distinct[codes[i]], so a writer can format each distinct value once."""

    @functools.cached_property
    def alerts(self) -> pd.DataFrame:
        frame = pd.DataFrame({c: self.columns[c] for c in (*SOURCE_COLUMNS, "dq_flags")}, dtype=object)
        frame["row_hash"] = self.columns["row_hash"]
        return frame

    @property
    def kept(self) -> int:
        return len(self.columns["row_hash"])

    @property
    def flagged(self) -> int:
        return int(np.count_nonzero(~_is_none(self.columns["dq_flags"])))


def validate_source_rows(raw: SourceColumns | pd.DataFrame) -> ValidatedBatch:
    """`raw`: the source's columns (a frame, or each column's values in row order)."""
    (batch,) = validate_in_chunks(raw, rows_per_chunk=None)
    return batch


def validate_in_chunks(raw: SourceColumns | pd.DataFrame, *, rows_per_chunk: int | None) -> Iterator[ValidatedBatch]:
    """The same validation, a chunk of rows at a time (all rows at once when `rows_per_chunk` is None).

    Chunk by chunk the batches hold exactly what one batch of all the rows would, in order:
    duplicated ids are found across the whole read before the first chunk. At least one batch
    is yielded, empty for an empty source. The source's shape is checked before anything is
    yielded, so a wrong query fails before anything is written.
    """
    source = _source_columns(raw)
    n = len(source["alert_id"])
    size = max(rows_per_chunk or n, 1)
    duplicate_counts = _duplicate_counts(_clean_text("alert_id", _stripped_text(source["alert_id"]))[0])

    def chunks() -> Iterator[ValidatedBatch]:
        for start in range(0, max(n, 1), size):
            part = {c: source[c][start : start + size] for c in SOURCE_COLUMNS}
            yield _validate(part, duplicate_counts[start : start + size])

    return chunks()


def _source_columns(raw: SourceColumns | pd.DataFrame) -> dict[str, Sequence[Any]]:
    present = list(raw.columns) if isinstance(raw, pd.DataFrame) else list(raw)
    missing = [c for c in SOURCE_COLUMNS if c not in present and c not in OPTIONAL_COLUMNS]
    if missing:
        raise SourceShapeError(
            "the source query does not return the column(s) " + ", ".join(missing)
            + " (see the source contract in the README)"
        )
    # No copies: the cleaners treat NaN, NaT and pd.NA as missing themselves.
    if isinstance(raw, pd.DataFrame):
        columns = {c: raw[c].to_numpy(dtype=object) for c in SOURCE_COLUMNS if c in present}
    else:
        columns = {c: raw[c] for c in SOURCE_COLUMNS if c in present}
    # An optional column the query does not return is empty for every row (OPTIONAL_COLUMNS).
    rows = len(columns["alert_id"])
    return {c: columns[c] if c in columns else np.full(rows, None, dtype=object) for c in SOURCE_COLUMNS}


def _duplicate_counts(alert_ids: list[str | None]) -> np.ndarray:
    """For each row, how many rows of the whole read share its (cleaned) alert_id; 0 when unique or missing."""
    ids = pd.Series(alert_ids, dtype=object)
    duplicated = ids.notna().to_numpy() & ids.duplicated(keep=False).to_numpy()
    counts = np.zeros(len(ids), dtype=np.int64)
    if duplicated.any():
        counts[duplicated] = ids[duplicated].map(ids[duplicated].value_counts()).to_numpy()
    return counts


def _validate(source: Mapping[str, Sequence[Any]], duplicate_counts: np.ndarray) -> ValidatedBatch:
    n = len(source["alert_id"])
    columns = {c: clean_column(c, source[c]) for c in SOURCE_COLUMNS}
    cleaned = {c: columns[c].cleaned() for c in SOURCE_COLUMNS}
    instruction_missing = _instruction_missing(columns, cleaned)
    problems = _problems_by_row(columns, cleaned, instruction_missing)

    # Quarantine: rows that identify nothing.
    reasons = _Problems()
    alert_id = cleaned["alert_id"]
    reasons.add(_is_none(alert_id), "missing alert_id")
    reasons.add(
        _is_none(cleaned["asset_ref"]) & _is_none(cleaned["address"]),
        "cannot be identified: neither asset_ref nor address",
    )
    reasons.add(duplicate_counts > 0, lambda i: f"duplicate alert_id in one read ({duplicate_counts[i]} rows)")
    id_width = MAX_LENGTHS["alert_id"]
    if max(map(len, filter(None, alert_id)), default=0) > id_width:
        too_long = np.fromiter((v is not None and len(v) > id_width for v in alert_id), dtype=bool, count=n)
        reasons.add(too_long, f"alert_id longer than {id_width} characters: the register cannot identify it")
    quarantined = reasons.mask(n)
    hashes = _combined_fingerprint([columns[c].fingerprint for c in _ALWAYS_HASHED], n)
    for column in _OPTIONALLY_HASHED:
        hashes = _with_optional(hashes, columns[column].fingerprint, ~_is_none(cleaned[column]))
    hashes = _with_salt(hashes, instruction_missing, _INSTRUCTION_SALT)
    dq_flags = _object_array(problems.joined(n))
    factorised = {c: (column.codes, column.distinct) for c, column in columns.items() if column.codes is not None}
    if quarantined.any():
        keep = ~quarantined
        kept = {c: cleaned[c][keep] for c in SOURCE_COLUMNS}
        kept["dq_flags"] = dq_flags[keep]
        kept["row_hash"] = hashes[keep]
        factorised = {c: (codes[keep], distinct) for c, (codes, distinct) in factorised.items()}
    else:
        kept = {**cleaned, "dq_flags": dq_flags, "row_hash": hashes}

    rows_out = np.flatnonzero(quarantined)
    raw_rows = [json.dumps(_raw_row(source, i), sort_keys=True) for i in rows_out]
    quarantine = pd.DataFrame(
        {
            # The whole id is in the raw row; the column holds what fits.
            "alert_id": pd.Series([v if v is None else v[:id_width] for v in alert_id[rows_out]], dtype=object),
            "reason": pd.Series([reasons.joined_at(i) for i in rows_out], dtype=object),
            "raw_row": pd.Series(raw_rows, dtype=object),
        }
    )
    quarantine_fingerprints = [_hash_values(_object_array(raw_rows)), _hash_values(_object_array(quarantine["reason"]))]
    quarantine["row_hash"] = _combined_fingerprint(quarantine_fingerprints, len(quarantine))
    return ValidatedBatch(columns=kept, quarantine=quarantine, read=n, factorised=factorised)


def clean_column(name: str, values: Sequence[Any]) -> CleanColumn:
    """Clean one source column: normalised values, its own problems, and its fingerprint."""
    problems: dict[str, dict[int, str]] = {}
    if name in _FREE_TEXT_COLUMNS:
        stripped, problems = _clean_text(name, _stripped_text(values))
        if name in _TEXT_LIMITS and name != "alert_id":  # an alert_id too long is quarantined instead
            problems.update(_cut_to_width(name, stripped))
        fingerprint = _hash_values(_object_array(stripped)) if name in HASHED_COLUMNS else None
        return CleanColumn(name, values=stripped, problems=problems, fingerprint=fingerprint)
    if name in TIMESTAMP_COLUMNS:
        return _clean_timestamps(name, values)
    codes, distinct, messages, controls = _by_distinct(values, _CLEANERS[name])
    if controls is not None:
        problems[f"{name}_control_characters"] = _rows_with(
            codes, np.where(controls, f"{name}: control characters removed", None)
        )
    if name == "alert_code":
        missing = distinct == None  # noqa: E711 - element-wise
        unknown = ~missing & ~np.array([code in ALERT_CODES for code in distinct], dtype=bool)
        messages = np.where(missing, "alert_code: missing", None)
        messages[unknown] = [f"alert_code: unknown code '{code}'" for code in distinct[unknown]]
    elif name == "subject_type":
        messages = messages.copy()
        messages[(distinct == None) & _is_none(messages)] = "subject_type: missing"  # noqa: E711
    elif name == "effective_from":
        problems["effective_from_missing"] = _rows_with(
            codes, np.where((distinct == None) & _is_none(messages), "effective_from: missing", None)  # noqa: E711
        )
    elif name == "status":
        problems["status_missing"] = _rows_with(
            codes, np.where(distinct == None, "status: missing, treated as active", None)  # noqa: E711
        )
        distinct = np.where(distinct == None, "active", distinct).astype(object)  # noqa: E711 - safety first
    problems[name] = _rows_with(codes, messages)
    if name in _TEXT_LIMITS:
        distinct = distinct.copy()
        problems.update({check: _rows_with(codes, _object_array([found.get(i) for i in range(len(distinct))]))
                         for check, found in _cut_to_width(name, distinct).items()})
    fingerprint = _hash_values(distinct)[codes] if name in HASHED_COLUMNS else None
    return CleanColumn(name, codes=codes, distinct=distinct, problems=problems, fingerprint=fingerprint)


def _cut_to_width(name: str, values: list[Any] | np.ndarray) -> dict[str, dict[int, str]]:
    """Cut the values longer than `name`'s width or cap, in place; {check: {position: message}}.

    An email address too long to be one is emptied instead: cut, it could be someone else's.
    """
    width = _TEXT_LIMITS[name]
    if max(map(len, filter(None, values)), default=0) <= width:
        return {}
    if name == "email":
        message = f"{name}: longer than {width} characters, not an address: emptied"
    else:
        message = f"{name}: longer than {width} characters, only the first {width} kept"
    cut: dict[int, str] = {}
    for position, value in enumerate(values):
        if value is not None and len(value) > width:
            values[position] = None if name == "email" else (value[:width].rstrip() or value[:width])
            cut[position] = message
    return {f"{name}_too_long": cut}


def _clean_text(name: str, values: list[str | None]) -> tuple[list[str | None], dict[str, dict[int, str]]]:
    """Remove control characters from a column's stripped text, in place; (values, {check: {row: message}}).

    Looked at as one joined text first: nearly every column is clean and costs one pass in C.
    """
    joined = "".join(filter(None, values))
    if joined.isprintable():
        return values, {}
    multi_line = name in MULTI_LINE_COLUMNS
    if not (_MULTI_LINE_CONTROL if multi_line else _CONTROL).search(joined) and "\r" not in joined:
        return values, {}  # printable after all but for spaces of other kinds, or a note's line breaks
    message = f"{name}: control characters removed"
    found: dict[int, str] = {}
    for row, value in enumerate(values):
        if value is None or value.isprintable():
            continue
        cleaned, flagged = _without_controls(value, multi_line=multi_line, address=name == "address")
        if cleaned != value:
            values[row] = cleaned
        if flagged:
            found[row] = message
    return values, {f"{name}_control_characters": found} if found else {}


def _without_controls(value: str, *, multi_line: bool = False, address: bool = False) -> tuple[str | None, bool]:
    """(The value without control characters, stripped, None when nothing is left; whether to flag it).

    A multi-line value keeps its line breaks as LF (CR LF and CR become LF unflagged) and loses the
    rest. A one-line value's line breaks and tabs become one space; an address's line breaks become
    ", " (what its letter reads them as), unflagged when they were all it held.
    """
    if multi_line:
        text = _NEWLINES.sub("\n", value)
        cleaned = _MULTI_LINE_CONTROL.sub(lambda m: " " if m[0] == "\t" else "", text)
        flagged = cleaned != text
    else:
        text = value
        if address and _LINE_BREAK.search(value):
            parts = (part.strip().rstrip(",").strip() for part in _LINE_BREAK.split(value))
            text = ", ".join(part for part in parts if part)
        cleaned = _CONTROL.sub("", _BREAKS.sub(" ", text))
        flagged = cleaned != text
        if flagged:
            cleaned = re.sub(" {2,}", " ", cleaned)
    return cleaned.strip() or None, flagged


def _problems_by_row(
    columns: Mapping[str, CleanColumn], cleaned: Mapping[str, np.ndarray], instruction_missing: np.ndarray
) -> _Problems:
    """Every row's problems, in `_CHECK_ORDER`; the checks across two columns are made here
    (`instruction_missing`, which the fingerprint needs too, by the caller)."""
    checks: dict[str, dict[int, str]] = {}
    for column in columns.values():
        checks.update(column.problems)
    person = (cleaned["subject_type"] == "person") & _is_none(cleaned["person_ref"])
    checks["person_ref_missing"] = dict.fromkeys(
        np.flatnonzero(person).tolist(), "subject_type is person but person_ref is missing"
    )
    starts, ends = _day_numbers(columns["effective_from"]), _day_numbers(columns["ends_on"])
    early = np.flatnonzero((starts > 0) & (ends > 0) & (ends < starts))
    checks["ends_before_start"] = dict.fromkeys(early.tolist(), "ends_on is before effective_from")
    codes = cleaned["alert_code"]
    checks["contact_instruction_missing"] = {
        row: f"contact_instruction is missing for a {codes[row]} alert ({INSTRUCTION_NEEDED[codes[row]]})"
        for row in np.flatnonzero(instruction_missing).tolist()
    }
    problems = _Problems()
    for check in _CHECK_ORDER:
        for row, message in checks.get(check, {}).items():
            problems.by_row.setdefault(row, []).append(message if message.isprintable() else _shown(message))
    return problems


def _instruction_missing(columns: Mapping[str, CleanColumn], cleaned: Mapping[str, np.ndarray]) -> np.ndarray:
    """Rows of a code in INSTRUCTION_NEEDED with no contact_instruction (after cleaning: one emptied
    of control characters is missing too), unless the alert has ended: nobody acts on an ended alert,
    and the merge's rule (only "ended" ends) decides, so a row without a status is still checked.
    Codes and statuses are looked at through their distinct values (a million rows, a few values)."""
    code = columns["alert_code"]
    needs = np.array([value in INSTRUCTION_NEEDED for value in code.distinct.tolist()], dtype=bool)[code.codes]
    if not needs.any():
        return needs
    status = columns["status"]
    ended = np.array([value == "ended" for value in status.distinct.tolist()], dtype=bool)[status.codes]
    return needs & _is_none(cleaned["contact_instruction"]) & ~ended


def _with_salt(hashes: np.ndarray, rows: np.ndarray, salt: np.int64) -> np.ndarray:
    """Row fingerprints with `salt` mixed into the given rows (a new array when any is given)."""
    if not rows.any():
        return hashes
    salted = hashes.astype(np.int64, copy=True)
    salted[rows] = np.bitwise_xor(salted[rows], salt)
    return salted


def _shown(message: str) -> str:
    """A message quoting a raw value (an unparseable timestamp), its control characters escaped."""
    return _CONTROL.sub(lambda m: m[0].encode("unicode_escape", "backslashreplace").decode("ascii"), message)


def _day_numbers(column: CleanColumn) -> np.ndarray:
    """A cleaned date column as YYYYMMDD numbers (0 when missing), for comparing days."""
    numbers = np.array([int(d.replace("-", "")) if d is not None else 0 for d in column.distinct], dtype=np.int64)
    return numbers[column.codes]


def _rows_with(codes: np.ndarray, messages: np.ndarray) -> dict[int, str]:
    """{row: message} for the rows whose distinct value has a message."""
    has_message = ~_is_none(messages)
    if not has_message.any():
        return {}
    rows = np.flatnonzero(has_message[codes])
    return dict(zip(rows.tolist(), messages[codes[rows]].tolist(), strict=True))


def _raw_row(source: Mapping[str, Sequence[Any]], row: int) -> dict[str, Any]:
    """A quarantined row as read. An optional column appears only when it holds a value, so a row
    quarantined before the column existed keeps its fingerprint (and is not resolved and re-added)."""
    return {
        c: _raw_value(source[c][row]) for c in SOURCE_COLUMNS
        if c not in OPTIONAL_COLUMNS or not _is_missing(source[c][row])
    }


def _with_optional(hashes: np.ndarray, fingerprint: np.ndarray, present: np.ndarray) -> np.ndarray:
    """Row fingerprints with an optional column's hash mixed in where it holds a value (`present`);
    the other rows keep theirs as they were."""
    if not present.any():
        return hashes
    mixed = hashes.view(np.uint64).copy()
    mixed[present] = (mixed[present] ^ fingerprint[present]) * np.uint64(1_000_003)
    return mixed.view("int64")


def _combined_fingerprint(fingerprints: Sequence[np.ndarray], length: int) -> np.ndarray:
    """A stable 64-bit fingerprint of each row's fields, for change detection.

    Each column is hashed on its own (pandas' SipHash with its fixed key, stable across
    processes; None hashes apart from any text) and the column hashes are combined in order.
    """
    combined = np.full(length, 0x345678, dtype=np.uint64)
    multiplier = np.uint64(1_000_003)
    for position, hashed in enumerate(fingerprints):
        combined = (combined ^ hashed) * multiplier
        multiplier += np.uint64(82_520 + 2 * (len(fingerprints) - position))
    return combined.view("int64")


_NONE_TEXT = "\x00"  # stands for None when hashing: after cleaning, no value is the empty string


def _hash_values(values: np.ndarray) -> np.ndarray:
    as_text = np.where(_is_none(values), _NONE_TEXT, values)
    try:
        return pd.util.hash_array(as_text, categorize=False)
    except TypeError:  # numbers among the text
        return pd.util.hash_array(as_text.astype(str).astype(object), categorize=False)


class _Problems:
    """Per-row problem messages, collected check by check (problems are rare: store only those)."""

    def __init__(self) -> None:
        self.by_row: dict[int, list[str]] = {}

    def add(self, mask: np.ndarray, message: str | Callable[[int], str]) -> None:
        for i in np.flatnonzero(mask):
            self.by_row.setdefault(int(i), []).append(message if isinstance(message, str) else message(int(i)))

    def mask(self, length: int) -> np.ndarray:
        hit = np.zeros(length, dtype=bool)
        hit[list(self.by_row)] = True
        return hit

    def joined_at(self, row: int) -> str | None:
        messages = self.by_row.get(int(row))
        return "; ".join(messages) if messages else None

    def joined(self, length: int) -> list[str | None]:
        out: list[str | None] = [None] * length
        for row, messages in self.by_row.items():
            out[row] = "; ".join(messages)
        return out


def _object_array(values: Iterable[Any] | Sequence[Any]) -> np.ndarray:
    """A 1-D object array of the values as they are (never a 2-D array of tuples)."""
    if isinstance(values, np.ndarray) and values.dtype == object:
        return values
    return np.fromiter(values, dtype=object, count=len(values))


def _stripped_text(values: Sequence[Any]) -> list[str | None]:
    """Strings stripped, blanks and missing values as None, anything else as its text."""
    return [(v.strip() or None) if v.__class__ is str else _other_text(v) for v in values]


def _is_missing(value: Any) -> bool:
    return value is None or value is pd.NA or value is pd.NaT or (isinstance(value, float) and value != value)


def _other_text(value: Any) -> str | None:
    if _is_missing(value):
        return None
    return str(value).strip() or None


def _is_none(values: np.ndarray) -> np.ndarray:
    return np.equal(values, None)


def _by_distinct(
    values: Sequence[Any], cleaner: Cleaner
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray | None]:
    """Apply `cleaner` once per distinct value: (codes, cleaned distinct values, their messages,
    which distinct values held control characters (None when none did)).

    Missing values get code -1, which picks the last entry: (None, no message).
    """
    codes, uniques = pd.factorize(_object_array(values), use_na_sentinel=True)
    controls = None
    if any(u.__class__ is str and not u.isprintable() for u in uniques):
        uniques = uniques.copy()
        controls = np.zeros(len(uniques) + 1, dtype=bool)
        for position, value in enumerate(uniques):
            if value.__class__ is str and not value.isprintable():
                cleaned_value, controls[position] = _without_controls(value)
                uniques[position] = cleaned_value or ""  # blank: missing, like any blank value
        if not controls.any():
            controls = None
    cleaned = [_clean_one(u, cleaner) for u in uniques] + [(None, None)]
    distinct = _object_array([c[0] for c in cleaned])
    messages = _object_array([c[1] for c in cleaned])
    return codes, distinct, messages, controls


def _clean_one(value: Any, cleaner: Cleaner) -> tuple[Any, str | None]:
    if value.__class__ is str:
        value = value.strip()
        if not value:
            return None, None  # blank is missing, not a problem of its own
    return cleaner(value)


def _clean_timestamps(name: str, values: Sequence[Any]) -> CleanColumn:
    """Timestamps: the common UTC shapes are recognised and rewritten for the whole column at once.

    Nearly every timestamp is distinct, so cleaning through distinct values would not save work.
    One regular-expression pass over the column, joined into one text, finds the values in a
    common shape; a few text replacements turn those into the stored shape; the rest (other
    zones, fractions, typed values, faults) are cleaned one by one.
    """
    cleaner = _timestamp_cleaner(name)
    n = len(values)
    text = "\n".join([v if v.__class__ is str else "" for v in values]) + "\n" if n else ""
    problems: dict[int, str] = {}
    if text.count("\n") != n:  # a value holds a line break: clean every value
        cleaned = _clean_each(values, range(n), cleaner, problems)
    else:
        unusual = list(_lines_not_matching(_UTC_TIMESTAMP_LINES, text))
        text = text.replace("T", " ")
        for suffix in _UTC_SUFFIXES:
            text = text.replace(suffix, "\n")
        cleaned = text.split("\n")
        cleaned.pop()  # after the last line break
        _clean_each(values, unusual, cleaner, problems, into=cleaned)
    return CleanColumn(name, values=cleaned, problems={name: problems} if problems else {})


def _clean_each(
    values: Sequence[Any], rows: Iterable[int], cleaner: Cleaner, problems: dict[int, str], into: list[Any] | None = None
) -> list[Any]:
    """Clean the given rows one value at a time, into `into` (a copy of `values` by default)."""
    out = list(values) if into is None else into
    for row in rows:
        value = values[row]
        out[row], problem = (None, None) if _is_missing(value) else _clean_one(value, cleaner)
        if problem is not None:
            problems[row] = problem
    return out


def _lines_not_matching(run_of_lines: re.Pattern[str], text: str) -> Iterable[int]:
    """The numbers of the lines of `text` that `run_of_lines` (a run of whole lines) does not take."""
    position, line = 0, 0
    end = len(text)
    while position < end:
        matched_to = run_of_lines.match(text, position).end()
        line += text.count("\n", position, matched_to)
        if matched_to >= end:
            return
        yield line
        position = text.index("\n", matched_to) + 1
        line += 1


def _postcode(value: Any) -> tuple[str, None]:
    return " ".join(str(value).upper().split()), None


def _upper(value: Any) -> tuple[str, None]:
    return str(value).upper(), None


def _as_text(value: Any) -> tuple[str, None]:
    return str(value), None


def _enum_cleaner(column: str, allowed: frozenset[str]) -> Cleaner:
    def clean(value: Any) -> tuple[str | None, str | None]:
        canonical = "_".join(re.split(r"[\s-]+", str(value).lower()))
        if canonical in allowed:
            return canonical, None
        return None, f"{column}: unknown value '{value}'"

    return clean


def _flag_cleaner(column: str) -> Cleaner:
    def clean(value: Any) -> tuple[int | None, str | None]:
        word = str(value).strip().lower()
        if word in _TRUE:
            return 1, None
        if word in _FALSE:
            return 0, None
        return None, f"{column}: expected 0 or 1, got '{value}'"

    return clean


def _date_cleaner(column: str) -> Cleaner:
    def clean(value: Any) -> tuple[str | None, str | None]:
        if isinstance(value, dt.date):  # a typed date or datetime column
            day = value.date() if isinstance(value, dt.datetime) else value
        else:
            text = str(value)
            if not _ISO_DATE.match(text):
                return None, f"{column}: unparseable date '{text}'"
            try:
                day = dt.date.fromisoformat(text[:10])
            except ValueError:
                return None, f"{column}: impossible date '{text}'"
        if not _EARLIEST <= day <= _LATEST:
            return None, f"{column}: impossible date '{value}'"
        return day.isoformat(), None

    return clean


def _timestamp_cleaner(column: str) -> Cleaner:
    def clean(value: Any) -> tuple[str | None, str | None]:
        if isinstance(value, dt.datetime):
            moment = value
        elif isinstance(value, dt.date):
            moment = dt.datetime(value.year, value.month, value.day)
        elif (utc := _UTC_TIMESTAMP.match(str(value))) is not None:
            if not _real_day(utc[1]):
                return None, f"{column}: unparseable timestamp '{value}'"
            return f"{utc[1]} {utc[2]}", None
        else:
            try:
                moment = dt.datetime.fromisoformat(str(value))
            except ValueError:
                return None, f"{column}: unparseable timestamp '{value}'"
        if moment.tzinfo is not None:
            moment = moment.astimezone(dt.UTC).replace(tzinfo=None)
        return moment.replace(microsecond=0).isoformat(sep=" "), None

    return clean


_CLEANERS: dict[str, Cleaner] = {
    "alert_code": _upper,
    "area": _upper,
    "postcode": _postcode,
    "language": _as_text,
    **{c: _enum_cleaner(c, allowed) for c, allowed in ENUMS.items()},
    **{c: _flag_cleaner(c) for c in FLAG_COLUMNS},
    **{c: _date_cleaner(c) for c in DATE_COLUMNS},
}


@functools.lru_cache(maxsize=100_000)
def _real_day(iso_day: str) -> bool:
    """Whether a YYYY-MM-DD that passed the pattern is a real day (not 30 February)."""
    try:
        dt.date.fromisoformat(iso_day)
    except ValueError:
        return False
    return True


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, int | float | str | bool):
        return value
    return str(value)


def _raw_value(value: Any) -> Any:
    """A quarantined row's raw value, whole up to RAW_VALUE_LIMIT characters, then cut with a marker."""
    value = _jsonable(value)
    if isinstance(value, str) and len(value) > RAW_VALUE_LIMIT:
        return f"{value[:RAW_VALUE_LIMIT]}[... cut here: {len(value):,} characters in all]"
    return value
