"""cautionflow's own database: current alerts, their history, the quarantine and the sync runs.

Every write of one sync happens in one transaction (`Register.transaction`), so a failed run
leaves the register as it was.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.database import (
    DatabaseError,
    bulk_insert,
    create_database_engine,
    describe_error,
    execute_many,
    fetch_all,
    safe_url,
)
from cautionflow.domain.contract import SOURCE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection, Engine

    from cautionflow.domain.merge import MergePlan

_RUN_STAMP_COLUMNS = ("first_seen_run", "first_seen_on", "last_changed_run", "last_changed_on")
RUN_COLUMNS = ("register_state", "ended_reason", *_RUN_STAMP_COLUMNS)
ALERT_COLUMNS = (*SOURCE_COLUMNS, "dq_flags", "row_hash", *RUN_COLUMNS)
_UPDATED_COLUMNS = (*SOURCE_COLUMNS[1:], "dq_flags", "row_hash", "register_state", "ended_reason")
_CHUNK = 500
_ADVISORY_LOCK = 7_2026_1123  # serialises syncs on PostgreSQL


class RegisterError(Exception):
    """The register could not be opened, migrated or written; one line, no password."""


def upgrade(engine: Engine) -> None:
    """Bring the register's schema to the newest migration (idempotent, quick when current)."""
    from alembic import command
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("cautionflow") / "migrations"))
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


class Register:
    def __init__(self, url: str) -> None:
        self.url = url
        try:
            self.engine = create_database_engine(url)
        except DatabaseError as exc:
            raise RegisterError(f"register: {exc}") from None

    def describe(self) -> str:
        return safe_url(self.url)

    def migrate(self) -> None:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise RegisterError(f"register {self.describe()}: {describe_error(exc)}") from None

    @contextmanager
    def transaction(self) -> Iterator[RegisterTransaction]:
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})")
                elif conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock before reading state
                yield RegisterTransaction(conn)
        except SQLAlchemyError as exc:
            raise RegisterError(f"register {self.describe()}: {describe_error(exc)}") from None

    def dispose(self) -> None:
        self.engine.dispose()


