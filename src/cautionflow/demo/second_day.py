"""The demo's scripted second day: what changes in the housing system overnight.

`make demo` runs the daily pipeline on the synthetic housing database (day 1), applies this script
(day 2), and runs the pipeline again, so a newcomer sees what staff see from one day to the next:
alerts added, one escalated to a more serious code, some ended, the reason recorded for a resident
whose decision letter waited for it, and what each of those sends.

`plan_second_day` is pure: it takes the housing system's alert rows, its residents and the date,
and returns the changes, the same for the same input and seed. `apply_second_day` reads the
database, plans and writes the changes in one transaction, and refuses to apply them twice.

    cautionflow demo-data --second-day --out var/demo/housing.db --as-of 2026-11-24
"""

from __future__ import annotations

import random
import re
import sqlite3
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

from cautionflow.demo.housing import (
    _CONTACT_INSTRUCTIONS,
    _FIRST_NAMES,
    _LAST_NAMES,
    _NOTES,
    _OFFICER_ROLES,
    _REASON_LOCATION,
    _RESIDENT_REASONS,
    contact_instruction,
)
from cautionflow.domain.codes import ALERT_CODES

# Visit in pairs becomes weapons: still two people at the door, now with the lone-working
# procedure too, the kind of escalation a new police report brings.
ESCALATE_FROM = "VIP"
ESCALATE_TO = "WPN"
ESCALATION_NOTE = "Escalated: police reported a knife at the property after a neighbour dispute."
# Codes for the new alerts, in turn: common ones, each with a decision letter under every profile.
ADDED_CODES = ("DOG", "NLF", "CM", "HAZ", "SPOC")
ADDED = 4
ENDED = 3
# Teign Appendix E's reason for a removal, as the officer records it for the resident.
REMOVAL_REASON = (
    "At the review we found no further incidents since the alert was added, so it is no longer needed."
)
# How far back an alert's decision letter is still owed (the profiles' letters.lookback_days), and
# the codes every shipped profile writes a decision letter about: a reason recorded for one of these,
# from staff (never agency information, Teign 4), releases a letter whatever the demo's policy.
LOOKBACK_DAYS = 60
LETTER_CODES = frozenset({"CM", "DOG", "NFV", "NLF", "NLM", "NMV", "SPOC", "VIP", "WPN"})
MARKER_TABLE = "demo_second_day"  # one row once the script ran: it never runs twice on one database

_REF = re.compile(r"^CA(\d{7})$")


@dataclass(frozen=True, slots=True)
class Escalation:
    alert_ref: str
    old_code: str
    new_code: str


@dataclass(frozen=True, slots=True)
class Ending:
    alert_ref: str
    code: str
    at_review: bool  # removed at a review (the resident is owed a letter), or ended by hand


@dataclass(frozen=True, slots=True)
class SecondDay:
    """The second day's changes to `cx_alert`: rows to insert, and updates by alert_ref."""

    day: date
    added: tuple[dict[str, Any], ...]  # complete cx_alert rows (the housing module's columns)
    escalated: Escalation
    ended: tuple[Ending, ...]
    # Alerts whose reason for the resident an officer recorded today: a decision letter held for want
    # of it on day 1 is released on day 2. Empty when no held letter was waiting.
    reasoned: tuple[tuple[str, str], ...] = ()  # (alert_ref, resident_reason)

    def as_dict(self) -> dict[str, Any]:
        """Alert ids and codes only (no names): the CLI's JSON line and the demo's summary."""
        return {
            "day": self.day.isoformat(),
            "added": [{"alert_id": r["alert_ref"], "code": r["alert_type"],
                       "subject": {"P": "person", "A": "address"}[r["subject_kind"]]} for r in self.added],
            "escalated": [{"alert_id": self.escalated.alert_ref, "from": self.escalated.old_code,
                           "to": self.escalated.new_code}],
            "ended": [{"alert_id": e.alert_ref, "code": e.code, "how": "removed at review" if e.at_review else "ended"}
                      for e in self.ended],
            "reason_recorded": [{"alert_id": ref} for ref, _ in self.reasoned],
        }


