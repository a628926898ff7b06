"""Validating the rows the housing database returns: keep, flag or quarantine, never lose.

Safety first (policies README, "Principles"): a row that identifies a place or a person stays in
the register even when its paperwork is wrong, carrying its data-quality problems as flags, so
the warning still reaches the people who visit. Only a row that cannot be identified at all
(no alert_id; neither asset_ref nor address; an alert_id seen twice in one read) is quarantined,
with the raw row and the reason.

Built for a million rows: columns are cleaned as plain lists, low-cardinality columns (codes,
enums, dates) through their distinct values only (`pandas.factorize`), and problems, which are
rare, are collected per row only where a check fails.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.contract import (
    DATE_COLUMNS,
    ENUMS,
    FLAG_COLUMNS,
    SOURCE_COLUMNS,
    TEXT_COLUMNS,
    TIMESTAMP_COLUMNS,
    SourceColumns,
)

# Columns whose change is a change to the alert (updated_at alone is not).
HASHED_COLUMNS: tuple[str, ...] = tuple(c for c in SOURCE_COLUMNS if c != "updated_at")
# Text columns normalised through their distinct values (few of them, many repeats)...
_UPPER_COLUMNS = ("alert_code", "area", "postcode")
_DISTINCT_COLUMNS = (*_UPPER_COLUMNS, *ENUMS, "language")
# ...and the free text, stripped value by value.
_FREE_TEXT_COLUMNS = tuple(c for c in TEXT_COLUMNS if c not in _DISTINCT_COLUMNS)

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}(?:[ T].*)?$")
# The common timestamp shapes, checked without building timezone-aware datetimes.
_UTC_TIMESTAMP = re.compile(
    r"(\d{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12]\d|3[01]))[ T]((?:[01]\d|2[0-3]):[0-5]\d:[0-5]\d)"
    r"(?:\.\d{1,6})?(?:Z|[+-]00:?00)?$"
)
_TRUE = frozenset({"1", "1.0", "true", "t", "y", "yes"})
_FALSE = frozenset({"0", "0.0", "false", "f", "n", "no"})
_EARLIEST, _LATEST = dt.date(1900, 1, 1), dt.date(2100, 12, 31)

# A cleaner maps one distinct raw value to (normalised value, problem message or None).
Cleaner = Callable[[Any], tuple[Any, str | None]]


class SourceShapeError(Exception):
    """The source query does not return the source contract's columns."""


@dataclass(frozen=True)
class ValidatedBatch:
    """One read of the source, split into what the register keeps and what it quarantines.

    `alerts` has the contract's columns, normalised (text stripped, empty as None, dates as ISO
    strings or None, flags as 0/1 or None), plus `dq_flags` (None when clean) and `row_hash`.
    `quarantine` has `alert_id`, `reason`, `raw_row` (JSON) and `row_hash`.
    """

    alerts: pd.DataFrame
    quarantine: pd.DataFrame
    read: int

    @property
    def flagged(self) -> int:
        return int(self.alerts["dq_flags"].notna().sum())


