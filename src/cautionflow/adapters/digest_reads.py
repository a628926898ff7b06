"""What the digests, the review reminders and the urgent notices read of the register: the alerts'
allow-listed fields (`cautionflow.domain.digests.ALERT_FIELDS`: never the note or the data-quality
text), with the review due date the deadlines step stored; and the urgent notices each recipient
was sent."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.database import fetch_all, stored_date
from cautionflow.domain.digests import ALERT_FIELDS

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

_CHUNK = 500  # ids per IN (...): well under every driver's limit on bound parameters


class DigestReads:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def active_alerts(self) -> list[dict[str, Any]]:
        """Active alerts, allow-listed fields only, with `review_due` (a date, or None when the
        deadlines were never computed for it); in the database's order."""
        fields = ", ".join(f"a.{f}" for f in ALERT_FIELDS)
        with self.engine.connect() as conn:
            columns, rows = fetch_all(
                conn,
                f"SELECT {fields}, dl.review_due FROM alerts a "
                "LEFT JOIN alert_deadlines dl ON dl.alert_id = a.alert_id WHERE a.register_state = 'active'",
            )
        alerts = [dict(zip(columns, row, strict=True)) for row in rows]
        for alert in alerts:
            alert["review_due"] = stored_date(alert["review_due"])
        return alerts

    def alerts_by_id(self, alert_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
        """The given alerts as the register holds them now, whatever their state: allow-listed
        fields, `register_state` and `review_due` (None when the deadlines were never computed for
        it). The one reader by id: the digests' flags since lifted and the urgent notices' alerts."""
        ids = sorted(set(alert_ids))
        fields = ", ".join(f"a.{f}" for f in ALERT_FIELDS)
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                columns, rows = fetch_all(
                    conn,
                    f"SELECT {fields}, a.register_state, dl.review_due FROM alerts a "
                    "LEFT JOIN alert_deadlines dl ON dl.alert_id = a.alert_id "
                    f"WHERE a.alert_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
                for row in rows:
                    record = dict(zip(columns, row, strict=True))
                    record["review_due"] = stored_date(record["review_due"])
                    found[record["alert_id"]] = record
        return found

    def urgent_notices(
        self, since: Mapping[tuple[str, str], dt.datetime]
    ) -> dict[tuple[str, str], dict[str, dt.datetime]]:
        """For each recipient (name, email) in `since`: the alerts an urgent notice told it of after
        its moment (the disclosure log, kind "urgent", listed as current), each with the latest time
        the server accepted one. One query for every recipient, from the earliest moment."""
        if not since:
            return {}
        earliest = min(since.values()).astimezone(dt.UTC)
        found: dict[tuple[str, str], dict[str, dt.datetime]] = {}
        with self.engine.connect() as conn:
            # SQLite keeps the moment as UTC text (as the outbox writes it), which compares in order.
            bound: Any = earliest.strftime("%Y-%m-%d %H:%M:%S.%f") if conn.dialect.name == "sqlite" else earliest
            _, rows = fetch_all(
                conn,
                "SELECT recipient_name, recipient_email, alert_id, disclosed_at FROM disclosures "
                "WHERE kind = 'urgent' AND listed_as = 'current' AND disclosed_at >= ?",
                (bound,),
            )
        for name, email, alert_id, at in rows:
            moment = _aware(at)
            start = since.get((name, email))
            if start is None or moment <= start:
                continue
            told = found.setdefault((name, email), {})
            if alert_id not in told or told[alert_id] < moment:
                told[alert_id] = moment
        return found


def _aware(moment: Any) -> dt.datetime:
    """A stored timestamp as an aware datetime (SQLite gives back UTC text)."""
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)