def plan_second_day(
    alerts: Sequence[Mapping[str, Any]], residents: Sequence[Mapping[str, Any]], day: date, *,
    seed: int = 7, added: int = ADDED, ended: int = ENDED,
) -> SecondDay:
    """The changes for `day`, chosen with a Generator seeded by (seed, day) from:

    - `alerts`: cx_alert rows (alert_ref, alert_type, subject_kind, person_ref, asset_ref,
      effective_from, ends_on, last_reviewed_on, status, notify_resident, and where known
      notified_on, resident_reason and source);
    - `residents`: person_ref, tenancy_ref, asset_ref of each resident's home.

    Only clean, active person alerts already in force are escalated or ended (never one of the
    deliberately bad rows, whose fault is the point), and new alerts go to residents who have
    none, so every change reads plainly in the register's history.
    """
    if added < 1 or ended < 1:
        raise ValueError(f"the second day adds and ends at least one alert each, not {added} and {ended}")
    rng = random.Random(f"cautionflow-second-day:{seed}:{day.isoformat()}")
    refs = Counter(a.get("alert_ref") for a in alerts)
    clean = sorted(
        (a for a in alerts if _clean_and_active(a, refs, day) and a.get("subject_kind") == "P"),
        key=lambda a: a["alert_ref"],
    )
    vip = [a for a in clean if a["alert_type"] == ESCALATE_FROM]
    if not vip:
        raise ValueError(f"no clean, active {ESCALATE_FROM} alert to escalate")
    chosen = rng.choice(vip)
    escalation = Escalation(chosen["alert_ref"], ESCALATE_FROM, ESCALATE_TO)

    others = [a for a in clean if a["alert_ref"] != chosen["alert_ref"]]
    if len(others) < ended:
        raise ValueError(f"only {len(others)} clean, active alerts to end, not {ended}")
    # The first one ended is removed at a review, and told: a review letter on day 2.
    told = [a for a in others if str(a.get("notify_resident")) == "1"]
    first = rng.choice(told or others)
    rest = rng.sample([a for a in others if a is not first], ended - 1)
    endings = tuple(Ending(a["alert_ref"], a["alert_type"], at_review=a is first) for a in [first, *rest])

    with_alert = {a.get("person_ref") for a in alerts if a.get("status") == "active"}
    free = sorted((r for r in residents if r["person_ref"] not in with_alert), key=lambda r: r["person_ref"])
    if len(free) < added:
        raise ValueError(f"only {len(free)} residents without an alert, not {added}")
    numbers = [int(m.group(1)) for a in alerts if (m := _REF.match(str(a.get("alert_ref") or "")))]
    next_number = max(numbers, default=100_000) + 1
    new_rows = tuple(
        _new_alert(f"CA{next_number + i:07d}", ADDED_CODES[i % len(ADDED_CODES)], resident, day, i,
                   address_only=(i == added - 1 and added > 1), note_pick=rng.randrange(3))
        for i, resident in enumerate(rng.sample(free, added))
    )
    # An officer records the reason for one resident whose decision letter waits for it (told, not
    # yet notified, added within the letters' look-back): the letter is released on day 2. Drawn
    # last, so the changes above are those of the same seed before reasons existed.
    touched = {chosen["alert_ref"], *(e.alert_ref for e in endings)}
    waiting = [a for a in others if a["alert_ref"] not in touched and _waits_for_reason(a, day)]
    reasoned: tuple[tuple[str, str], ...] = ()
    if waiting:
        alert = rng.choice(waiting)
        reasoned = ((alert["alert_ref"], _RESIDENT_REASONS[alert["alert_type"]][rng.randrange(3)]),)
    # A new alert whose code defers to an arrangement (SPOC, CM, DNV) is recorded with its contact
    # instruction: who to call and how (issue 15). Drawn last, for the same reason as the reasons.
    new_rows = tuple(
        {**row, "contact_instruction": _new_instruction(row["alert_type"], rng)}
        if row["alert_type"] in _CONTACT_INSTRUCTIONS else row
        for row in new_rows
    )
    return SecondDay(day=day, added=new_rows, escalated=escalation, ended=endings, reasoned=reasoned)


def _new_instruction(code: str, rng: random.Random) -> str:
    officer = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}, {rng.choice(_OFFICER_ROLES)}"
    return contact_instruction(rng.choice(_CONTACT_INSTRUCTIONS[code]), officer, f"01632 960{rng.randrange(100, 900)}")


def _waits_for_reason(alert: Mapping[str, Any], day: date) -> bool:
    start = _day(alert.get("effective_from"))
    return (
        str(alert.get("notify_resident")) == "1" and not alert.get("resident_reason")
        and not alert.get("notified_on") and alert.get("alert_type") in LETTER_CODES
        and alert.get("source", "staff") == "staff"
        and start is not None and (day - start).days <= LOOKBACK_DAYS
    )


def _clean_and_active(alert: Mapping[str, Any], refs: Counter, day: date) -> bool:
    ref = str(alert.get("alert_ref") or "")
    if not _REF.match(ref) or refs[ref] != 1 or alert.get("status") != "active":
        return False
    if alert.get("alert_type") not in ALERT_CODES or not alert.get("asset_ref"):
        return False
    start, reviewed, ends = (_day(alert.get(c)) for c in ("effective_from", "last_reviewed_on", "ends_on"))
    if start is None or start >= day or (alert.get("last_reviewed_on") and reviewed is None):
        return False
    return not alert.get("ends_on") or (ends is not None and ends > day)


