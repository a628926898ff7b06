"""What the urgent notices read of the register: recent history with when each sync finished, when
each recipient's latest digest went, and the urgent notices already queued. The alerts the history
names are read by the digests' reader (`DigestReads.alerts_by_id`: allow-listed fields, the review
due date and the register state), so a notice and a digest show an alert from the same read."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.database import fetch_all
from cautionflow.domain.urgent import KIND, EarlierNotice, HistoryChange, shown_code

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


def _moment(value: Any) -> dt.datetime:
    """A stored timestamp (aware on PostgreSQL; text on SQLite, naive meaning UTC) as aware UTC."""
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


def _bound(conn: Connection, moment: dt.datetime) -> Any:
    """A moment to compare with a stored timestamp: SQLite compares the text the register wrote
    (`sync_runs` to the second with "+00:00", the outbox with microseconds), so the bound is cut to
    the second, which never leaves out a row at or after `moment`."""
    if conn.dialect.name == "sqlite":
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return moment


class UrgentReads:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def history_since(self, since: dt.datetime) -> list[HistoryChange]:
        """History rows recorded by syncs that finished at or after `since` (a run id's first finish),
        but the register's first sync's and "ended" rows (never urgent)."""
        with self.engine.connect() as conn:
            _, first = fetch_all(conn, "SELECT run_id FROM sync_runs ORDER BY id LIMIT 1")
            first_run = first[0][0] if first else None
            # The first sync's rows are left out here already (the domain's rule): after a first load
            # of a million alerts they would be a million rows read every quarter of an hour.
            _, rows = fetch_all(
                conn,
                "SELECT h.id, h.alert_id, h.change, h.changed_fields, r.finished_at, h.run_id FROM alert_history h "
                "JOIN (SELECT run_id, MIN(finished_at) AS finished_at FROM sync_runs GROUP BY run_id) r "
                "ON r.run_id = h.run_id WHERE r.finished_at >= ? AND h.run_id <> ? AND h.change <> 'ended' ORDER BY h.id",
                (_bound(conn, since), first_run or ""),
            )
        return [
            HistoryChange(int(r[0]), str(r[1]), str(r[2]), json.loads(r[3]) if r[3] else {}, _moment(r[4]),
                          initial_load=r[5] == first_run)
            for r in rows
        ]

    def last_digest_sent(self) -> dict[tuple[str, str], dt.datetime]:
        """When each recipient's latest digest was accepted, by (name, email)."""
        with self.engine.connect() as conn:
            _, rows = fetch_all(
                conn,
                "SELECT recipient_name, recipient_email, MAX(sent_at) FROM outbox "
                "WHERE kind = 'digest' AND status = 'sent' GROUP BY recipient_name, recipient_email",
            )
        return {(r[0], r[1]): _moment(r[2]) for r in rows if r[2] is not None}

    def notices_since(self, since: dt.datetime) -> list[EarlierNotice]:
        """Urgent notices queued at or after `since` that are sent, still to go or failed (a failed
        one is resent by `mail resend-failed`), with the code each showed of each alert."""
        with self.engine.connect() as conn:
            _, rows = fetch_all(
                conn,
                "SELECT recipient_name, recipient_email, created_at, disclosed_alerts FROM outbox "
                "WHERE kind = ? AND status <> 'superseded' AND created_at >= ?",
                (KIND, _bound(conn, since)),
            )
        notices = []
        for name, email, created_at, disclosed in rows:
            shown = json.loads(disclosed).get("shown", {})
            codes = {alert_id: code for alert_id, text in shown.items() if (code := shown_code(text))}
            notices.append(EarlierNotice(name, email, _moment(created_at), codes))
        return notices
