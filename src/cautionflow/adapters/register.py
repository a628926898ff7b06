"""cautionflow's own database: current alerts, their history, the quarantine and the sync runs.

Every write of one sync happens in one transaction (`Register.transaction`), so a failed run
leaves the register as it was.

Only the sync creates a register (`migrate(create=True)`). Everything else opens an existing one
(`migrate()`, `require()`, `connect()`) and otherwise fails with `RegisterNotFoundError`: a
mistyped `register_url` once made a new, empty register, from which every contractor was emailed
that there were no flags for them.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.database import (
    BackgroundWriter,
    DatabaseError,
    bulk_insert,
    copy_fields,
    create_database_engine,
    describe_error,
    execute_many,
    fetch_all,
    normalise_url,
    safe_url,
    sqlite_path,
)
from cautionflow.domain.contract import SOURCE_COLUMNS

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection, Engine

    from cautionflow.adapters.appeal_reads import AppealReads
    from cautionflow.adapters.deadline_store import DeadlineStore
    from cautionflow.adapters.digest_reads import DigestReads
    from cautionflow.adapters.figures import RegisterFigures
    from cautionflow.adapters.governance_reads import GovernanceReads
    from cautionflow.adapters.letters import LetterFlags, LetterQueue, LetterReads
    from cautionflow.adapters.lookup_store import LookupStore
    from cautionflow.adapters.outbox import Outbox
    from cautionflow.adapters.retention_store import RetentionStore
    from cautionflow.adapters.subject_access_reads import SubjectAccessReads
    from cautionflow.adapters.urgent_reads import UrgentReads
    from cautionflow.domain.merge import MergePlan
    from cautionflow.domain.validation import ValidatedBatch

_RUN_STAMP_COLUMNS = ("first_seen_run", "first_seen_on", "last_changed_run", "last_changed_on")
RUN_COLUMNS = ("register_state", "ended_reason", *_RUN_STAMP_COLUMNS)
ALERT_COLUMNS = (*SOURCE_COLUMNS, "dq_flags", "row_hash", *RUN_COLUMNS)
_UPDATED_COLUMNS = (*SOURCE_COLUMNS[1:], "dq_flags", "row_hash", "register_state", "ended_reason")
_CHUNK = 500
_ADVISORY_LOCK = 7_2026_1123  # serialises the register's writers on PostgreSQL (`Register.writing`)
# Keys held for a whole sync or letters dispatch (`Register._exclusive`: a session lock, on its own connection):
# the transactions' key would make a sync wait for itself.
_LOCK_KEYS = {"sync": 7_2026_1124, "dispatch": 7_2026_1125}
SYNC_LOCK_POLL_SECONDS = 0.5
log = logging.getLogger(__name__)
VERSION_TABLE = "cautionflow_schema_version"  # migrations/env.py's version_table: a register has it


class RegisterError(Exception):
    """The register could not be opened, migrated or written; one line, no password."""


class RegisterNotReadyError(RegisterError):
    """There is no register to read, or none recent enough to mail from. Retrying does not help
    until someone runs the sync or corrects `register_url` (an Airflow task fails without retries)."""


class RegisterNotFoundError(RegisterNotReadyError):
    """No register at the configured URL: only the sync creates one."""


class RegisterOutdatedError(RegisterNotReadyError):
    """The register's schema is not at this cautionflow's newest migration, and the caller (the
    api-server's look-ups) does not migrate: only the pipeline does (`Register.require_current`)."""


class SyncAlreadyRunningError(RegisterError):
    """Another sync of this register held it for longer than this one would wait; nothing changed."""


class DispatchAlreadyRunningError(RegisterError):
    """Another letters dispatch held the register for longer than this one would wait; nothing changed."""


_ALREADY_RUNNING = {"sync": SyncAlreadyRunningError, "dispatch": DispatchAlreadyRunningError}


def _alembic_config() -> Any:
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(resources.files("cautionflow") / "migrations"))
    return config


def upgrade(engine: Engine) -> None:
    """Bring the register's schema to the newest migration (idempotent, quick when current)."""
    from alembic import command

    config = _alembic_config()
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")