def validate_source_rows(raw: SourceColumns | pd.DataFrame) -> ValidatedBatch:
    """`raw`: the source's columns (a frame, or each column's values in row order)."""
    present = list(raw.columns) if isinstance(raw, pd.DataFrame) else list(raw)
    missing = [c for c in SOURCE_COLUMNS if c not in present]
    if missing:
        raise SourceShapeError(
            "the source query does not return the column(s) " + ", ".join(missing)
            + " (see the source contract in the README)"
        )
    # No copies: the cleaners below treat NaN, NaT and pd.NA as missing themselves.
    if isinstance(raw, pd.DataFrame):
        source: dict[str, Sequence[Any]] = {c: raw[c].to_numpy(dtype=object) for c in SOURCE_COLUMNS}
    else:
        source = {c: raw[c] for c in SOURCE_COLUMNS}
    n = len(source["alert_id"])
    clean, factorised, flags = _normalise(source, n)

    # Quarantine: rows that identify nothing.
    reasons = _Problems()
    alert_id = np.asarray(clean["alert_id"], dtype=object)
    no_id = _is_none(alert_id)
    reasons.add(no_id, "missing alert_id")
    reasons.add(
        _is_none(np.asarray(clean["asset_ref"], dtype=object)) & _is_none(np.asarray(clean["address"], dtype=object)),
        "cannot be identified: neither asset_ref nor address",
    )
    ids = pd.Series(alert_id)
    duplicated = (~no_id) & ids.duplicated(keep=False).to_numpy()
    if duplicated.any():
        counts = ids[duplicated].map(ids[duplicated].value_counts())
        reasons.add(duplicated, lambda i: f"duplicate alert_id in one read ({counts[i]} rows)")
    quarantined = reasons.mask(n)
    keep = ~quarantined

    hashes = _hash_columns([factorised.get(c, clean[c]) for c in HASHED_COLUMNS], n)
    columns = {c: np.asarray(clean[c], dtype=object)[keep] for c in SOURCE_COLUMNS}
    columns["dq_flags"] = np.array(flags.joined(n), dtype=object)[keep]
    alerts = pd.DataFrame(columns, columns=[*SOURCE_COLUMNS, "dq_flags"], dtype=object)
    alerts["row_hash"] = hashes[keep]

    rows_out = np.flatnonzero(quarantined)
    raw_rows = [json.dumps({c: _jsonable(source[c][i]) for c in SOURCE_COLUMNS}, sort_keys=True) for i in rows_out]
    quarantine = pd.DataFrame(
        {
            "alert_id": pd.Series(alert_id[rows_out], dtype=object),
            "reason": pd.Series([reasons.joined_at(i) for i in rows_out], dtype=object),
            "raw_row": pd.Series(raw_rows, dtype=object),
        }
    )
    quarantine["row_hash"] = _hash_columns([raw_rows, quarantine["reason"].tolist()], len(quarantine))
    return ValidatedBatch(alerts=alerts, quarantine=quarantine, read=n)


def _hash_columns(columns: Sequence[Sequence[Any] | Factorised], length: int) -> np.ndarray:
    """A stable 64-bit fingerprint of each row's fields, for change detection.

    Each column is hashed on its own (pandas' SipHash with its fixed key, stable across
    processes; None hashes apart from any text) and the column hashes are combined in order.
    """
    combined = np.full(length, 0x345678, dtype=np.uint64)
    multiplier = np.uint64(1_000_003)
    for position, column in enumerate(columns):
        if isinstance(column, tuple) and len(column) == 2 and isinstance(column[0], np.ndarray):
            codes, distinct = column
            hashed = _hash_values(distinct)[codes]  # code -1 (None) picks the last, None
        else:
            hashed = _hash_values(np.asarray(column, dtype=object))
        combined = (combined ^ hashed) * multiplier
        multiplier += np.uint64(82_520 + 2 * (len(columns) - position))
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


def _stripped_text(values: Sequence[Any]) -> list[str | None]:
    """Strings stripped, blanks and missing values as None, anything else as its text."""
    return [(v.strip() or None) if v.__class__ is str else _other_text(v) for v in values]


def _other_text(value: Any) -> str | None:
    if value is None or value is pd.NA or value is pd.NaT or value != value:
        return None
    return str(value).strip() or None


def _is_none(values: np.ndarray) -> np.ndarray:
    return np.equal(values, None)


# A column as (codes, distinct values): row i holds distinct[codes[i]]. Hashing a column this
# way hashes each distinct value once.
Factorised = tuple[np.ndarray, np.ndarray]


