"""What the appeals register reads: the active alerts that have an appeal on record, with the answer's
due date the deadlines step stored (`alert_deadlines.appeal_response_due`).

Only the fields the list shows and its rule needs are selected: never the `note` or the
data-quality text, so no caller can put them in an email by mistake. Which appeals are open on a
day is the domain's rule (`cautionflow.domain.appeals.appeal_is_open`), so a run for a past day
is answered as that day stood.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cautionflow.adapters.database import fetch_all, stored_date

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

FIELDS = (
    "alert_id", "alert_code", "person_name", "address", "postcode", "area", "appeal_received_on", "appeal_decided_on",
)
_DATES = ("appeal_received_on", "appeal_decided_on", "appeal_response_due")


def appeal_rows(conn: Connection) -> list[dict[str, Any]]:
    """Active alerts with an `appeal_received_on`: FIELDS and `appeal_response_due`, dates as
    `datetime.date` (or None), by alert id. Ended alerts are left out: no deadline is stored for
    them, and an ended alert no longer restricts the resident."""
    fields = ", ".join(f"a.{f}" for f in FIELDS)
    columns, rows = fetch_all(
        conn,
        f"SELECT {fields}, dl.appeal_response_due FROM alerts a "
        "LEFT JOIN alert_deadlines dl ON dl.alert_id = a.alert_id "
        "WHERE a.register_state = 'active' AND a.appeal_received_on IS NOT NULL ORDER BY a.alert_id",
    )
    found = [dict(zip(columns, row, strict=True)) for row in rows]
    for row in found:
        for column in _DATES:
            row[column] = stored_date(row[column])
    return found


class AppealReads:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def appeals(self) -> list[dict[str, Any]]:
        """See `appeal_rows`."""
        with self.engine.connect() as conn:
            return appeal_rows(conn)
