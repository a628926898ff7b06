"""The register's side of the retention run (services/retention.py): the ended alerts, every place
an alert's personal details are kept (history, letters, outbox, disclosures, quarantine, the
look-ups' log), and the writes that clear them and log it.

The whole run is one transaction (`RetentionStore.transaction`), taken as the sync takes its own:
an anonymisation is complete for every alert or not done at all, and no sync writes meanwhile.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from typing import TYPE_CHECKING, Any

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import execute_many, fetch_all, stored_date

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection


class RetentionStore:
    def __init__(self, writing: Callable[[], AbstractContextManager[Connection]]) -> None:
        self.writing = writing  # `Register.writing`: the register's write transaction and its lock

    @contextmanager
    def transaction(self) -> Iterator[RetentionTransaction]:
        """One transaction for the whole run: committed when the block ends, rolled back on an error."""
        with self.writing() as conn:
            yield RetentionTransaction(conn)


class RetentionTransaction:
    """Reads and writes of one retention run, in its transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        # A translated letter (migration 0006) also keeps the English PDF and the file's name.
        self.translated_letters = "english_pdf_path" in schema.letters.c

    def ended_alerts(self, personal_fields: Sequence[str]) -> list[dict[str, Any]]:
        """Every ended alert, by id: id, ends_on, first_seen_on, last_changed_on, anonymised_on and
        `personal_fields`."""
        columns, rows = fetch_all(
            self.conn,
            f"SELECT alert_id, ends_on, first_seen_on, last_changed_on, anonymised_on, {', '.join(personal_fields)} "
            "FROM alerts WHERE register_state = 'ended' ORDER BY alert_id",
        )
        return [dict(zip(columns, r, strict=True)) for r in rows]

    def register_end_dates(self) -> dict[str, dt.date | None]:
        """alert id -> the latest day the register recorded it ending."""
        _, ends = fetch_all(
            self.conn, "SELECT alert_id, MAX(as_of) FROM alert_history WHERE change = 'ended' GROUP BY alert_id"
        )
        return {alert_id: stored_date(day) for alert_id, day in ends}

    def history(self, alert_id: str) -> list[tuple[Any, str | None]]:
        """(id, changed_fields JSON) of the alert's history rows."""
        return fetch_all(self.conn, "SELECT id, changed_fields FROM alert_history WHERE alert_id = ?", (alert_id,))[1]

    def letters(self, alert_id: str) -> list[tuple[Any, ...]]:
        """(id, status, person_name, pdf_path, english_pdf_path or None) of the alert's letters."""
        extra = ", english_pdf_path" if self.translated_letters else ", NULL"
        return fetch_all(
            self.conn, f"SELECT id, status, person_name, pdf_path{extra} FROM letters WHERE alert_id = ?", (alert_id,)
        )[1]

    def messages_listing(self, alert_id: str, *, statuses: Sequence[str], not_starting: str) -> list[tuple[Any, ...]]:
        """(id, kind, disclosed_alerts JSON) of the outbox messages in `statuses` whose disclosed alerts
        name `alert_id` (a text match: the caller reads the JSON) and whose body does not start with
        `not_starting`, by id."""
        from sqlalchemy import select

        o = schema.outbox
        return self.conn.execute(
            select(o.c.id, o.c.kind, o.c.disclosed_alerts).where(
                o.c.status.in_(statuses),
                o.c.disclosed_alerts.contains(json.dumps(alert_id), autoescape=True),
                o.c.message.not_like(f"{not_starting}%"),
            ).order_by(o.c.id)
        ).all()

    def resident_disclosures(self, alert_id: str, *, except_name: str) -> list[tuple[Any]]:
        """(id,) of the alert's disclosure rows to the resident whose recipient is not `except_name`."""
        return fetch_all(
            self.conn,
            "SELECT id FROM disclosures WHERE alert_id = ? AND recipient_role = 'resident' AND recipient_name <> ?",
            (alert_id, except_name),
        )[1]

    def quarantined(self, alert_id: str) -> list[tuple[Any, str]]:
        """(id, raw_row JSON) of the quarantine rows with the alert's id."""
        return fetch_all(self.conn, "SELECT id, raw_row FROM quarantine WHERE alert_id = ?", (alert_id,))[1]

    def lookups_returning(self, alert_id: str) -> list[tuple[Any, str | None]]:
        """(id, query JSON) of the look-ups that returned the alert."""
        return fetch_all(
            self.conn,
            "SELECT id, query FROM lookups WHERE id IN (SELECT lookup_id FROM lookup_results WHERE alert_id = ?) "
            "ORDER BY id",
            (alert_id,),
        )[1]

    def anonymise(
        self, alert_id: str, *, personal_fields: Sequence[str], as_of: dt.date, anonymised: str,
        history: Sequence[tuple[str | None, Any]], letters: Sequence[Any], letter_html: str,
        withdraw: Sequence[Any], withdrawn: str, messages: Sequence[tuple[str, Any]], letter_messages: Sequence[Any],
        disclosures: Sequence[Any], quarantine: Sequence[tuple[str, Any]],
        lookups: Sequence[tuple[str | None, Any]] = (), shown: Sequence[tuple[str, Any]] = (),
    ) -> None:
        """Clear one alert's personal details everywhere: `personal_fields` of the alert (stamping
        `anonymised_on`); the history rows' new changed_fields ((JSON, id)); the `letters` (ids: the
        person's details cleared, `anonymised` as the name, `letter_html` as the body, a translation's
        file name too); the letters to `withdraw` held with the reason `withdrawn`; the outbox bodies
        ((new body, id)); the recipient of the `letter_messages` and `disclosures` (ids); the
        quarantine rows' new raw rows ((JSON, id)); the look-ups' new queries ((JSON, id)); the outbox
        rows' disclosed_alerts without what they showed of the alert (`shown`: (JSON, id)), and the
        disclosure log's `shown` of the alert."""
        conn = self.conn
        assignments = ", ".join(f"{c} = NULL" for c in personal_fields)
        execute_many(conn, f"UPDATE alerts SET {assignments}, anonymised_on = ? WHERE alert_id = ?",
                     [(as_of.isoformat(), alert_id)])
        execute_many(conn, "UPDATE alert_history SET changed_fields = ? WHERE id = ?", history)
        execute_many(
            conn,
            "UPDATE letters SET person_ref = NULL, person_name = ?, address_lines = '', email = NULL, html = ?"
            + (", translation_file = NULL" if self.translated_letters else "") + " WHERE id = ?",
            [(anonymised, letter_html, row_id) for row_id in letters],
        )
        execute_many(conn, "UPDATE letters SET status = 'held', hold_reason = ? WHERE id = ?",
                     [(withdrawn, row_id) for row_id in withdraw])
        execute_many(conn, "UPDATE outbox SET message = ? WHERE id = ?", messages)
        execute_many(
            conn, "UPDATE outbox SET recipient_name = ?, recipient_email = ? WHERE id = ?",
            [(anonymised, anonymised, row_id) for row_id in letter_messages],
        )
        execute_many(conn, "UPDATE disclosures SET recipient_name = ?, recipient_email = ? WHERE id = ?",
                     [(anonymised, anonymised, row_id) for row_id in disclosures])
        execute_many(conn, "UPDATE quarantine SET raw_row = ? WHERE id = ?", quarantine)
        execute_many(conn, "UPDATE lookups SET query = ? WHERE id = ?", lookups)
        execute_many(conn, "UPDATE outbox SET disclosed_alerts = ? WHERE id = ?", shown)
        execute_many(conn, "UPDATE disclosures SET shown = NULL WHERE alert_id = ?", [(alert_id,)])

    def log(self, entries: Sequence[dict[str, Any]]) -> None:
        """Rows of `anonymisation_log` (alert_id, run_id, as_of, anonymised_at, ended_on,
        retention_months, fields_cleared)."""
        self.conn.execute(schema.anonymisation_log.insert(), list(entries))