class RegisterTransaction:
    """The writes of one sync, inside one database transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def current_state(self) -> pd.DataFrame:
        import pandas as pd

        columns, rows = fetch_all(self.conn, "SELECT alert_id, row_hash, register_state FROM alerts")
        frame = pd.DataFrame.from_records(rows, columns=columns)
        return frame.astype({"alert_id": object, "row_hash": "int64", "register_state": object})

    def stored_alerts(self, alert_ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(alert_ids), _CHUNK):
            chunk = alert_ids[start : start + _CHUNK]
            marks = ", ".join("?" * len(chunk))
            columns, rows = fetch_all(
                self.conn, f"SELECT {', '.join(SOURCE_COLUMNS)} FROM alerts WHERE alert_id IN ({marks})", chunk
            )
            for row in rows:
                record = dict(zip(columns, row, strict=True))
                found[record["alert_id"]] = record
        return found

    def apply(self, plan: MergePlan, *, run_id: str, as_of: dt.date) -> None:
        from cautionflow.domain.merge import changed_fields

        day = as_of.isoformat()
        history: list[tuple[Any, ...]] = []

        if len(plan.inserts) and self._is_empty():
            self._initial_load(plan.inserts, run_id=run_id, as_of=as_of)
            return

        if len(plan.inserts):
            inserts = plan.inserts.assign(
                first_seen_run=run_id, first_seen_on=day, last_changed_run=run_id, last_changed_on=day
            )
            bulk_insert(self.conn, "alerts", ALERT_COLUMNS, _records(inserts, ALERT_COLUMNS))
            history.extend((alert_id, run_id, day, "inserted", None) for alert_id in inserts["alert_id"])

        if len(plan.updates):
            ids = plan.updates["alert_id"].tolist()
            before = self.stored_alerts(ids)
            new_rows = plan.updates.to_dict("records")
            for new in new_rows:
                diff = changed_fields(before[new["alert_id"]], new)
                if new["register_state"] != new["old_state"]:
                    diff["register_state"] = [new["old_state"], new["register_state"]]
                history.append((new["alert_id"], run_id, day, new["change"], json.dumps(diff, default=str)))
            assignments = ", ".join(f"{c} = ?" for c in (*_UPDATED_COLUMNS, "last_changed_run", "last_changed_on"))
            execute_many(
                self.conn,
                f"UPDATE alerts SET {assignments} WHERE alert_id = ?",
                [
                    (*values, run_id, day, values_id)
                    for values, values_id in zip(_records(plan.updates, _UPDATED_COLUMNS), ids, strict=True)
                ],
            )

        if plan.left_source:
            execute_many(
                self.conn,
                "UPDATE alerts SET register_state = 'ended', ended_reason = 'left_source', "
                "last_changed_run = ?, last_changed_on = ? WHERE alert_id = ?",
                [(run_id, day, alert_id) for alert_id in plan.left_source],
            )
            left = json.dumps({"register_state": ["active", "ended"], "ended_reason": [None, "left_source"]})
            history.extend((alert_id, run_id, day, "ended", left) for alert_id in plan.left_source)

        if history:
            bulk_insert(self.conn, "alert_history", ("alert_id", "run_id", "as_of", "change", "changed_fields"), history)

    def _is_empty(self) -> bool:
        _, alerts = fetch_all(self.conn, "SELECT 1 FROM alerts LIMIT 1")
        _, history = fetch_all(self.conn, "SELECT 1 FROM alert_history LIMIT 1")
        return not alerts and not history

    def _initial_load(self, inserts: pd.DataFrame, *, run_id: str, as_of: dt.date) -> None:
        """The first sync of a register: load without index upkeep, then build the indexes once.

        Sorting once is much cheaper than keeping secondary indexes up to date row by row, and
        the "inserted" history is written by the database from the rows just loaded.
        """
        from cautionflow.adapters.register_schema import alert_history, alerts

        day = as_of.isoformat()
        secondary = [*alerts.indexes, *alert_history.indexes]
        for index in secondary:
            index.drop(self.conn)
        primary_key = None
        if self.conn.dialect.name == "postgresql":
            self.conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")  # index builds sort in memory
            # The primary key too: validation has already made the ids unique (duplicates are quarantined).
            _, found = fetch_all(
                self.conn, "SELECT conname FROM pg_constraint WHERE conrelid = 'alerts'::regclass AND contype = 'p'"
            )
            primary_key = found[0][0]
            self.conn.exec_driver_sql(f'ALTER TABLE alerts DROP CONSTRAINT "{primary_key}"')
        from_batch = ALERT_COLUMNS[: -len(_RUN_STAMP_COLUMNS)]
        stamp = (run_id, day, run_id, day)
        rows = (values + stamp for values in _records(inserts, from_batch))
        bulk_insert(self.conn, "alerts", ALERT_COLUMNS, rows)
        execute_many(
            self.conn,
            "INSERT INTO alert_history (alert_id, run_id, as_of, change) SELECT alert_id, ?, ?, 'inserted' FROM alerts",
            [(run_id, day)],
        )
        if primary_key is not None:
            self.conn.exec_driver_sql(f'ALTER TABLE alerts ADD CONSTRAINT "{primary_key}" PRIMARY KEY (alert_id)')
        for index in secondary:
            index.create(self.conn)

    def record_quarantine(self, quarantined: pd.DataFrame, *, run_id: str, as_of: dt.date) -> int:
        """Keep the quarantine equal to the rows this read could not identify; returns rows added."""
        _, rows = fetch_all(self.conn, "SELECT id, row_hash FROM quarantine WHERE resolved_run_id IS NULL")
        open_hashes = {row_hash for _, row_hash in rows}
        seen = set(quarantined["row_hash"].tolist())
        day = as_of.isoformat()
        new = [
            (int(r.row_hash), r.alert_id, r.reason, r.raw_row, run_id, day)
            for r in quarantined.itertuples(index=False)
            if int(r.row_hash) not in open_hashes
        ]
        if new:
            bulk_insert(
                self.conn, "quarantine", ("row_hash", "alert_id", "reason", "raw_row", "first_run_id", "first_seen_on"), new
            )
        resolved = [(run_id, day, row_id) for row_id, row_hash in rows if row_hash not in seen]
        execute_many(self.conn, "UPDATE quarantine SET resolved_run_id = ?, resolved_on = ? WHERE id = ?", resolved)
        return len(new)

    def record_run(
        self, *, run_id: str, as_of: dt.date, started_at: dt.datetime, summary: dict[str, Any]
    ) -> None:
        execute_many(
            self.conn,
            "INSERT INTO sync_runs (run_id, as_of, started_at, finished_at, summary) VALUES (?, ?, ?, ?, ?)",
            [(run_id, as_of.isoformat(), _utc(started_at), _utc(dt.datetime.now(dt.UTC)), json.dumps(summary, sort_keys=True))],
        )


def _records(frame: pd.DataFrame, columns: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """Rows as plain Python tuples (no numpy scalars, None for missing) for the driver."""
    from cautionflow.frames import plain_values

    return zip(*(plain_values(frame[c]) for c in columns), strict=True)


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")
