"""What the register holds about one person, read for a subject access export.

The rows come as stored (the rules of what the resident's copy leaves out are
`cautionflow.domain.subject_access`); the disclosure log is read through `adapters.outbox`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.register import stored_moment
from cautionflow.domain.lookup import asked_by
from cautionflow.domain.subject_access import LetterEntry, LookupEntry

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


@dataclass(frozen=True)
class PersonRecords:
    """One person's rows: their alerts with those alerts' history and deadlines, the letters to them
    or about their alerts, the quarantined source rows naming them, and the look-ups that returned
    their alerts."""

    alerts: list[dict[str, Any]]
    history: list[dict[str, Any]]
    deadlines: list[dict[str, Any]]
    letters: list[LetterEntry]
    quarantined: list[dict[str, Any]]
    lookups: list[LookupEntry] = field(default_factory=list)

    @property
    def alert_ids(self) -> list[str]:
        return [row["alert_id"] for row in self.alerts]


class SubjectAccessReads:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def records_of(self, person_ref: str) -> PersonRecords:
        """Everything stored under `person_ref`, read on one connection (one consistent view)."""
        from sqlalchemy import or_, select

        a, h, dl = schema.alerts, schema.alert_history, schema.alert_deadlines
        lt, q = schema.letters, schema.quarantine
        lk, lr = schema.lookups, schema.lookup_results
        with self.engine.connect() as conn:
            alerts = [dict(r._mapping) for r in conn.execute(select(a).where(a.c.person_ref == person_ref))]
            ids = [row["alert_id"] for row in alerts]
            history = [
                dict(r._mapping)
                for r in conn.execute(select(h).where(h.c.alert_id.in_(ids)).order_by(h.c.id))
            ] if ids else []
            deadlines = [
                dict(r._mapping) for r in conn.execute(select(dl).where(dl.c.alert_id.in_(ids)))
            ] if ids else []
            # Only who read which of these alerts, and when: never the other alerts a look-up returned.
            reads = conn.execute(
                select(lr.c.alert_id, lk.c.at, lk.c.reader_kind, lk.c.reader, lk.c.query)
                .select_from(lr.join(lk, lk.c.id == lr.c.lookup_id))
                .where(lr.c.alert_id.in_(ids)).order_by(lk.c.at, lk.c.id)
            ).all() if ids else []
            letter_rows = conn.execute(
                select(lt).where(or_(lt.c.person_ref == person_ref, lt.c.alert_id.in_(ids))).order_by(lt.c.id)
            ).all()
            # The raw row is JSON text: narrow with LIKE, then match the parsed person_ref exactly.
            quarantine_rows = conn.execute(
                select(q.c.reason, q.c.first_seen_on, q.c.resolved_on, q.c.raw_row)
                .where(q.c.raw_row.contains(person_ref, autoescape=True))
                .order_by(q.c.id)
            ).all()
        letters = [
            LetterEntry(
                letter_id=r.id, alert_id=r.alert_id, kind=r.kind, outcome=r.outcome,
                decision_date=r.decision_date, queued_on=r.as_of, status=r.status, hold_reason=r.hold_reason,
                channels=r.channels, person_name=r.person_name or None,
                address_lines=tuple(line for line in (r.address_lines or "").split("\n") if line),
                email=r.email, dispatched_at=r.dispatched_at,
            )
            for r in letter_rows
        ]
        quarantined = []
        for reason, first_seen_on, resolved_on, raw_row in quarantine_rows:
            try:
                raw = json.loads(raw_row)
            except ValueError:
                continue
            if isinstance(raw, dict) and str(raw.get("person_ref") or "").strip() == person_ref:
                quarantined.append(
                    {"reason": reason, "first_seen_on": first_seen_on, "resolved_on": resolved_on, "raw": raw}
                )
        lookups = [
            LookupEntry(alert_id=r.alert_id, at=stored_moment(r.at), reader_kind=r.reader_kind, reader=r.reader,
                        asked_by=asked_by(_query(r.query)))
            for r in reads
        ]
        return PersonRecords(alerts=alerts, history=history, deadlines=deadlines, letters=letters,
                             quarantined=quarantined, lookups=lookups)


def _query(text: str | None) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