class Register:
    """A register at `url`. Opening one never creates it: an SQLite register's engine opens only an
    existing file; `migrate(create=True)`, which only the sync calls, makes a new one."""

    def __init__(self, url: str, *, pooled: bool = False) -> None:
        """`pooled`: keep PostgreSQL connections open between uses (`create_database_engine`), for a
        long-lived process's many short reads; the pipeline's steps open and close their own."""
        self.url = url
        try:
            self.engine = create_database_engine(url, create=False, pooled=pooled)
        except DatabaseError as exc:
            raise RegisterError(f"register: {exc}") from None
        self._sqlite = sqlite_path(normalise_url(url))  # None for PostgreSQL; parses, as the engine did

    def describe(self) -> str:
        return safe_url(self.url)

    def exists(self) -> bool:
        """Has the sync ever created this register (its schema-version table is there)? Never creates
        one; a database that cannot be reached is a RegisterError, not False."""
        from sqlalchemy import inspect
        from sqlalchemy.exc import SQLAlchemyError

        if self._sqlite is not None and not self._sqlite.is_file():
            return False
        try:
            with self.engine.connect() as conn:
                return inspect(conn).has_table(VERSION_TABLE)
        except SQLAlchemyError as exc:
            raise RegisterError(f"register {self.describe()}: {describe_error(exc)}") from None

    def require(self) -> None:
        """RegisterNotFoundError unless the register exists."""
        if not self.exists():
            where = self._sqlite if self._sqlite is not None else self.describe()
            raise RegisterNotFoundError(f"register not found: {where} (run the sync first, or check register_url)")

    def require_current(self, *, remedy: str) -> None:
        """RegisterNotFoundError unless the register exists; RegisterOutdatedError (its message
        `remedy`, then the revisions) unless its schema is at the newest migration. Reads the schema
        version only: never migrates, never creates."""
        from alembic.script import ScriptDirectory
        from sqlalchemy.exc import SQLAlchemyError

        self.require()
        try:
            with self.engine.connect() as conn:
                stored = {row[0] for row in conn.exec_driver_sql(f"SELECT version_num FROM {VERSION_TABLE}")}
        except SQLAlchemyError as exc:
            raise RegisterError(f"register {self.describe()}: {describe_error(exc)}") from None
        heads = set(ScriptDirectory.from_config(_alembic_config()).get_heads())
        if stored != heads:
            at = ", ".join(sorted(stored)) or "none"
            raise RegisterOutdatedError(f"{remedy} (register {self.describe()} at revision {at}, "
                                        f"this cautionflow needs {', '.join(sorted(heads))})")

    def migrate(self, *, create: bool = False) -> None:
        """Bring an existing register's schema up to date; with `create` (the sync only), make the
        register first when there is none."""
        from sqlalchemy.exc import SQLAlchemyError

        if create:
            self._create_sqlite_file()
        else:
            self.require()
        try:
            upgrade(self.engine)
        except SQLAlchemyError as exc:
            raise RegisterError(f"register {self.describe()}: {describe_error(exc)}") from None

    def _create_sqlite_file(self) -> None:
        """The engine opens only an existing SQLite file, so the sync makes it (and its folder)."""
        import sqlite3

        if self._sqlite is None or self._sqlite.is_file():
            return
        try:
            self._sqlite.parent.mkdir(parents=True, exist_ok=True)
            sqlite3.connect(self._sqlite).close()
        except (OSError, sqlite3.Error) as exc:
            raise RegisterError(f"register {self.describe()}: cannot create {self._sqlite}: {exc}") from None

    @contextmanager
    def sync_lock(self, *, wait_seconds: float) -> Iterator[None]:
        """Held for a whole sync, creating the register included: a second sync started meanwhile (a
        manual run beside the scheduled one, a cleared task) waits up to `wait_seconds` and then
        finds the register made and merges into it; two first loads at once once left the loser with
        a raw "duplicate key" from both creating the tables. SyncAlreadyRunningError when the wait
        runs out; nothing has been changed then."""
        with self._exclusive("sync", wait_seconds=wait_seconds, create=True):
            yield

    @contextmanager
    def dispatch_lock(self, *, wait_seconds: float) -> Iterator[None]:
        """Held for a whole letters dispatch: two at once (the DAG's and an officer's) would both
        write the same unfinished print batch. DispatchAlreadyRunningError when the wait runs out."""
        with self._exclusive("dispatch", wait_seconds=wait_seconds, create=False):
            yield

    @contextmanager
    def _exclusive(self, name: str, *, wait_seconds: float, create: bool) -> Iterator[None]:
        """One holder of `name` per register at a time, across processes and machines: PostgreSQL, a
        session advisory lock on a connection of its own; SQLite, an exclusive lock on a file beside
        the database; others, none. Waits up to `wait_seconds`, saying so once in the log."""
        import time

        deadline = time.monotonic() + wait_seconds
        told = False
        with self._lock_holder(name, create=create) as try_lock:
            while not try_lock():
                if time.monotonic() >= deadline:
                    raise _ALREADY_RUNNING[name](
                        f"register {self.describe()}: another {name} has held it for over {wait_seconds:.0f} s; "
                        "this one stopped without changing anything (see that run's log)"
                    )
                if not told:
                    log.info("waiting for the %s already running on %s", name, self.describe())
                    told = True
                time.sleep(SYNC_LOCK_POLL_SECONDS)
            yield

    @contextmanager
    def _lock_holder(self, name: str, *, create: bool) -> Iterator[Any]:
        """A `try_lock()` callable for `_exclusive`; what it took is released on leaving."""
        from sqlalchemy.exc import SQLAlchemyError

        if self._sqlite is not None:
            import fcntl

            if create:
                self._create_sqlite_file()
            else:
                self.require()
            with open(self._sqlite.with_name(f"{self._sqlite.name}.{name}.lock"), "a") as handle:

                def try_flock() -> bool:
                    try:
                        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    except BlockingIOError:
                        return False
                    return True

                try:
                    yield try_flock
                finally:
                    fcntl.flock(handle, fcntl.LOCK_UN)
            return
        try:
            conn = self.engine.connect()
        except SQLAlchemyError as exc:
            raise RegisterError(f"register {self.describe()}: {describe_error(exc)}") from None

        def try_advisory() -> bool:
            if conn.dialect.name != "postgresql":
                return True
            held = bool(conn.exec_driver_sql(f"SELECT pg_try_advisory_lock({_LOCK_KEYS[name]})").scalar())
            conn.commit()  # no transaction left open on the lock's connection while its holder runs
            return held

        try:
            yield try_advisory
        finally:
            # Closing the session releases its advisory lock: invalidated, the connection is closed
            # rather than returned to the pool still holding it.
            conn.invalidate()
            conn.close()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        """A connection to an existing register for reading (RegisterNotFoundError when there is
        none); a database error, such as a server that is down, is a one-line RegisterError."""
        from sqlalchemy.exc import SQLAlchemyError

        self.require()
        try:
            with self.engine.connect() as conn:
                yield conn
        except SQLAlchemyError as exc:
            raise RegisterError(f"register {self.describe()}: {describe_error(exc)}") from None

    def last_sync_finished_at(self) -> dt.datetime | None:
        """When the latest completed sync finished (aware, UTC), or None when none has."""
        with self.connect() as conn:
            _, rows = fetch_all(conn, "SELECT MAX(finished_at) FROM sync_runs")
        return stored_moment(rows[0][0])

    @contextmanager
    def writing(self) -> Iterator[Connection]:
        """One transaction that writes the register (the sync's, the deadlines', retention's): writers
        are serialised (PostgreSQL: a transaction advisory lock; SQLite: the write lock, taken before
        anything is read), and a database error is a one-line RegisterError."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self.engine.begin() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_ADVISORY_LOCK})")
                elif conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")  # take the write lock before reading state
                yield conn
        except SQLAlchemyError as exc:
            raise RegisterError(f"register {self.describe()}: {describe_error(exc)}") from None

    @contextmanager
    def transaction(self) -> Iterator[RegisterTransaction]:
        """The sync's writes, in one `writing` transaction."""
        with self.writing() as conn:
            yield RegisterTransaction(conn)

    def is_empty(self) -> bool:
        """No alert and no history yet: the register has never been synced."""
        with self.transaction() as tx:
            return tx.is_empty()

    def dispose(self) -> None:
        if "outbox" in self.__dict__:  # the outbox holds a connection of its own (and perhaps its lock)
            self.outbox.close()
        self.engine.dispose()

    def __enter__(self) -> Register:
        return self

    def __exit__(self, *exc: object) -> None:
        self.dispose()

    # The register's repositories, by the domain's names: the services reach the register's data only
    # through these (each a small class holding the SQL for one part of the domain), typed in each
    # service by a Protocol of what it uses. Imported on first use so that a step loads only its own.
    @functools.cached_property
    def outbox(self) -> Outbox:
        from cautionflow.adapters.outbox import Outbox

        return Outbox(self.engine)

    @functools.cached_property
    def letter_queue(self) -> LetterQueue:
        from cautionflow.adapters.letters import LetterQueue

        return LetterQueue(self.engine)

    @functools.cached_property
    def letter_flags(self) -> LetterFlags:
        from cautionflow.adapters.letters import LetterFlags

        return LetterFlags(self.engine)

    @functools.cached_property
    def letter_reads(self) -> LetterReads:
        from cautionflow.adapters.letters import LetterReads

        return LetterReads(self.engine)

    @functools.cached_property
    def subject_access(self) -> SubjectAccessReads:
        from cautionflow.adapters.subject_access_reads import SubjectAccessReads

        return SubjectAccessReads(self.engine)

    @functools.cached_property
    def deadlines(self) -> DeadlineStore:
        from cautionflow.adapters.deadline_store import DeadlineStore

        return DeadlineStore(self.engine, self.writing)

    @functools.cached_property
    def digest_reads(self) -> DigestReads:
        from cautionflow.adapters.digest_reads import DigestReads

        return DigestReads(self.engine)

    @functools.cached_property
    def urgent_reads(self) -> UrgentReads:
        from cautionflow.adapters.urgent_reads import UrgentReads

        return UrgentReads(self.engine)

    @functools.cached_property
    def appeal_reads(self) -> AppealReads:
        from cautionflow.adapters.appeal_reads import AppealReads

        return AppealReads(self.engine)

    @functools.cached_property
    def figures(self) -> RegisterFigures:
        """Counts for the status command, the register page, the sync watch and the run summary:
        read through `connect` (an existing register, one-line errors), as those callers always did."""
        from cautionflow.adapters.figures import RegisterFigures

        return RegisterFigures(self.connect)

    @functools.cached_property
    def governance(self) -> GovernanceReads:
        from cautionflow.adapters.governance_reads import GovernanceReads

        return GovernanceReads(self.engine)

    @functools.cached_property
    def lookups(self) -> LookupStore:
        """API tokens, the look-ups' searches and the log of every read (`services.lookup`)."""
        from cautionflow.adapters.lookup_store import LookupStore

        return LookupStore(self.engine)

    @functools.cached_property
    def retention(self) -> RetentionStore:
        from cautionflow.adapters.retention_store import RetentionStore

        return RetentionStore(self.writing)


