"""Urgent notices: which changes to the register cannot wait for the next morning's digest (pure).

Dover 6.23 wants a threatened person warned at once; Karbon 6.3 and Hexagon 1.2 want staff to check
for warnings before every visit. A digest tells contractors and call handlers once a day; an alert
of an urgent code (config `urgent.codes`: do not visit, weapons, agency-reported risk by default)
added at 10:00 would reach them the next morning. These rules pick the changes that go at once.

An urgent change, for one recipient, is an `alert_history` row recorded by a sync that finished
at or after the start of that recipient's window, about an alert that is active now, has an urgent
code now, and which that recipient may see now (`digests.entitled`: contractors only in their
areas, out-of-hours call handlers everything; officers, operations and appeals never):

- `inserted` or `reopened`: a new warning, or one back in force;
- `updated` with `alert_code` [old, new], `new` the code the alert has now, and an escalation: `new`
  urgent and either `old` not urgent (VIP -> DNV) or `new` of a higher rank; never a de-escalation
  (DNV -> VIP) nor a move between urgent codes of one rank (WPN -> DNV). Two urgent codes compare by the
  digests' ranks (`cautionflow.domain.codes.severity` with the policy profile's overrides, the ones
  that mark a digest's ESCALATED): where VIP and DOG are both urgent and the profile ranks DOG 5,
  VIP -> DOG is an escalation, and without that override it is not;
- `updated` with `area` [old, new] for a contractor whose areas hold `new` but not `old`: a warning
  it has not been told of, now in its area (call handlers see every area, so a move is no news).

The window starts when the recipient's latest digest was sent (the digest listed what the register
held then), or, without one, 24 hours before `now`. The changes recorded by the register's first
sync are never urgent: loading a landlord's existing alerts into an empty register is not news, and
the first digests tell of them.

Exactly once per alert change: a notice is keyed by the recipient and the (alert_id, history id)
pairs it tells of (a rerun finds the same key); and a change is already told when an earlier urgent
notice to that recipient, queued at or after the sync that recorded the change finished (sent,
queued or failed: a failed one is resent by `mail resend-failed`, never composed again), listed the
alert with the code it has now. An alert told as AGY, then changed to WPN, is not told again (the same rank); a configured
urgent code of a lower rank that escalates to DNV is.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cautionflow.domain.codes import ALERT_CODES, severity
from cautionflow.domain.digests import Recipient, entitled

KIND = "urgent"
# Without a digest to a recipient yet, changes this recent are urgent for it.
DEFAULT_WINDOW = dt.timedelta(hours=24)

ADDED, REOPENED, ESCALATED, MOVED_IN = "added", "reopened", "escalated", "moved_in"


def canonical(code: object) -> str:
    return str(code or "").strip().upper()


def is_escalation(
    old: object, new: object, urgent_codes: Collection[str], overrides: Mapping[str, int] | None = None
) -> bool:
    """A change of code that makes an alert urgent, or more serious while urgent (by
    `codes.severity` with the profile's `overrides`)."""
    before, after = canonical(old), canonical(new)
    if after not in urgent_codes or before == after:
        return False
    return before not in urgent_codes or severity(after, overrides) > severity(before, overrides)


@dataclass(frozen=True, slots=True)
class HistoryChange:
    """One `alert_history` row, with when the sync that recorded it finished."""

    id: int
    alert_id: str
    change: str  # inserted | updated | ended | reopened
    changed_fields: Mapping[str, Sequence[Any]]  # {field: [old, new]}; empty for inserted
    finished_at: dt.datetime
    initial_load: bool = False  # recorded by the register's first sync


@dataclass(frozen=True, slots=True)
class UrgentChange:
    """A change one recipient is to be told of at once."""

    alert_id: str
    history_id: int
    what: str  # added | reopened | escalated | moved_in
    code: str  # the alert's code now
    finished_at: dt.datetime
    old_code: str | None = None  # escalated: the code before


@dataclass(frozen=True, slots=True)
class EarlierNotice:
    """An urgent notice queued earlier (sent, outstanding or failed): to whom, when, which alerts as which code."""

    recipient_name: str
    recipient_email: str
    queued_at: dt.datetime
    codes: Mapping[str, str]  # alert_id -> the code it showed


@dataclass(frozen=True, slots=True)
class PlannedNotice:
    recipient: Any  # a configured recipient (`digests.Recipient`, with name and email)
    changes: tuple[UrgentChange, ...]  # one per alert, most serious first
    key: str


def _area(value: object) -> str:
    return str(value or "").strip().upper()


def urgent_change(
    recipient: Recipient, change: HistoryChange, alert: Mapping[str, Any] | None, urgent_codes: Collection[str],
    overrides: Mapping[str, int] | None = None,
) -> UrgentChange | None:
    """This history row as an urgent change for this recipient, or None (see the module's rules)."""
    if alert is None or change.initial_load or alert.get("register_state") != "active":
        return None
    code = canonical(alert.get("alert_code"))
    if code not in urgent_codes or not entitled(recipient, alert):
        return None

    def told(what: str, old_code: str | None = None) -> UrgentChange:
        return UrgentChange(change.alert_id, change.id, what, code, change.finished_at, old_code)

    if change.change == "inserted":
        return told(ADDED)
    if change.change == "reopened":
        return told(REOPENED)
    if change.change != "updated":
        return None
    fields = change.changed_fields
    if "alert_code" in fields:
        old, new = fields["alert_code"][0], fields["alert_code"][1]
        if canonical(new) == code and is_escalation(old, new, urgent_codes, overrides):
            return told(ESCALATED, canonical(old) or None)
    if recipient.role == "contractor" and "area" in fields:
        areas = {_area(a) for a in recipient.areas}
        if _area(fields["area"][0]) not in areas:
            return told(MOVED_IN)
    return None


def window_start(last_digest_sent: dt.datetime | None, now: dt.datetime) -> dt.datetime:
    """From the recipient's latest digest (to the second: a sync's finish is stored to the second,
    and a change in that second is told rather than missed), else 24 hours before `now`."""
    if last_digest_sent is None:
        return now - DEFAULT_WINDOW
    return last_digest_sent.replace(microsecond=0)


def already_told(change: UrgentChange, earlier: Iterable[EarlierNotice]) -> bool:
    return any(
        notice.codes.get(change.alert_id) == change.code and notice.queued_at >= change.finished_at
        for notice in earlier
    )


def notice_key(recipient_name: str, recipient_email: str, changes: Iterable[UrgentChange]) -> str:
    """The outbox key: kind, recipient and the (alert, history row) pairs told, whatever the day."""
    told = sorted({(c.alert_id, c.history_id) for c in changes})
    text = "\n".join((KIND, recipient_name, recipient_email.strip().lower(), json.dumps(told)))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def shown(code: str) -> str:
    """What the disclosure log keeps of an alert an urgent notice told of (never personal data)."""
    return json.dumps({"alert_code": code})


def shown_code(text: str | None) -> str | None:
    """The code an earlier notice showed (`shown`'s inverse); None when it recorded none."""
    if not text:
        return None
    try:
        return canonical(json.loads(text).get("alert_code")) or None
    except (ValueError, AttributeError):
        return None


@dataclass(frozen=True)
class UrgentPlan:
    notices: tuple[PlannedNotice, ...]
    found: int  # distinct urgent alert changes, for anyone
    already_told: int  # (recipient, change) pairs an earlier notice told


def plan_notices(
    recipients: Iterable[Any],
    history: Sequence[HistoryChange],
    alerts: Mapping[str, Mapping[str, Any]],
    *,
    urgent_codes: Collection[str],
    windows: Mapping[tuple[str, str], dt.datetime],
    earlier: Iterable[EarlierNotice],
    severity_overrides: Mapping[str, int] | None = None,
) -> UrgentPlan:
    """One notice per recipient with anything untold, each alert once (its latest urgent change).

    `windows`: each recipient's window start by (name, email) (`window_start`); `alerts`: the
    alerts the history names as the register holds them now (allow-listed fields, with
    `register_state`); `severity_overrides`: the policy profile's ranks (`DigestOptions.severity`),
    for what is an escalation and which alert comes first."""
    codes = frozenset(canonical(c) for c in urgent_codes)
    by_recipient: dict[tuple[str, str], list[EarlierNotice]] = {}
    for notice in earlier:
        by_recipient.setdefault((notice.recipient_name, notice.recipient_email), []).append(notice)
    ordered = sorted(history, key=lambda h: h.id)
    notices = []
    found: set[tuple[str, int]] = set()
    told = 0
    for recipient in recipients:
        if recipient.role not in ("contractor", "out_of_hours"):
            continue
        who = (recipient.name, recipient.email)
        since = windows[who]
        latest: dict[str, UrgentChange] = {}
        for change in ordered:
            if change.finished_at < since:
                continue
            urgent = urgent_change(recipient, change, alerts.get(change.alert_id), codes, severity_overrides)
            if urgent is not None:
                latest[change.alert_id] = urgent
        untold = []
        for urgent in latest.values():
            found.add((urgent.alert_id, urgent.history_id))
            if already_told(urgent, by_recipient.get(who, ())):
                told += 1
            else:
                untold.append(urgent)
        if untold:
            untold.sort(key=lambda c: (-severity(c.code, severity_overrides), _place(alerts[c.alert_id]), c.alert_id))
            notices.append(PlannedNotice(recipient, tuple(untold), notice_key(recipient.name, recipient.email, untold)))
    return UrgentPlan(tuple(notices), len(found), told)


def _place(alert: Mapping[str, Any]) -> tuple[str, str]:
    return (_area(alert.get("area")), str(alert.get("postcode") or ""))


def what_happened(change: UrgentChange) -> str:
    """The notice's first column: why this alert is in it."""
    title = ALERT_CODES[change.code].title if change.code in ALERT_CODES else change.code
    if change.what == ESCALATED and change.old_code:
        return f"{title}: escalated from {change.old_code}"
    return {ADDED: f"{title}: new warning", REOPENED: f"{title}: back in force",
            MOVED_IN: f"{title}: now in your area"}.get(change.what, title)


def notice_subject(organisation: str, first_address: str, count: int) -> str:
    """The subject names a place at most (never a person): one alert's address, or how many."""
    if count == 1:
        where = first_address.strip() or "an address in your area"
        return f"URGENT: new warning at {where} ({organisation})"
    return f"URGENT: {count} new warnings ({organisation})"