def _day(value: Any) -> date | None:
    try:
        return date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _new_alert(
    ref: str, code: str, resident: Mapping[str, Any], day: date, i: int, *, address_only: bool, note_pick: int
) -> dict[str, Any]:
    """A cx_alert row added by staff today: in force from today, the resident to be told."""
    return {
        "alert_ref": ref, "alert_type": code, "subject_kind": "A" if address_only else "P",
        "person_ref": None if address_only else resident["person_ref"],
        "tenancy_ref": None if address_only else resident["tenancy_ref"],
        "asset_ref": resident["asset_ref"], "location_text": None, "location_postcode": None,
        "location_area": None, "effective_from": day.isoformat(), "ends_on": None, "last_reviewed_on": None,
        "review_outcome": None, "status": "active", "notify_resident": 0 if address_only else 1,
        "no_notify_reason": _REASON_LOCATION if address_only else None, "notified_on": None,
        "appeal_received_on": None, "appeal_decided_on": None, "appeal_outcome": None, "source": "staff",
        "note": _NOTES[code][note_pick],
        "resident_reason": None if address_only else _RESIDENT_REASONS[code][note_pick],
        "contact_instruction": None,
        "updated_at": f"{day.isoformat()}T{9 + i:02d}:15:00+00:00",
    }


# --- the writer ------------------------------------------------------------------------------------

_READ_ALERTS = """
SELECT alert_ref, alert_type, subject_kind, person_ref, asset_ref, effective_from, ends_on,
       last_reviewed_on, status, notify_resident, notified_on, resident_reason, source
FROM cx_alert
"""
_READ_RESIDENTS = """
SELECT c.person_ref, c.tenancy_ref, t.asset_ref
FROM cx_contact AS c JOIN cx_tenancy AS t ON t.tenancy_ref = c.tenancy_ref
"""


def apply_second_day(path: Path, day: date, *, seed: int = 7) -> SecondDay:
    """Apply the second day's changes to the housing database at `path`, in one transaction."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"no housing database at {path} (build it with `cautionflow demo-data` first)")
    con = sqlite3.connect(path, isolation_level=None)
    con.row_factory = sqlite3.Row
    try:
        con.execute("BEGIN IMMEDIATE")
        marker = con.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name = ?", (MARKER_TABLE,)
        ).fetchone()
        if marker is not None:
            applied = con.execute(f"SELECT day FROM {MARKER_TABLE}").fetchone()
            raise ValueError(f"the second day ({applied[0] if applied else '?'}) is already applied to {path}")
        alerts = [dict(r) for r in con.execute(_READ_ALERTS)]
        residents = [dict(r) for r in con.execute(_READ_RESIDENTS)]
        plan = plan_second_day(alerts, residents, day, seed=seed)
        stamp = f"{day.isoformat()}T16:30:00+00:00"  # after the new alerts' morning entries
        columns = list(plan.added[0])
        con.executemany(
            f"INSERT INTO cx_alert ({', '.join(columns)}) VALUES ({', '.join('?' for _ in columns)})",
            [tuple(row[c] for c in columns) for row in plan.added],
        )
        con.execute(
            "UPDATE cx_alert SET alert_type = ?, note = ?, updated_at = ? WHERE alert_ref = ?",
            (plan.escalated.new_code, ESCALATION_NOTE, stamp, plan.escalated.alert_ref),
        )
        for ending in plan.ended:
            if ending.at_review:
                con.execute(
                    "UPDATE cx_alert SET status = 'ended', ends_on = ?, last_reviewed_on = ?, "
                    "review_outcome = 'removed', resident_reason = ?, updated_at = ? WHERE alert_ref = ?",
                    (day.isoformat(), day.isoformat(), REMOVAL_REASON, stamp, ending.alert_ref),
                )
            else:
                con.execute(
                    "UPDATE cx_alert SET status = 'ended', ends_on = ?, updated_at = ? WHERE alert_ref = ?",
                    (day.isoformat(), stamp, ending.alert_ref),
                )
        for alert_ref, reason in plan.reasoned:
            con.execute(
                "UPDATE cx_alert SET resident_reason = ?, updated_at = ? WHERE alert_ref = ?",
                (reason, stamp, alert_ref),
            )
        con.execute(f"CREATE TABLE {MARKER_TABLE} (day TEXT NOT NULL, seed INTEGER NOT NULL)")
        con.execute(f"INSERT INTO {MARKER_TABLE} VALUES (?, ?)", (day.isoformat(), seed))
        con.execute("COMMIT")
        return plan
    except BaseException:
        if con.in_transaction:
            con.execute("ROLLBACK")
        raise
    finally:
        con.close()
