"""Counts and lists read from the register for people: `cautionflow status`, the register page in
the Airflow UI, the sync watch and the daily run summary. Read-only: nothing here writes.

Everything is read through `Register.connect`, handed in as `connect`: it opens an existing
register only (RegisterNotFoundError when there is none; nothing is ever created by a reader) and
turns a database error, such as a server that is down, into a one-line RegisterError, which the
status command prints and the register page answers with a 503.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.database import fetch_all, stored_date

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection

Connect = Callable[[], AbstractContextManager["Connection"]]


@dataclass(frozen=True)
class StatusCounts:
    """The register's counts for `cautionflow status`, as the database returned them."""

    by_state: dict[str, Any]  # register_state -> alerts
    active_by_code: dict[str, Any]  # largest first
    active_by_area: dict[str, Any]  # "(none)" for alerts without an area; by area
    active_flagged: Any
    quarantine_open: dict[str, Any]  # reason -> rows; largest first
    last_sync: tuple[Any, ...] | None  # (run_id, as_of, summary JSON, finished_at) of the latest sync
    deadlines: tuple[Any, Any, Any]  # (latest evaluated_on or None, overdue, alerts with an error)
    outbox: list[tuple[Any, ...]]  # (kind, status, messages), by kind then status
    letters: list[tuple[Any, ...]]  # (status, letters), by status
    officer_flags_open: list[tuple[Any, ...]]  # (flag, open flags), by flag


class RegisterFigures:
    def __init__(self, connect: Connect) -> None:
        self._connect = connect

    @contextmanager
    def reading(self) -> Iterator[FiguresReading]:
        """Several reads on one connection (the register page's figures, a review list)."""
        with self._connect() as conn:
            yield FiguresReading(conn)

    def status(self) -> StatusCounts:
        with self._connect() as conn:

            def rows(sql: str) -> list[tuple]:
                return fetch_all(conn, sql)[1]

            return StatusCounts(
                by_state=dict(rows("SELECT register_state, COUNT(*) FROM alerts GROUP BY register_state")),
                active_by_code=dict(rows(
                    "SELECT alert_code, COUNT(*) FROM alerts WHERE register_state = 'active' GROUP BY alert_code ORDER BY 2 DESC"
                )),
                active_by_area=dict(rows(
                    "SELECT COALESCE(area, '(none)'), COUNT(*) FROM alerts WHERE register_state = 'active' GROUP BY 1 ORDER BY 1"
                )),
                active_flagged=rows(
                    "SELECT COUNT(*) FROM alerts WHERE register_state = 'active' AND dq_flags IS NOT NULL"
                )[0][0],
                quarantine_open=dict(rows(
                    "SELECT reason, COUNT(*) FROM quarantine WHERE resolved_run_id IS NULL GROUP BY reason ORDER BY 2 DESC"
                )),
                last_sync=next(iter(rows(
                    "SELECT run_id, as_of, summary, finished_at FROM sync_runs ORDER BY id DESC LIMIT 1"
                )), None),
                deadlines=rows(
                    "SELECT MAX(evaluated_on), COALESCE(SUM(overdue), 0), COUNT(error) FROM alert_deadlines"
                )[0],
                outbox=rows("SELECT kind, status, COUNT(*) FROM outbox GROUP BY kind, status ORDER BY 1, 2"),
                letters=rows("SELECT status, COUNT(*) FROM letters GROUP BY status ORDER BY 1"),
                officer_flags_open=rows(
                    "SELECT flag, COUNT(*) FROM letter_flags WHERE resolved_on IS NULL GROUP BY flag ORDER BY 1"
                ),
            )

    def sync_progress(self, as_of: dt.date) -> tuple[dt.datetime | None, dt.date | None]:
        """(when the first sync for `as_of` finished, or None; the latest as-of date any sync finished)."""
        with self._connect() as conn:
            first = fetch_all(conn, "SELECT MIN(finished_at) FROM sync_runs WHERE as_of = ?", (_day(conn, as_of),))[1][0][0]
            latest = fetch_all(conn, "SELECT MAX(as_of) FROM sync_runs")[1][0][0]
        return _moment(first), stored_date(latest)

    def emails_on(self, as_of: dt.date, *, excluding_kind: str) -> dict[str, dict[str, int]]:
        """The outbox's messages for `as_of` by kind and status, but for one kind."""
        found: dict[str, dict[str, int]] = {}
        with self._connect() as conn:
            for kind, state, count in fetch_all(
                conn, "SELECT kind, status, COUNT(*) FROM outbox WHERE as_of = ? AND kind <> ? GROUP BY kind, status",
                (_day(conn, as_of), excluding_kind),
            )[1]:
                found.setdefault(kind, {})[state] = int(count)
        return found


