"""Subject access: everything the register holds about one person, as pure data.

UK GDPR gives a person the right of access to what is held about them (Karbon 9.1, Teign 13). For
the caution alert register that is every alert recorded against their `person_ref`, current and
past, with the facts recorded, its dates, its change history, the letters queued or sent about it,
every disclosure (which contractor or call handler was sent it, when), and every look-up that
returned it ("Looked up": when, and by whom, a member of staff or a contractor's or call centre's
system by the recipient it acts as), plus rows read from the housing system that could not be
entered in the register (the quarantine). A look-up is shown by what it asked by ("postcode"),
never what was typed or what else it returned: those can be other residents' data.

Hexagon 5.5: where a decision was made not to notify the resident (`notify_resident = 0`), the
alert may be withheld from the copy for the resident, and the response must refer to the
exemption relied on (the alert's recorded `no_notify_reason`). So the resident's copy leaves out
every withheld alert (its facts, history, deadlines, letters and disclosures) and names only the
exemption references; the officer's copy (`include_withheld`) shows everything, each withheld
alert marked with its exemption. A withheld alert without a recorded reference is reported to
the officer (it must be recorded before the copy goes out).

Nothing here touches a database or a file: `cautionflow.services.subject_access` gathers the rows.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from cautionflow.domain.codes import ALERT_CODES, required_action

# The alert's recorded facts, in the order a reader meets them, with plain-English labels.
FACT_LABELS: tuple[tuple[str, str], ...] = (
    ("alert_code", "Alert code"),
    ("subject_type", "Recorded against (person, household or address)"),
    ("person_ref", "Person reference"),
    ("person_name", "Name"),
    ("tenancy_ref", "Tenancy reference"),
    ("asset_ref", "Property reference"),
    ("address", "Address"),
    ("postcode", "Postcode"),
    ("area", "Area"),
    ("effective_from", "In force from"),
    ("ends_on", "Ends on"),
    ("last_reviewed_on", "Last reviewed on"),
    ("review_outcome", "Outcome of the last review"),
    ("status", "Status in the housing system"),
    ("notify_resident", "Decision to tell the resident (1 yes, 0 no)"),
    ("no_notify_reason", "Recorded reason for not telling the resident"),
    ("notified_on", "Resident told on"),
    ("appeal_received_on", "Appeal received on"),
    ("appeal_decided_on", "Appeal decided on"),
    ("appeal_outcome", "Appeal outcome"),
    ("source", "Where the information came from"),
    ("note", "The facts recorded"),
    ("resident_reason", "The reason recorded to give you"),
    ("preferred_channel", "Preferred way of contact"),
    ("email", "Email address"),
    ("language", "Language"),
    ("large_print", "Large print (1 yes, 0 no)"),
)
REGISTER_LABELS: tuple[tuple[str, str], ...] = (
    ("register_state", "State in the register"),
    ("ended_reason", "Why it ended"),
    ("dq_flags", "Data-quality problems found"),
    ("first_seen_on", "First recorded in the register on"),
    ("last_changed_on", "Last changed in the register on"),
    ("anonymised_on", "Personal details anonymised on"),
    ("told_on", "Told by our letter on"),  # the register's own record of telling
)
DEADLINE_LABELS: tuple[tuple[str, str], ...] = (
    ("review_due", "Review due"),
    ("review_window_opens", "Review can be done from"),
    ("expires_on", "Expires on"),
    ("appeal_deadline", "Appeal to be lodged by"),
    ("appeal_response_due", "Appeal to be answered by"),
    ("overdue", "Review overdue (1 yes, 0 no)"),
    ("error", "Why the dates could not be worked out"),
    ("evaluated_on", "Dates worked out on"),
)
CHANGE_LABELS = {"inserted": "first recorded", "updated": "changed", "ended": "ended", "reopened": "reopened"}
NO_REFERENCE = "no exemption reference recorded"


class UnknownPerson(LookupError):
    """The register holds nothing about this reference."""


@dataclass(frozen=True)
class HistoryEntry:
    as_of: dt.date | str
    change: str
    changed_fields: Mapping[str, Any]  # {field: [old, new]}; empty for inserted


@dataclass(frozen=True)
class LetterEntry:
    letter_id: int
    alert_id: str
    kind: str
    outcome: str
    decision_date: Any
    queued_on: Any
    status: str
    hold_reason: str | None
    channels: str
    person_name: str | None
    address_lines: tuple[str, ...]
    email: str | None
    dispatched_at: Any


@dataclass(frozen=True)
class DisclosureEntry:
    alert_id: str
    recipient_name: str
    recipient_role: str
    recipient_email: str
    kind: str
    listed_as: str  # current | lifted
    disclosed_on: Any
    disclosed_at: Any
    message_id: str


@dataclass(frozen=True)
class LookupEntry:
    """A read of the register that returned the alert (the look-up's log, `lookups`)."""

    alert_id: str
    at: Any  # when (aware, UTC)
    reader_kind: str  # user | token
    reader: str  # the member of staff's username, or the recipient a token acts as
    asked_by: tuple[str, ...]  # what the look-up asked by, in words (never the values)


@dataclass(frozen=True)
class AlertEntry:
    alert_id: str
    code: str | None
    code_title: str
    required_action: str
    withheld: bool
    exemption_reference: str | None
    facts: tuple[tuple[str, str, Any], ...]  # (field, label, value)
    register: tuple[tuple[str, str, Any], ...]
    deadlines: tuple[tuple[str, str, Any], ...]  # empty when none are stored (ended alerts)
    history: tuple[HistoryEntry, ...]
    letters: tuple[LetterEntry, ...]
    disclosures: tuple[DisclosureEntry, ...]
    lookups: tuple[LookupEntry, ...] = ()

    @property
    def current(self) -> bool:
        return dict((f, v) for f, _, v in self.register).get("register_state") == "active"


@dataclass(frozen=True)
class QuarantinedEntry:
    reason: str
    first_seen_on: Any
    resolved_on: Any
    withheld: bool
    exemption_reference: str | None
    facts: tuple[tuple[str, str, Any], ...]


@dataclass(frozen=True)
class SubjectAccessExport:
    person_ref: str
    organisation: str
    produced_on: dt.date
    includes_withheld: bool
    names: tuple[str, ...]
    alerts: tuple[AlertEntry, ...]
    quarantined: tuple[QuarantinedEntry, ...]
    other_letters: tuple[LetterEntry, ...]  # sent to this person about an alert now recorded against another
    withheld_count: int  # alerts and quarantined rows withheld from the resident's copy
    exemption_references: tuple[str, ...]  # the exemptions relied on (Hexagon 5.5)
    officer_warnings: tuple[str, ...] = field(default=())

    @property
    def copy(self) -> str:
        return "officer" if self.includes_withheld else "resident"

    @property
    def current_alerts(self) -> tuple[AlertEntry, ...]:
        return tuple(a for a in self.alerts if a.current)

    @property
    def past_alerts(self) -> tuple[AlertEntry, ...]:
        return tuple(a for a in self.alerts if not a.current)

    def counts(self) -> dict[str, int]:
        return {
            "alerts": len(self.alerts),
            "current_alerts": len(self.current_alerts),
            "past_alerts": len(self.past_alerts),
            "letters": sum(len(a.letters) for a in self.alerts) + len(self.other_letters),
            "disclosures": sum(len(a.disclosures) for a in self.alerts),
            "lookups": sum(len(a.lookups) for a in self.alerts),
            "history_entries": sum(len(a.history) for a in self.alerts),
            "quarantined": len(self.quarantined),
            "withheld": self.withheld_count,
        }

    def as_dict(self) -> dict[str, Any]:
        """The export as JSON-able data (dates as YYYY-MM-DD, timestamps ISO 8601)."""

        def pairs(rows: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
            return {name: _plain(value) for name, _, value in rows}

        def letter(x: LetterEntry) -> dict[str, Any]:
            return {k: _plain(v) for k, v in x.__dict__.items()}

        def disclosure(x: DisclosureEntry) -> dict[str, Any]:
            return {k: _plain(v) for k, v in x.__dict__.items() if k != "alert_id"}

        return {
            "person_ref": self.person_ref,
            "organisation": self.organisation,
            "produced_on": self.produced_on.isoformat(),
            "copy": self.copy,
            "names": list(self.names),
            "counts": self.counts(),
            "withheld": {
                "exemption_references": list(self.exemption_references),
                **({"count": self.withheld_count} if self.includes_withheld else {}),
            },
            "alerts": [
                {
                    "alert_id": a.alert_id,
                    "current": a.current,
                    "code": a.code,
                    "code_title": a.code_title,
                    "required_action": a.required_action,
                    **({"withheld": a.withheld, "exemption_reference": a.exemption_reference}
                       if self.includes_withheld else {}),
                    "facts": pairs(a.facts),
                    "register": pairs(a.register),
                    "deadlines": pairs(a.deadlines) or None,
                    "history": [
                        {"as_of": _plain(h.as_of), "change": h.change,
                         "changed_fields": {k: [_plain(v) for v in pair] for k, pair in h.changed_fields.items()}}
                        for h in a.history
                    ],
                    "letters": [letter(x) for x in a.letters],
                    "disclosures": [disclosure(x) for x in a.disclosures],
                    "looked_up": [
                        {"at": _plain(x.at), "reader_kind": x.reader_kind, "reader": x.reader,
                         "asked_by": list(x.asked_by)}
                        for x in a.lookups
                    ],
                }
                for a in self.alerts
            ],
            "quarantined": [
                {"reason": q.reason, "first_seen_on": _plain(q.first_seen_on), "resolved_on": _plain(q.resolved_on),
                 **({"withheld": q.withheld, "exemption_reference": q.exemption_reference}
                    if self.includes_withheld else {}),
                 "facts": pairs(q.facts)}
                for q in self.quarantined
            ],
            "other_letters": [letter(x) for x in self.other_letters],
            **({"officer_warnings": list(self.officer_warnings)} if self.includes_withheld else {}),
        }


def _plain(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def is_withheld(row: Mapping[str, Any]) -> bool:
    """A recorded decision not to notify the resident (Hexagon 5.4-5.5, Dover 6.33, Karbon 4.2)."""
    value = row.get("notify_resident")
    return value is not None and str(value).strip() in {"0", "0.0", "false", "False"}


def exemption_reference(row: Mapping[str, Any]) -> str | None:
    text = str(row.get("no_notify_reason") or "").strip()
    return text or None


def _changes(raw: Any) -> Mapping[str, Any]:
    if not raw:
        return {}
    if isinstance(raw, Mapping):
        return raw
    try:
        parsed = json.loads(raw)
    except (TypeError, ValueError):
        return {"(unreadable)": [None, str(raw)]}
    return parsed if isinstance(parsed, Mapping) else {}


def _labelled(row: Mapping[str, Any], labels: Sequence[tuple[str, str]]) -> tuple[tuple[str, str, Any], ...]:
    return tuple((name, label, row.get(name)) for name, label in labels)


def build_export(
    person_ref: str,
    *,
    alerts: Sequence[Mapping[str, Any]],
    history: Iterable[Mapping[str, Any]] = (),
    deadlines: Iterable[Mapping[str, Any]] = (),
    letters: Iterable[LetterEntry] = (),
    disclosures: Iterable[DisclosureEntry] = (),
    lookups: Iterable[LookupEntry] = (),
    quarantined: Iterable[Mapping[str, Any]] = (),
    include_withheld: bool = False,
    organisation: str = "",
    produced_on: dt.date,
) -> SubjectAccessExport:
    """The export for one person from the register's rows about them.

    `alerts` are the register's alert rows recorded against `person_ref`; `history`, `deadlines`,
    `letters` and `disclosures` may hold rows of those alerts (matched by `alert_id`; letters also
    by `person_ref`); `quarantined` rows are `{"reason", "first_seen_on", "resolved_on", "raw": {...}}`
    whose raw row names this person. Raises UnknownPerson when there is nothing at all."""
    letters = list(letters)
    quarantined = list(quarantined)
    if not alerts and not quarantined and not letters:
        raise UnknownPerson(person_ref)

    by_alert: dict[str, dict[str, list[Any]]] = {
        str(a["alert_id"]): {"history": [], "letters": [], "disclosures": [], "deadlines": [], "lookups": []}
        for a in alerts
    }
    for h in history:
        if h["alert_id"] in by_alert:
            entry = HistoryEntry(h["as_of"], CHANGE_LABELS.get(h["change"], h["change"]), _changes(h.get("changed_fields")))
            by_alert[h["alert_id"]]["history"].append(entry)
    for d in deadlines:
        if d["alert_id"] in by_alert:
            by_alert[d["alert_id"]]["deadlines"].append(d)
    other_letters = []
    for x in letters:
        if x.alert_id in by_alert:
            by_alert[x.alert_id]["letters"].append(x)
        else:
            other_letters.append(x)
    for x in disclosures:
        if x.alert_id in by_alert:
            by_alert[x.alert_id]["disclosures"].append(x)
    for x in lookups:
        if x.alert_id in by_alert:
            by_alert[x.alert_id]["lookups"].append(x)

    entries: list[AlertEntry] = []
    warnings: list[str] = []
    references: list[str] = []
    withheld_count = 0
    names: list[str] = []
    for a in sorted(alerts, key=lambda r: (str(r.get("effective_from") or ""), str(r["alert_id"]))):
        alert_id = str(a["alert_id"])
        withheld = is_withheld(a)
        reference = exemption_reference(a) if withheld else None
        if withheld:
            withheld_count += 1
            references.append(reference or NO_REFERENCE)
            if reference is None:
                warnings.append(f"alert {alert_id} is withheld from the resident's copy but no exemption reference "
                                "is recorded (no_notify_reason); record one before the copy is sent (Hexagon 5.5)")
            if not include_withheld:
                continue
        code = a.get("alert_code")
        known = ALERT_CODES.get(str(code)) if code else None
        related = by_alert[alert_id]
        stored = related["deadlines"][0] if related["deadlines"] else None
        entries.append(
            AlertEntry(
                alert_id=alert_id,
                code=code,
                code_title=known.title if known else "Caution alert",
                required_action=required_action(code),
                withheld=withheld,
                exemption_reference=reference,
                facts=_labelled(a, FACT_LABELS),
                register=_labelled(a, REGISTER_LABELS),
                deadlines=_labelled(stored, DEADLINE_LABELS) if stored else (),
                history=tuple(sorted(related["history"], key=lambda h: str(h.as_of))),
                letters=tuple(sorted(related["letters"], key=lambda x: x.letter_id)),
                disclosures=tuple(sorted(related["disclosures"], key=lambda x: (str(x.disclosed_at), x.recipient_name))),
                lookups=tuple(sorted(related["lookups"], key=lambda x: (str(x.at), x.reader))),
            )
        )
        if a.get("person_name"):
            names.append(str(a["person_name"]))

    quarantine_entries = []
    for q in quarantined:
        raw = q.get("raw") or {}
        withheld = is_withheld(raw)
        reference = exemption_reference(raw) if withheld else None
        if withheld:
            withheld_count += 1
            references.append(reference or NO_REFERENCE)
            if reference is None:
                warnings.append("a quarantined row is withheld from the resident's copy but no exemption reference "
                                "is recorded (no_notify_reason) (Hexagon 5.5)")
            if not include_withheld:
                continue
        quarantine_entries.append(
            QuarantinedEntry(str(q.get("reason") or ""), q.get("first_seen_on"), q.get("resolved_on"), withheld,
                             reference, _labelled(raw, (("alert_id", "Alert reference"), *FACT_LABELS)))
        )
        if raw.get("person_name"):
            names.append(str(raw["person_name"]))
    names.extend(x.person_name for x in other_letters if x.person_name)

    return SubjectAccessExport(
        person_ref=person_ref,
        organisation=organisation,
        produced_on=produced_on,
        includes_withheld=include_withheld,
        names=tuple(dict.fromkeys(names)),
        alerts=tuple(entries),
        quarantined=tuple(quarantine_entries),
        other_letters=tuple(sorted(other_letters, key=lambda x: x.letter_id)),
        withheld_count=withheld_count,
        exemption_references=tuple(dict.fromkeys(references)),
        officer_warnings=tuple(warnings),
    )