def _by_distinct(
    values: Sequence[Any], cleaner: Cleaner, factorised: dict[str, Factorised], column: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Apply `cleaner` once per distinct value; return cleaned values, a problem mask and messages.

    The cleaned column is also kept factorised under `column`, for the row hash.
    """
    codes, uniques = pd.factorize(np.asarray(values, dtype=object), use_na_sentinel=True)
    cleaned = [_clean_one(u, cleaner) for u in uniques] + [(None, None)]  # code -1 (None) maps to the last
    distinct = np.array([c[0] for c in cleaned], dtype=object)
    factorised[column] = (codes, distinct)
    messages = np.array([c[1] for c in cleaned], dtype=object)[codes]
    return distinct[codes], ~_is_none(messages), messages


def _clean_one(value: Any, cleaner: Cleaner) -> tuple[Any, str | None]:
    if value.__class__ is str:
        value = value.strip()
        if not value:
            return None, None  # blank is missing, not a problem of its own
    return cleaner(value)


def _normalise(
    source: dict[str, Sequence[Any]], n: int
) -> tuple[dict[str, Sequence[Any]], dict[str, Factorised], _Problems]:
    out: dict[str, Sequence[Any]] = {}
    factorised: dict[str, Factorised] = {}
    flags = _Problems()

    for col in _FREE_TEXT_COLUMNS:
        out[col] = _stripped_text(source[col])
    for col in ("alert_code", "area"):
        out[col], _, _ = _by_distinct(source[col], _upper, factorised, col)
    out["postcode"], _, _ = _by_distinct(source["postcode"], _postcode, factorised, "postcode")
    out["language"], _, _ = _by_distinct(source["language"], lambda v: (str(v), None), factorised, "language")

    code = np.asarray(out["alert_code"], dtype=object)
    flags.add(_is_none(code), "alert_code: missing")
    unknown = ~_is_none(code) & ~pd.Series(code).isin(ALERT_CODES.keys()).to_numpy()
    flags.add(unknown, lambda i: f"alert_code: unknown code '{code[i]}'")

    for col, allowed in ENUMS.items():
        out[col], bad, messages = _by_distinct(source[col], _enum_cleaner(col, allowed), factorised, col)
        flags.add(bad, messages.__getitem__)
        if col == "subject_type":
            flags.add(_is_none(np.asarray(out[col], dtype=object)) & ~bad, "subject_type: missing")
    status = out["status"]
    missing_status = _is_none(np.asarray(status, dtype=object))
    flags.add(missing_status, "status: missing, treated as active")
    for i in np.flatnonzero(missing_status):
        status[i] = "active"
    del factorised["status"]  # no longer what its codes say
    subject = np.asarray(out["subject_type"], dtype=object)
    flags.add(
        (subject == "person") & _is_none(np.asarray(out["person_ref"], dtype=object)),
        "subject_type is person but person_ref is missing",
    )

    for col in FLAG_COLUMNS:
        out[col], bad, messages = _by_distinct(source[col], _flag_cleaner(col), factorised, col)
        flags.add(bad, messages.__getitem__)

    effective_from_bad = None
    for col in DATE_COLUMNS:
        out[col], bad, messages = _by_distinct(source[col], _date_cleaner(col), factorised, col)
        flags.add(bad, messages.__getitem__)
        if col == "effective_from":
            effective_from_bad = bad
    flags.add(_is_none(np.asarray(out["effective_from"], dtype=object)) & ~effective_from_bad, "effective_from: missing")
    ends_early = [e is not None and s is not None and e < s for e, s in zip(out["ends_on"], out["effective_from"], strict=True)]
    flags.add(np.array(ends_early, dtype=bool), "ends_on is before effective_from")

    for col in TIMESTAMP_COLUMNS:
        out[col], bad, messages = _by_distinct(source[col], _timestamp_cleaner(col), {}, col)
        flags.add(bad, messages.__getitem__)
    return out, factorised, flags


def _postcode(value: Any) -> tuple[str, None]:
    return " ".join(str(value).upper().split()), None


def _upper(value: str) -> tuple[str, None]:
    return value.upper(), None


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
