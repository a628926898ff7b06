"""Digests: who is sent which flags, when, and what changed since their previous digest (pure).

Minimum disclosure is decided here and nowhere else. A contractor sees only the alerts in the
areas it works in, and only where and what to do (Karbon 7.1-7.2, Dover 6.31, Hexagon 1.2); an
out-of-hours call handler sees every active alert with the person's name (Karbon 7.3). Nobody is
sent the note (the facts behind the alert), the data-quality text or any other field: rows are
built from an allow-list of columns, so a field added to the register later cannot leak by default.

A review date in the past is not shown to contractors: it reads as "expired" when the alert still
applies until an officer lifts it (Dover 6.18: reviewed at the end of the period and may be
extended; Karbon 7.1: contractors are given the action required). They see "under review" instead;
out-of-hours call handlers, who are told of every flag (Karbon 7.3), keep the date.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cautionflow.domain.codes import required_action
from cautionflow.domain.csv_format import BOM, csv_line
from cautionflow.frames import is_missing

KIND = "digest"
UNDER_REVIEW = "under review"
# Roles shown "under review" instead of a review date already past (see the module's docstring).
PAST_REVIEW_HIDDEN = frozenset({"contractor"})
DIGEST_ROLES = frozenset({"contractor", "out_of_hours"})
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday")


class Recipient(Protocol):
    """What the digests read of a configured recipient (`cautionflow.config.Recipient`): the domain
    takes this shape, never the config module."""

    @property
    def role(self) -> str: ...

    @property
    def areas(self) -> Sequence[str]: ...

    @property
    def schedule(self) -> str: ...

    def on(self, day: dt.date) -> bool: ...

# The only register fields a digest ever reads (never `note`, `dq_flags`, contact details...).
ALERT_FIELDS = (
    "alert_id", "alert_code", "subject_type", "person_name", "asset_ref", "address", "postcode", "area",
)


@dataclass(frozen=True, slots=True)
class Column:
    key: str
    label: str


CONTRACTOR_COLUMNS: tuple[Column, ...] = (
    Column("address", "Address"),
    Column("postcode", "Postcode"),
    Column("area", "Area"),
    Column("asset_ref", "Asset reference"),
    Column("alert_code", "Alert code"),
    Column("required_action", "Required action"),
    Column("review_due", "Review due"),
)
# Karbon 7.3: call handlers are told of all flagged individuals, so they also get who it is about.
OUT_OF_HOURS_COLUMNS: tuple[Column, ...] = (
    *CONTRACTOR_COLUMNS[:4],
    Column("person_name", "Name"),
    Column("subject_type", "Subject type"),
    *CONTRACTOR_COLUMNS[4:],
)
ROLE_COLUMNS: dict[str, tuple[Column, ...]] = {
    "contractor": CONTRACTOR_COLUMNS,
    "out_of_hours": OUT_OF_HOURS_COLUMNS,
}


# The CSV's first column: a contractor or call handler quoting a flag back to the landlord names it
# exactly (an address can hold several alerts). Not shown in the email's table, which is read, not quoted.
ALERT_ID_LABEL = "Alert ID"


@dataclass(frozen=True, slots=True)
class DigestRow:
    """One flag as a recipient sees it, per column: `cells`, display text for the email ("2 March
    2027"); `values`, the same cells for the CSV, a date kept as a date so the one CSV writer prints
    it ISO 8601 (a spreadsheet sorts and filters it as a date). The alert id is the CSV's first
    column, and is kept for the disclosure log and for change tracking."""

    alert_id: str
    cells: tuple[str, ...]
    values: tuple[str | dt.date, ...]


@dataclass(frozen=True, slots=True)
class DigestChanges:
    """Flags added and lifted since the recipient's previous digest (None: this is the first)."""

    previous_as_of: dt.date | None
    added: tuple[DigestRow, ...]
    lifted: tuple[DigestRow, ...]

    @property
    def first(self) -> bool:
        return self.previous_as_of is None


def columns_for(role: str) -> tuple[Column, ...]:
    try:
        return ROLE_COLUMNS[role]
    except KeyError:
        raise ValueError(f"role '{role}' does not receive digests") from None


def is_due(recipient: Recipient, as_of: dt.date) -> bool:
    """Daily recipients every day; weekly ones on their weekday. Officers and operations never."""
    if recipient.role not in DIGEST_ROLES:
        return False
    if recipient.schedule == "weekly":
        return recipient.on(as_of)
    return True


def due_recipients(recipients: Iterable[Recipient], as_of: dt.date) -> tuple[Recipient, ...]:
    return tuple(r for r in recipients if is_due(r, as_of))


def _area(alert: Mapping[str, Any]) -> str:
    return str(alert.get("area") or "").strip().upper()


def entitled(recipient: Recipient, alert: Mapping[str, Any]) -> bool:
    """May this recipient be told about this alert? Contractors: only in their areas."""
    if recipient.role == "out_of_hours":
        return True
    if recipient.role == "contractor":
        return _area(alert) in set(recipient.areas)
    return False


def display(value: Any) -> str:
    if is_missing(value):
        return ""
    if isinstance(value, dt.date):
        return f"{value.day} {value:%B %Y}"
    return str(value).strip()


def _value(key: str, alert: Mapping[str, Any], role: str, as_of: dt.date | None) -> str | dt.date:
    """One column's value: text, or a date (a datetime is cut to its day)."""
    if key == "required_action":
        return required_action(alert.get("alert_code"))
    value = alert.get(key)
    if is_missing(value):
        return ""
    if isinstance(value, dt.date):
        day = value.date() if isinstance(value, dt.datetime) else value
        if key == "review_due" and role in PAST_REVIEW_HIDDEN and as_of is not None and day < as_of:
            return UNDER_REVIEW  # due today is not past: the date is still shown that day
        return day
    return str(value).strip()


def _project(role: str, alert: Mapping[str, Any], as_of: dt.date | None) -> DigestRow:
    values = tuple(_value(c.key, alert, role, as_of) for c in columns_for(role))
    return DigestRow(str(alert["alert_id"]), tuple(display(v) for v in values), values)


def digest_row(role: str, alert: Mapping[str, Any], *, as_of: dt.date) -> DigestRow:
    """Project a register row (any fields) onto the role's allow-listed columns, as of a day: a
    contractor's review date before that day shows "under review"."""
    return _project(role, alert, as_of)


def digest_rows(
    recipient: Recipient, alerts: Iterable[Mapping[str, Any]], *, as_of: dt.date
) -> tuple[DigestRow, ...]:
    """The current flags this recipient is entitled to see, in the order given.

    Rows with data-quality problems are included like any other (safety first); only their
    problem text is never shown."""
    return tuple(digest_row(recipient.role, a, as_of=as_of) for a in alerts if entitled(recipient, a))


class DigestSelector:
    """Every recipient's rows from one read of the register, without re-projecting for each.

    The same as `digest_rows` for each recipient, but each alert is projected once per role and a
    contractor's rows come from an index by area: composing 1,000 digests stays linear."""

    def __init__(self, alerts: Sequence[Mapping[str, Any]], *, as_of: dt.date) -> None:
        self._alerts = alerts
        self._as_of = as_of
        self._by_area: dict[str, list[int]] = {}
        for index, alert in enumerate(alerts):
            self._by_area.setdefault(_area(alert), []).append(index)
        self._rows: dict[tuple[str, int], DigestRow] = {}

    def _row(self, role: str, index: int) -> DigestRow:
        row = self._rows.get((role, index))
        if row is None:
            row = self._rows[(role, index)] = digest_row(role, self._alerts[index], as_of=self._as_of)
        return row

    def rows_for(self, recipient: Recipient) -> tuple[DigestRow, ...]:
        if recipient.role == "out_of_hours":
            indexes: Iterable[int] = range(len(self._alerts))
        elif recipient.role == "contractor":
            indexes = heapq.merge(*(self._by_area.get(area, ()) for area in sorted(set(recipient.areas))))
        else:
            return ()
        return tuple(self._row(recipient.role, index) for index in indexes)


def lifted_row(recipient: Recipient, alert: Mapping[str, Any] | None, alert_id: str) -> DigestRow:
    """A flag the recipient was told about before and is no longer current for them.

    It says where and which code no longer applies. A contractor is never shown an area outside
    its own (the alert may have moved), and the review date no longer matters."""
    known = dict(alert or {})
    known["alert_id"] = alert_id
    if recipient.role == "contractor" and not entitled(recipient, known):
        known["area"] = None
    known["review_due"] = None
    return _project(recipient.role, known, None)  # no review date, so no day to judge it by


def changes_since(
    previous_as_of: dt.date | None,
    previous_ids: Iterable[str] | None,
    current: Sequence[DigestRow],
    lifted_rows: Mapping[str, DigestRow],
) -> DigestChanges:
    """Added: current flags not in the previous digest. Lifted: previous flags no longer current."""
    if previous_ids is None:
        return DigestChanges(None, (), ())
    before = set(previous_ids)
    now = {row.alert_id for row in current}
    added = tuple(row for row in current if row.alert_id not in before)
    lifted = tuple(lifted_rows[alert_id] for alert_id in sorted(before - now) if alert_id in lifted_rows)
    return DigestChanges(previous_as_of, added, lifted)


def lifted_ids(previous_ids: Iterable[str] | None, current: Sequence[DigestRow]) -> set[str]:
    return set(previous_ids or ()) - {row.alert_id for row in current}


def content_hash(role: str, rows: Sequence[DigestRow]) -> str:
    """What was disclosed, as a digest: the same rows give the same hash, whatever day it is."""
    payload = {
        "role": role,
        "columns": [c.key for c in columns_for(role)],
        "rows": [[row.alert_id, *row.cells] for row in rows],
    }
    text = json.dumps(payload, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def idempotency_key(kind: str, recipient_name: str, recipient_email: str, as_of: dt.date, digest_hash: str) -> str:
    """One message per recipient, day and content: a rerun finds the same key and sends nothing."""
    text = "\n".join((kind, recipient_name, recipient_email.strip().lower(), as_of.isoformat(), digest_hash))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def message_id(kind: str, key: str, as_of: dt.date, domain: str) -> str:
    """A Message-ID derived from the idempotency key, so every resend of a digest carries the same one."""
    return f"<cautionflow.{kind}.{as_of:%Y%m%d}.{key[:32]}@{domain}>"


def digest_subject(organisation: str, recipient_name: str, as_of: dt.date, count: int) -> str:
    flags = "1 flag" if count == 1 else f"{count} flags"
    return f"Confidential: {organisation} caution alerts for {recipient_name}, {display(as_of)} ({flags})"


def digest_csv(
    columns: Sequence[Column], rows: Sequence[DigestRow], lines: dict[DigestRow, str] | None = None
) -> str:
    """The current list as CSV: the attachment, the same rows as the table with the alert id first
    and dates ISO 8601 (2027-03-02), by the one CSV writer (`cautionflow.domain.csv_format`: a cell
    a spreadsheet would run as a formula, `=HYPERLINK(...)` in an address, is kept as text behind
    OWASP's `'`; a BOM so Excel reads the UTF-8 "Zoë"; CRLF lines).

    `lines`, shared between digests composed together, keeps each row's CSV line, so a flag that
    is in many recipients' digests is formatted once."""
    known = {} if lines is None else lines
    parts = [BOM, csv_line([ALERT_ID_LABEL, *(c.label for c in columns)])]
    for row in rows:
        line = known.get(row)
        if line is None:
            line = known[row] = csv_line((row.alert_id, *row.values))
        parts.append(line)
    return "".join(parts)
