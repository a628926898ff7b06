"""The officers' weekly review reminder: which reviews are overdue or coming due.

Officers are the landlord's own staff: the reminder names the person and the place so the review
can be done, but, like every email, never carries the `note` or the data-quality text.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.digests import WEEKDAYS

KIND = "reminder"
HORIZON_DAYS = 30  # "coming due": within the next 30 days
DEFAULT_WEEKDAY = "monday"


class Officer(Protocol):
    """What the reminder's schedule reads of a configured recipient (`cautionflow.config.Recipient`)."""

    @property
    def role(self) -> str: ...

    @property
    def weekday(self) -> Sequence[str] | None: ...


@dataclass(frozen=True, slots=True)
class ReminderRow:
    alert_id: str
    alert_code: str
    title: str
    person_name: str
    address: str
    area: str
    review_due: dt.date
    days_overdue: int  # negative: due in that many days

    @property
    def overdue(self) -> bool:
        return self.days_overdue > 0


def reminder_is_due(recipient: Officer, as_of: dt.date) -> bool:
    """Officers get it on their `weekday`, or on each day of a list of them (Monday unless the
    config names another). Several days are several reminders a week; the outbox key holds the
    as-of date, so each day's goes once however often that day is rerun."""
    return recipient.role == "officer" and on_their_weekday(recipient, as_of)


def on_their_weekday(recipient: Officer, as_of: dt.date) -> bool:
    """Is `as_of` one of the recipient's `weekday`s (Monday when the config names none)? The officers'
    lists (the review reminder, the appeals list) go on those days."""
    return WEEKDAYS[as_of.weekday()] in (recipient.weekday or (DEFAULT_WEEKDAY,))


def reminder_rows(alerts: Iterable[Mapping[str, Any]], as_of: dt.date) -> tuple[ReminderRow, ...]:
    """Active alerts whose review is overdue or due within HORIZON_DAYS, most overdue first."""
    horizon = as_of + dt.timedelta(days=HORIZON_DAYS)
    rows = []
    for alert in alerts:
        due = alert.get("review_due")
        if due is None or due > horizon:
            continue
        code = alert.get("alert_code") or ""
        known = ALERT_CODES.get(code)
        address = ", ".join(p for p in (alert.get("address"), alert.get("postcode")) if p)
        rows.append(
            ReminderRow(
                alert_id=alert["alert_id"],
                alert_code=code,
                title=known.title if known else "Unrecognised code",
                person_name=alert.get("person_name") or "",
                address=address,
                area=alert.get("area") or "",
                review_due=due,
                days_overdue=(as_of - due).days,
            )
        )
    return tuple(sorted(rows, key=lambda r: (r.review_due, r.alert_id)))


def reminder_subject(organisation: str, as_of: dt.date, rows: Sequence[ReminderRow]) -> str:
    overdue = sum(1 for r in rows if r.overdue)
    return (
        f"{organisation} caution alert reviews, week of {as_of.day} {as_of:%B %Y}: "
        f"{overdue} overdue, {len(rows) - overdue} due in the next {HORIZON_DAYS} days"
    )


def reminder_hash(rows: Sequence[ReminderRow]) -> str:
    payload = [[r.alert_id, r.alert_code, r.person_name, r.address, r.review_due.isoformat()] for r in rows]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode("utf-8")).hexdigest()