class FiguresReading:
    """The register page's reads, on one connection. A table the register does not have yet (an
    older register) is for the caller to check with `tables()`; dates come back as the driver
    gives them (`stored_date` reads both)."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        """Rows through the driver; dates as ISO text on SQLite (where the register stores them so)."""
        if self.conn.dialect.name == "sqlite":
            params = tuple(p.isoformat() if isinstance(p, dt.date) else p for p in params)
        return fetch_all(self.conn, sql, params)[1]

    def tables(self) -> set[str]:
        from sqlalchemy import inspect

        return set(inspect(self.conn).get_table_names())

    def last_sync(self) -> tuple[Any, str] | None:
        """(as_of, summary JSON) of the latest sync, or None."""
        last = self._rows("SELECT as_of, summary FROM sync_runs ORDER BY id DESC LIMIT 1")
        return (last[0][0], last[0][1]) if last else None

    def deadlines_evaluated_on(self) -> dt.date | None:
        return stored_date(self._rows("SELECT MAX(evaluated_on) FROM alert_deadlines")[0][0])

    def active_by_code_and_area(self) -> list[tuple[str, str, Any]]:
        """(code or "(none)", area or "(none)", active alerts)."""
        return self._rows(
            "SELECT COALESCE(alert_code, '(none)'), COALESCE(area, '(none)'), COUNT(*) FROM alerts "
            "WHERE register_state = 'active' GROUP BY 1, 2",
        )

    def flagged_active_alerts(self) -> list[tuple[str, str | None, str | None, str]]:
        """(alert_id, alert_code, area, dq_flags) of each active alert with data-quality flags, by id."""
        return self._rows(
            "SELECT alert_id, alert_code, area, dq_flags FROM alerts "
            "WHERE register_state = 'active' AND dq_flags IS NOT NULL ORDER BY alert_id",
        )

    def active_deadline_totals(self) -> tuple[Any, Any]:
        """(reviews overdue, alerts whose dates could not be computed), of the active alerts."""
        overdue, errors = self._rows(
            "SELECT COALESCE(SUM(overdue), 0), COUNT(error) FROM alert_deadlines d "
            "JOIN alerts a ON a.alert_id = d.alert_id WHERE a.register_state = 'active'",
        )[0]
        return overdue, errors

    def reviews_due_between(self, first: dt.date, last: dt.date) -> Any:
        """Active alerts not overdue whose review falls due from `first` to `last`, both included."""
        return self._rows(
            "SELECT COUNT(*) FROM alert_deadlines d JOIN alerts a ON a.alert_id = d.alert_id "
            "WHERE a.register_state = 'active' AND d.overdue = 0 AND d.review_due >= ? AND d.review_due <= ?",
            (first, last),
        )[0][0]

    def review_dates_before(self, first: dt.date, end: dt.date) -> list[dt.date]:
        """The review due dates, from `first` up to but not including `end`, of active alerts not overdue."""
        return [
            stored_date(due)
            for (due,) in self._rows(
                "SELECT d.review_due FROM alert_deadlines d JOIN alerts a ON a.alert_id = d.alert_id "
                "WHERE a.register_state = 'active' AND d.overdue = 0 AND d.review_due >= ? AND d.review_due < ?",
                (first, end),
            )
        ]

    def open_quarantine(self) -> list[tuple[Any, str | None, str, dt.date | None]]:
        """(id, alert_id, reason, first seen) of each quarantined row not yet resolved, by id."""
        return [
            (i, a, r, stored_date(s))
            for i, a, r, s in self._rows(
                "SELECT id, alert_id, reason, first_seen_on FROM quarantine WHERE resolved_run_id IS NULL ORDER BY id",
            )
        ]

    def deliveries(self, kinds: Sequence[str]) -> list[tuple[Any, ...]]:
        """Per recipient of the `kinds`: (kind, name, email, last sent as-of date, sent, failed,
        pending, uncertain, the latest error of a message not sent or ""), by kind, name, email."""
        out = []
        marks = ", ".join("?" * len(kinds))
        for kind, name, email, last_sent, sent, failed, pending, uncertain in self._rows(
            "SELECT kind, recipient_name, recipient_email, "
            "MAX(CASE WHEN status = 'sent' THEN as_of END), "
            "SUM(CASE WHEN status = 'sent' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'failed' THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status IN ('pending', 'sending') THEN 1 ELSE 0 END), "
            "SUM(CASE WHEN status = 'uncertain' THEN 1 ELSE 0 END) "
            f"FROM outbox WHERE kind IN ({marks}) GROUP BY kind, recipient_name, recipient_email ORDER BY 1, 2, 3",
            tuple(kinds),
        ):
            error = self._rows(
                "SELECT last_error FROM outbox WHERE kind = ? AND recipient_email = ? AND recipient_name = ? "
                "AND status IN ('failed', 'pending', 'sending', 'uncertain') AND last_error IS NOT NULL ORDER BY id DESC LIMIT 1",
                (kind, email, name),
            )
            out.append((kind, name, email, stored_date(last_sent), sent, failed, pending, uncertain,
                        error[0][0] if error else ""))
        return out

    def appeals(self) -> list[dict[str, Any]]:
        """The active alerts with an appeal on record, as the appeals list reads them
        (`adapters.appeal_reads.appeal_rows`: never the note); which are open is the domain's rule."""
        from cautionflow.adapters.appeal_reads import appeal_rows

        return appeal_rows(self.conn)

    def letters_by_status(self) -> dict[str, Any]:
        return dict(self._rows("SELECT status, COUNT(*) FROM letters GROUP BY status"))

    def letters_waiting(self) -> list[tuple[Any, str, str, dt.date | None, str, str, str | None]]:
        """(id, alert_id, kind, batch, person_name, status, hold_reason) of each letter not dispatched yet
        (held, queued, approved), held first, then by batch and id: what officers have to act on."""
        return [
            (i, a, k, stored_date(b), n, s, h)
            for i, a, k, b, n, s, h in self._rows(
                "SELECT id, alert_id, kind, batch, person_name, status, hold_reason FROM letters "
                "WHERE status IN ('held', 'queued', 'approved') "
                "ORDER BY CASE status WHEN 'held' THEN 0 WHEN 'queued' THEN 1 ELSE 2 END, batch, id",
            )
        ]

    def reviews(
        self, *, overdue: bool, due_from: dt.date | None = None, due_to: dt.date | None = None,
        code: str | None = None, area: str | None = None,
    ) -> list[tuple[Any, ...]]:
        """(alert_id, alert_code, area, person_name, asset_ref, address, postcode, review_due) of the
        active alerts whose review is overdue, or else not overdue and due from `due_from` to `due_to`;
        only those of `code` and of `area` when given ('(none)': without one); by due date, then id."""
        sql = (
            "SELECT a.alert_id, a.alert_code, a.area, a.person_name, a.asset_ref, a.address, a.postcode, "
            "d.review_due FROM alert_deadlines d JOIN alerts a ON a.alert_id = d.alert_id "
            "WHERE a.register_state = 'active' "
        )
        params: list[Any] = []
        if overdue:
            sql += "AND d.overdue = 1 "
        else:
            sql += "AND d.overdue = 0 AND d.review_due >= ? AND d.review_due <= ? "
            params += [due_from, due_to]
        for column, value in (("alert_code", code), ("area", area)):
            if value == "(none)":
                sql += f"AND a.{column} IS NULL "
            elif value:
                sql += f"AND a.{column} = ? "
                params.append(value)
        sql += "ORDER BY d.review_due, a.alert_id"
        return [(*row[:-1], stored_date(row[-1])) for row in self._rows(sql, tuple(params))]


def _day(conn: Connection, day: dt.date) -> Any:
    """A date parameter as the register stores it: ISO text on SQLite."""
    return day.isoformat() if conn.dialect.name == "sqlite" else day


def _moment(value: object) -> dt.datetime | None:
    """A timestamp column through the raw driver: aware on PostgreSQL, UTC text on SQLite."""
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)
