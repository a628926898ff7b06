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

What changed since a recipient's previous digest is judged against what that digest showed them
(`shown_record`, kept per alert in the disclosure log): added, changed (old -> new, an escalation to
a code of higher severity marked and listed first) and lifted. Staff must check before every visit
(Karbon 6.3, Hexagon 1.2) and a threatened person is warned at once (Dover 6.23): a new weapons
warning must never hide in an unchanged-looking list.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import heapq
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from cautionflow.domain.codes import MAX_SEVERITY, required_action, severity
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


class DutyContact(Protocol):
    """The landlord's duty contact (`cautionflow.config.DutyContact`): who to call, day and night."""

    @property
    def name(self) -> str: ...

    @property
    def phone(self) -> str: ...


# The only register fields a digest ever reads (never `note`, `dq_flags`, the resident's contact details...).
# `contact_instruction` is how staff make contact safely (the single point of contact, the agreed arrangements).
ALERT_FIELDS = (
    "alert_id", "alert_code", "subject_type", "person_name", "asset_ref", "address", "postcode", "area",
    "contact_instruction",
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
# The alert's own instruction, or the duty contact's number where it has none: shown to call handlers
# always, and to contractors only where the config says so (config.digests.contractors_see_instructions:
# an instruction can name an officer or an arrangement agreed with the resident).
INSTRUCTION_COLUMN = Column("contact_instruction", "Contact instruction")
CONTRACTOR_INSTRUCTION_COLUMNS: tuple[Column, ...] = (*CONTRACTOR_COLUMNS[:6], INSTRUCTION_COLUMN, CONTRACTOR_COLUMNS[6])
# Karbon 7.3: call handlers are told of all flagged individuals, so they also get who it is about.
OUT_OF_HOURS_COLUMNS: tuple[Column, ...] = (
    *CONTRACTOR_COLUMNS[:4],
    Column("person_name", "Name"),
    Column("subject_type", "Subject type"),
    *CONTRACTOR_INSTRUCTION_COLUMNS[4:],
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
    """Flags added, changed and lifted since the recipient's previous digest (None: this is the first)."""

    previous_as_of: dt.date | None
    added: tuple[DigestRow, ...]
    lifted: tuple[DigestRow, ...]
    changed: tuple[ChangedAlert, ...] = ()

    @property
    def first(self) -> bool:
        return self.previous_as_of is None


@dataclass(frozen=True)
class DigestOptions:
    """The deployment's choices the digests read (from the config and the policy profile)."""

    contractors_see_instructions: bool = False
    duty_contact: DutyContact | None = None
    severity: Mapping[str, int] = field(default_factory=dict)  # the profile's overrides of the codes' ranks
    timezone: dt.tzinfo = dt.UTC  # for the times shown ("Urgent notice sent 14:15, 29 November")

    @property
    def fallback_instruction(self) -> str:
        """What the contact instruction column shows for an alert that has none."""
        return duty_contact_text(self.duty_contact)


def duty_contact_text(duty: DutyContact | None) -> str:
    return f"Call {duty.name} on {duty.phone}" if duty is not None else ""


def columns_for(role: str, *, instructions: bool = False) -> tuple[Column, ...]:
    """The role's columns; `instructions`: a contractor sees the contact instruction too."""
    if role == "contractor" and instructions:
        return CONTRACTOR_INSTRUCTION_COLUMNS
    try:
        return ROLE_COLUMNS[role]
    except KeyError:
        raise ValueError(f"role '{role}' does not receive digests") from None


def recipient_columns(role: str, options: DigestOptions) -> tuple[Column, ...]:
    return columns_for(role, instructions=options.contractors_see_instructions)


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


def _value(key: str, alert: Mapping[str, Any], role: str, as_of: dt.date | None, fallback: str) -> str | dt.date:
    """One column's value: text, or a date (a datetime is cut to its day)."""
    if key == "required_action":
        return required_action(alert.get("alert_code"))
    if key == "contact_instruction":
        instruction = alert.get(key)
        return fallback if is_missing(instruction) or not str(instruction).strip() else str(instruction).strip()
    value = alert.get(key)
    if is_missing(value):
        return ""
    if isinstance(value, dt.date):
        day = value.date() if isinstance(value, dt.datetime) else value
        if key == "review_due" and role in PAST_REVIEW_HIDDEN and as_of is not None and day < as_of:
            return UNDER_REVIEW  # due today is not past: the date is still shown that day
        return day
    return str(value).strip()


def _project(
    role: str, alert: Mapping[str, Any], as_of: dt.date | None, columns: Sequence[Column] | None = None,
    fallback: str = "",
) -> DigestRow:
    values = tuple(_value(c.key, alert, role, as_of, fallback) for c in (columns or columns_for(role)))
    return DigestRow(str(alert["alert_id"]), tuple(display(v) for v in values), values)


def digest_row(
    role: str, alert: Mapping[str, Any], *, as_of: dt.date, columns: Sequence[Column] | None = None,
    fallback: str = "",
) -> DigestRow:
    """Project a register row (any fields) onto the role's allow-listed columns (`columns`, or the
    role's default ones), as of a day: a contractor's review date before that day shows "under
    review"; an alert with no contact instruction shows `fallback` (the duty contact's number)."""
    return _project(role, alert, as_of, columns, fallback)


def digest_rows(
    recipient: Recipient, alerts: Iterable[Mapping[str, Any]], *, as_of: dt.date,
    options: DigestOptions | None = None,
) -> tuple[DigestRow, ...]:
    """The current flags this recipient is entitled to see, in the order given.

    Rows with data-quality problems are included like any other (safety first); only their
    problem text is never shown."""
    seen = [a for a in alerts if entitled(recipient, a)]
    if not seen:
        return ()  # whatever the role: one that receives no digests has no columns
    options = options or DigestOptions()
    columns = recipient_columns(recipient.role, options)
    return tuple(
        digest_row(recipient.role, a, as_of=as_of, columns=columns, fallback=options.fallback_instruction)
        for a in seen
    )


class DigestSelector:
    """Every recipient's rows from one read of the register, without re-projecting for each.

    The same as `digest_rows` for each recipient, but each alert is projected once per role and a
    contractor's rows come from an index by area: composing 1,000 digests stays linear."""

    def __init__(
        self, alerts: Sequence[Mapping[str, Any]], *, as_of: dt.date, options: DigestOptions | None = None
    ) -> None:
        self._alerts = alerts
        self._as_of = as_of
        self._options = options or DigestOptions()
        self._by_area: dict[str, list[int]] = {}
        for index, alert in enumerate(alerts):
            self._by_area.setdefault(_area(alert), []).append(index)
        self._rows: dict[tuple[str, int], DigestRow] = {}

    def _row(self, role: str, index: int) -> DigestRow:
        row = self._rows.get((role, index))
        if row is None:
            row = self._rows[(role, index)] = digest_row(
                role, self._alerts[index], as_of=self._as_of, columns=recipient_columns(role, self._options),
                fallback=self._options.fallback_instruction,
            )
        return row

    def rows_for(self, recipient: Recipient) -> tuple[DigestRow, ...]:
        if recipient.role == "out_of_hours":
            indexes: Iterable[int] = range(len(self._alerts))
        elif recipient.role == "contractor":
            indexes = heapq.merge(*(self._by_area.get(area, ()) for area in sorted(set(recipient.areas))))
        else:
            return ()
        return tuple(self._row(recipient.role, index) for index in indexes)


def lifted_row(
    recipient: Recipient, alert: Mapping[str, Any] | None, alert_id: str, *, options: DigestOptions | None = None
) -> DigestRow:
    """A flag the recipient was told about before and is no longer current for them.

    It says where and which code no longer applies. A contractor is never shown an area outside
    its own (the alert may have moved), and the review date no longer matters."""
    known = dict(alert or {})
    known["alert_id"] = alert_id
    if recipient.role == "contractor" and not entitled(recipient, known):
        known["area"] = None
    known["review_due"] = None
    options = options or DigestOptions()
    # no review date, so no day to judge it by
    return _project(recipient.role, known, None, recipient_columns(recipient.role, options))


# --- what a digest showed, and what changed since -------------------------------------------------

# The cells kept as they were shown, so a later digest can say "old -> new": what to do and where,
# never who or which home (the code and action, the area, the landlord's asset reference, the contact
# instruction, which is the landlord's arrangement). The other cells a recipient sees (address,
# postcode, name, subject type) are kept only as a short hash salted with the alert id, so a change
# to them is still found ("details changed") without the disclosure log holding them: retention
# would otherwise have to clear it. The review date is left out on purpose: a review date moving is
# paperwork, not a safety change, and a contractor's "under review" flips on the day it passes.
SHOWN_KEYS = ("alert_code", "required_action", "area", "asset_ref", "contact_instruction")
UNCOMPARED_KEYS = frozenset({"review_due"})
_HASHED = "hashed"


def _hashed(alert_id: str, key: str, text: str) -> str:
    return hashlib.sha256(f"{alert_id}\x1f{key}\x1f{text}".encode()).hexdigest()[:12]


def shown_record(columns: Sequence[Column], row: DigestRow) -> str:
    """What a digest shows of one alert that later digests compare with, as compact JSON (always
    with "alert_code", the code as shown). No personal data of the resident: see SHOWN_KEYS."""
    record: dict[str, Any] = {}
    hashed: dict[str, str] = {}
    for column, cell in zip(columns, row.cells, strict=True):
        if column.key in SHOWN_KEYS:
            record[column.key] = cell
        elif column.key not in UNCOMPARED_KEYS:
            hashed[column.key] = _hashed(row.alert_id, column.key, cell)
    record.setdefault("alert_code", "")
    if hashed:
        record[_HASHED] = hashed
    return json.dumps(record, ensure_ascii=False, separators=(",", ":"), sort_keys=True)


@dataclass(frozen=True, slots=True)
class ChangedAlert:
    """A flag in both digests whose shown cells differ: `before` and `after` hold the kept cells
    that changed (empty when only a hashed cell did: "details changed")."""

    row: DigestRow
    before: Mapping[str, str]
    after: Mapping[str, str]
    escalated: bool  # the new code ranks higher than the old (cautionflow.domain.codes.severity)


def compare_shown(
    previous: str, current: str, overrides: Mapping[str, int] | None = None
) -> tuple[dict[str, str], dict[str, str], bool, bool] | None:
    """(before, after, details changed, escalated) between two shown records, or None when they
    show the same. Only keys both recorded are compared: a column a recipient gained or lost (the
    config's instructions switched on) is not a change to the alert."""
    try:
        old, new = json.loads(previous), json.loads(current)
    except (TypeError, ValueError):
        return None  # an unreadable record is treated as no record: never a false "changed"
    if not isinstance(old, dict) or not isinstance(new, dict):
        return None
    keys = [k for k in SHOWN_KEYS if k in old and k in new and old[k] != new[k]]
    old_hashed, new_hashed = old.get(_HASHED) or {}, new.get(_HASHED) or {}
    details = any(old_hashed[k] != new_hashed[k] for k in old_hashed if k in new_hashed)
    if not keys and not details:
        return None
    escalated = "alert_code" in keys and (
        severity(new["alert_code"], overrides) > severity(old["alert_code"], overrides)
    )
    return {k: str(old[k]) for k in keys}, {k: str(new[k]) for k in keys}, details, escalated


def changes_since(
    previous_as_of: dt.date | None,
    previous_ids: Iterable[str] | None,
    current: Sequence[DigestRow],
    lifted_rows: Mapping[str, DigestRow],
    *,
    previous_shown: Mapping[str, str] | None = None,
    shown: Mapping[str, str] | None = None,
    severity_overrides: Mapping[str, int] | None = None,
) -> DigestChanges:
    """Added: current flags not in the previous digest. Lifted: previous flags no longer current.
    Changed: flags in both whose shown record (`shown`, by alert id) differs from what the previous
    digest recorded (`previous_shown`); escalations first, then in the list's order. A previous
    disclosure with no record (before the disclosure log kept one) is never reported as changed."""
    if previous_ids is None:
        return DigestChanges(None, (), ())
    before = set(previous_ids)
    now = {row.alert_id for row in current}
    added = tuple(row for row in current if row.alert_id not in before)
    lifted = tuple(lifted_rows[alert_id] for alert_id in sorted(before - now) if alert_id in lifted_rows)
    changed: list[ChangedAlert] = []
    for row in current:
        old, new = (previous_shown or {}).get(row.alert_id), (shown or {}).get(row.alert_id)
        if row.alert_id not in before or old is None or new is None:
            continue
        difference = compare_shown(old, new, severity_overrides)
        if difference is not None:
            was, now_shows, _, escalated = difference
            changed.append(ChangedAlert(row, was, now_shows, escalated))
    changed.sort(key=lambda c: not c.escalated)  # stable: escalations first, each group in the list's order
    return DigestChanges(previous_as_of, added, lifted, tuple(changed))


def lifted_ids(previous_ids: Iterable[str] | None, current: Sequence[DigestRow]) -> set[str]:
    return set(previous_ids or ()) - {row.alert_id for row in current}


def content_hash(role: str, rows: Sequence[DigestRow], columns: Sequence[Column] | None = None) -> str:
    """What was disclosed, as a digest: the same rows give the same hash, whatever day it is. Only
    the rows: the marks (new, changed, already notified) and the changes section are not part of
    it, so a rerun of the day finds the same key and sends nothing, however the marks would differ."""
    payload = {
        "role": role,
        "columns": [c.key for c in (columns or columns_for(role))],
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


# --- severity and order ---------------------------------------------------------------------------


def row_code(columns: Sequence[Column], row: DigestRow) -> str:
    """The alert code a row shows."""
    for column, cell in zip(columns, row.cells, strict=True):
        if column.key == "alert_code":
            return cell
    return ""


def is_highest_risk(code: str, overrides: Mapping[str, int] | None = None) -> bool:
    """A code at the top rank (do not visit, weapons, agency-reported risk, and whatever the
    profile ranks as high): listed again in the digest's "Highest risk" block, before the full list."""
    return severity(code, overrides) >= MAX_SEVERITY


_DIGITS = re.compile(r"(\d+)")


def natural_key(text: Any) -> tuple[tuple[int, int, str], ...]:
    """A sort key reading runs of digits as numbers: QE1, QE2, QE10; "2 Mill Lane" before "10 Mill
    Lane". Case-insensitive; each part is (kind, number, text) so numbers and words never compare."""
    value = "" if is_missing(text) else str(text).strip()
    parts = []
    for index, part in enumerate(_DIGITS.split(value.casefold())):
        if not part:
            continue
        parts.append((0, int(part), part) if index % 2 else (1, 0, part))
    return tuple(parts)


def alert_order(alert: Mapping[str, Any]) -> tuple[Any, ...]:
    """The digests' order: area, then postcode and address naturally, then code and id."""
    return tuple(natural_key(alert.get(k)) for k in ("area", "postcode", "address", "alert_code", "alert_id"))


def notified_text(moment: dt.datetime, timezone: dt.tzinfo) -> str:
    """When an urgent notice told the recipient, in the landlord's time: "Urgent notice sent 14:15, 29 November"."""
    local = moment.astimezone(timezone)
    return f"Urgent notice sent {local:%H:%M}, {local.day} {local:%B}"
