"""What the digests and the review reminders read of the register: the alerts' allow-listed fields
(`cautionflow.domain.digests.ALERT_FIELDS`: never the note or the data-quality text), with the
review due date the deadlines step stored."""

from __future__ import annotations

from collections.abc import Iterable
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
        """Allow-listed fields of the given alerts, whatever their state (for flags since lifted)."""
        ids = sorted(alert_ids)
        found: dict[str, dict[str, Any]] = {}
        with self.engine.connect() as conn:
            for start in range(0, len(ids), _CHUNK):
                chunk = ids[start : start + _CHUNK]
                columns, rows = fetch_all(
                    conn,
                    f"SELECT {', '.join(ALERT_FIELDS)} FROM alerts WHERE alert_id IN ({', '.join('?' * len(chunk))})",
                    chunk,
                )
                for row in rows:
                    record = dict(zip(columns, row, strict=True))
                    found[record["alert_id"]] = record
        return found