def _analyze_after(rows: int) -> float:
    """Rows changed beyond which a sync gathers the planner's statistics again: PostgreSQL's own
    defaults for autovacuum's (`autovacuum_analyze_threshold` 50 + `autovacuum_analyze_scale_factor`
    0.1 of the table)."""
    return 50 + 0.1 * rows


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

        changed = len(plan.inserts) + len(plan.updates) + len(plan.left_source)
        if self.conn.dialect.name == "postgresql" and changed > _analyze_after(plan.unchanged + changed):
            # The planner's statistics again after a large change, as autovacuum would gather them
            # (the same threshold), since a server may run with autovacuum off (this project's CI
            # server does): the first load's statistics would otherwise describe a register that is
            # no longer there, and look-ups by postcode got a plan 30 times dearer without any
            # (FirstLoad.build_indexes). In this transaction: it sees the rows just written.
            self.conn.exec_driver_sql("ANALYZE alerts")

    def is_empty(self) -> bool:
        """No alert and no history yet: the register has never been synced."""
        _, alerts = fetch_all(self.conn, "SELECT 1 FROM alerts LIMIT 1")
        _, history = fetch_all(self.conn, "SELECT 1 FROM alert_history LIMIT 1")
        return not alerts and not history

    @contextmanager
    def first_load(self, *, run_id: str, as_of: dt.date) -> Iterator[FirstLoad]:
        """Load the first sync of an empty register, chunk by chunk (`FirstLoad.add`)."""
        load = FirstLoad(self.conn, run_id=run_id, day=as_of.isoformat())
        try:
            yield load
        except BaseException:
            load.abandon()
            raise
        load.finish()

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
        self, *, run_id: str, as_of: dt.date, started_at: dt.datetime, finished_at: dt.datetime,
        summary: dict[str, Any],
    ) -> None:
        execute_many(
            self.conn,
            "INSERT INTO sync_runs (run_id, as_of, started_at, finished_at, summary) VALUES (?, ?, ?, ?, ?)",
            [(run_id, as_of.isoformat(), _utc(started_at), _utc(finished_at), json.dumps(summary, sort_keys=True))],
        )


