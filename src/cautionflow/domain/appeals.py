"""The appeals register: which residents' appeals still wait for the landlord's answer, and by when.

An appeal is **open** on a day from its `appeal_received_on` until its `appeal_decided_on`. The
answer is due on the `appeal_response_due` the deadlines step stored, counted by the profile's
`appeal.answer_within` (Teign 9: 28 days; Wandle 3.10: 28 days; Dover 6.35: 10 working days).

Nobody chased those answers: the list goes to the senior officers who give them (role `appeals`:
Teign's Head of Service, 9; Wandle's director, 3.10; Dover's manager, 6.35), weekly on their
`weekday` and every day once one is overdue. Like the officers' review reminder it names the
person, the place and the alert, so the appeal can be found and answered; never the `note` or the
data-quality text (minimum disclosure: policies README, "Principles").

Pure: rows in (plain dates, as the register's reads return them), decisions out.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.reminders import Officer, on_their_weekday

KIND = "appeals"  # the outbox's kind for the list
ROLE = "appeals"  # the recipients who answer appeals


@dataclass(frozen=True, slots=True)
class OpenAppeal:
    alert_id: str
    alert_code: str
    title: str
    person_name: str
    address: str
    area: str
    received_on: dt.date
    due_on: dt.date | None  # None: the policy sets no answer window, or the alert's dates have an error
    days_left: int | None  # until due_on; negative once overdue

    @property
    def overdue(self) -> bool:
        return self.days_left is not None and self.days_left < 0

    @property
    def days_overdue(self) -> int:
        return -self.days_left if self.overdue and self.days_left is not None else 0


def appeal_is_open(received_on: dt.date | None, decided_on: dt.date | None, as_of: dt.date) -> bool:
    """Open on `as_of`: received by then, and not decided by then.

    A decision dated before the appeal was received cannot be its answer (the housing system
    recorded a second appeal over a decided first one, or a mistyped date): the appeal counts as
    open, because chasing an answered appeal costs a look, and missing an unanswered one costs
    the resident their answer. A run for a past day sees the appeals as they stood that day."""
    if received_on is None or received_on > as_of:
        return False
    return decided_on is None or decided_on > as_of or decided_on < received_on


def open_appeals(alerts: Iterable[Mapping[str, Any]], as_of: dt.date) -> tuple[OpenAppeal, ...]:
    """The alerts' open appeals on `as_of`, overdue first (most overdue first), then by due date
    (soonest first), then those without a due date; ties by received date and alert id.

    Each alert is a mapping with `alert_id`, `alert_code`, `person_name`, `address`, `postcode`,
    `area`, `appeal_received_on`, `appeal_decided_on` and the stored `appeal_response_due` (dates
    as `datetime.date` or None)."""
    found = []
    for alert in alerts:
        received, decided = alert.get("appeal_received_on"), alert.get("appeal_decided_on")
        if not appeal_is_open(received, decided, as_of):
            continue
        code = alert.get("alert_code") or ""
        known = ALERT_CODES.get(code)
        due = alert.get("appeal_response_due")
        found.append(
            OpenAppeal(
                alert_id=alert["alert_id"],
                alert_code=code,
                title=known.title if known else "Unrecognised code",
                person_name=alert.get("person_name") or "",
                address=", ".join(p for p in (alert.get("address"), alert.get("postcode")) if p),
                area=alert.get("area") or "",
                received_on=received,
                due_on=due,
                days_left=None if due is None else (due - as_of).days,
            )
        )
    return tuple(sorted(found, key=_order))


def _order(appeal: OpenAppeal) -> tuple[Any, ...]:
    no_date = appeal.due_on is None
    return (not appeal.overdue, no_date, appeal.due_on or dt.date.max, appeal.received_on, appeal.alert_id)


def appeals_list_is_due(recipient: Officer, as_of: dt.date, appeals: Sequence[OpenAppeal]) -> bool:
    """An `appeals` recipient gets the list on each of its `weekday`s (Monday unless the config names
    another), and every day while any open appeal is overdue, so that an answer past its policy's
    deadline is chased daily until it is given. The outbox key holds the as-of date: once a day."""
    if recipient.role != ROLE:
        return False
    return on_their_weekday(recipient, as_of) or any(a.overdue for a in appeals)


def appeals_subject(organisation: str, as_of: dt.date, appeals: Sequence[OpenAppeal]) -> str:
    overdue = sum(1 for a in appeals if a.overdue)
    return (
        f"{organisation} appeals awaiting an answer, {as_of.day} {as_of:%B %Y}: "
        f"{len(appeals)} open, {overdue} overdue"
    )


def appeals_hash(appeals: Sequence[OpenAppeal]) -> str:
    """What the list says, without the days left (which change daily; the key holds the day)."""
    payload = [
        [a.alert_id, a.alert_code, a.person_name, a.address, a.received_on.isoformat(),
         a.due_on.isoformat() if a.due_on else None]
        for a in appeals
    ]
    return hashlib.sha256(json.dumps(payload, separators=(",", ":")).encode("utf-8")).hexdigest()