def _records(frame: pd.DataFrame, columns: tuple[str, ...]) -> Iterator[tuple[Any, ...]]:
    """Rows as plain Python tuples (no numpy scalars, None for missing) for the driver."""
    from cautionflow.frames import plain_values

    return zip(*(plain_values(frame[c]) for c in columns), strict=True)


def _utc(moment: dt.datetime) -> str:
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S+00:00")


def stored_moment(value: object) -> dt.datetime | None:
    """A timestamp read back through the raw driver (aware on PostgreSQL, `_utc` text on SQLite),
    as an aware UTC datetime."""
    if value is None:
        return None
    moment = value if isinstance(value, dt.datetime) else dt.datetime.fromisoformat(str(value))
    return (moment if moment.tzinfo else moment.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)


class FirstLoad:
    """The first sync of an empty register: every validated row is a new alert, with one
    "inserted" history row.

    Rows go in without index upkeep: building each index once at the end is much cheaper than
    keeping it up to date row by row (on PostgreSQL the primary key too; validation has already
    made the ids unique, as duplicates are quarantined). A helper thread (`BackgroundWriter`)
    does the database's share: on PostgreSQL it COPYs each chunk's alerts and history while the
    caller validates the next chunk, so the server's parsing and storing overlap the validation
    instead of following it; on both it builds the indexes (and on SQLite writes the history from
    the rows loaded) while the caller frees what it read. SQLite's rows are inserted by the
    caller's thread: its driver needs the GIL for every row.
    """

    _HISTORY_COLUMNS = ("alert_id", "run_id", "as_of", "change")

    def __init__(self, conn: Connection, *, run_id: str, day: str) -> None:
        from cautionflow.adapters.register_schema import alert_history, alerts

        self.conn = conn
        self.run_id, self.day = run_id, day
        self._indexes = [*alerts.indexes, *alert_history.indexes]
        for index in self._indexes:
            index.drop(conn)
        self._primary_key: str | None = None
        self._postgres = conn.dialect.name == "postgresql"
        if self._postgres:
            conn.exec_driver_sql("SET LOCAL maintenance_work_mem = '256MB'")  # index builds sort in memory
            _, found = fetch_all(
                conn, "SELECT conname FROM pg_constraint WHERE conrelid = 'alerts'::regclass AND contype = 'p'"
            )
            self._primary_key = found[0][0]
            conn.exec_driver_sql(f'ALTER TABLE alerts DROP CONSTRAINT "{self._primary_key}"')
        self._writer = BackgroundWriter(conn)

    def add(self, batch: ValidatedBatch) -> None:
        """Load one validated chunk."""
        import pandas as pd

        from cautionflow.domain.merge import target_state
        from cautionflow.frames import plain_values

        columns = batch.columns
        state = [plain_values(s) for s in target_state(pd.Series(columns["status"], dtype=object))]
        stamps = (self.run_id, self.day, self.run_id, self.day)
        names = (*SOURCE_COLUMNS, "dq_flags", "row_hash")
        if not self._postgres:
            rows = len(state[0])
            values = [columns[c].tolist() for c in names] + state + [[stamp] * rows for stamp in stamps]
            bulk_insert(self.conn, "alerts", ALERT_COLUMNS, zip(*values, strict=True))
            return
        fields = [_copy_fields_of(c, batch) for c in names] + [copy_fields(column) for column in state]
        self._writer.send("alerts", ALERT_COLUMNS, fields, stamps, formatted=True)
        self._writer.send("alert_history", self._HISTORY_COLUMNS, fields[:1], (self.run_id, self.day, "inserted"), formatted=True)

    def build_indexes(self) -> None:
        """Start building the indexes once every row is in; the caller may go on (freeing what it
        read, say) while the database builds them. `finish` waits for them."""
        from sqlalchemy.schema import CreateIndex

        if self._postgres:
            self._writer.execute(f'ALTER TABLE alerts ADD CONSTRAINT "{self._primary_key}" PRIMARY KEY (alert_id)')
        else:
            self._writer.execute(
                "INSERT INTO alert_history (alert_id, run_id, as_of, change) SELECT alert_id, ?, ?, 'inserted' FROM alerts",
                (self.run_id, self.day),
            )
        for index in self._indexes:
            self._writer.execute(str(CreateIndex(index).compile(dialect=self.conn.dialect)))
        if self._postgres:
            # The planner's statistics for the rows just loaded. Autovacuum would gather them a
            # minute after the commit on a default server, but not where it is turned off (as on
            # this project's CI server), and until then the planner guesses: at 100,000 alerts it
            # ANDed the register_state index with the postcode's, 3 ms of PostgreSQL CPU a look-up
            # instead of 0.1 (bench/lookup.py). Inside the load's transaction: it sees the rows.
            self._writer.execute("ANALYZE alerts")

    def finish(self) -> None:
        self._writer.close()

    def abandon(self) -> None:
        """Stop the helper thread before the transaction is rolled back."""
        self._writer.close(raise_errors=False)


def _copy_fields_of(column: str, batch: ValidatedBatch) -> list[str]:
    """One column of a batch as COPY fields; a factorised column formats each distinct value once."""
    import numpy as np

    if column in batch.factorised:
        codes, distinct = batch.factorised[column]
        return np.array(copy_fields(distinct.tolist()), dtype=object)[codes].tolist()
    return copy_fields(batch.columns[column].tolist())
