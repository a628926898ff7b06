"""The outbox and the disclosure log: outgoing messages are written first, sent, then marked.

A message's life: `pending` (queued, nothing sent) -> `sending` (claimed by a delivery run; the
server may or may not have it) -> `sent` (the server accepted it; the disclosure log written in
the same transaction) or `failed` (permanently refused, with the server's reply) or back to
`pending` (a temporary failure, for the next run) or `uncertain` (the whole message went and the
server never answered its end, within RFC 5321's 10 minutes, or dropped the connection before it
did: the server may have it). A newer message of the same kind for the same recipient makes an
older `pending` one `superseded`: it was never sent and is out of date.

`uncertain` is never claimed again by a run: sending it blindly is how a slow server got five
copies of one digest. Operations see it (`cautionflow status`, the run summary, the register page)
and only `cautionflow mail resend-failed --include-uncertain` queues it again (`pending`), or
marks it `superseded` when a later message replaces it. Nothing is written to the disclosure log
for it: that records what the server is known to have accepted.

Every state change is its own short transaction on one held connection, so the server's
acceptance is recorded before anything else can fail; `mark_sent_many` records the acceptances
several connections received meanwhile in one transaction (a group commit), each connection
waiting for it before it ends another message. A run that dies between the server's
acceptance and the mark leaves the message `sending`; the next run sends it again with the SAME
Message-ID, which receiving systems use to drop the duplicate, and the message is recorded once.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import bulk_insert, describe_error, placeholder, safe_url, sqlite_path

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

STATUSES = ("pending", "sending", "sent", "failed", "uncertain", "superseded")
OUTSTANDING = ("pending", "sending")
# A newer digest, reminder or appeals list replaces an unsent older one to the same recipient;
# letters never do: each letter is owed on its own.
SUPERSEDING_KINDS = frozenset({"digest", "reminder", "appeals"})
_CHUNK = 500
# One delivery run at a time per kind of message on PostgreSQL: the advisory lock's two-key form,
# (_DELIVERY_LOCK, the kind's number).
_DELIVERY_LOCK = 7_2026_1124
_WAL_CHECKPOINT_PAGES = 16_000


@dataclass(frozen=True)
class QueuedMessage:
    """A rendered message to put in the outbox, with the alerts it discloses once sent."""

    idempotency_key: str
    kind: str
    recipient_name: str
    recipient_email: str
    recipient_role: str
    as_of: dt.date
    content_hash: str
    message_id: str
    subject: str
    message: str
    current_ids: tuple[str, ...]
    lifted_ids: tuple[str, ...] = ()
    # What the message shows of each current alert that later messages compare with: alert_id ->
    # JSON text, opaque here, written to the disclosure log's `shown` when the server accepts it
    # (the digests' "Changed" section, the urgent notices). Never personal data.
    shown: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class OutboxMessage:
    id: int
    idempotency_key: str
    kind: str
    recipient_name: str
    recipient_email: str
    recipient_role: str
    as_of: dt.date
    message_id: str
    subject: str
    message: str
    current_ids: tuple[str, ...]
    lifted_ids: tuple[str, ...]
    status: str
    attempts: int
    last_error: str | None
    shown: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PreviousMessage:
    outbox_id: int
    as_of: dt.date
    alert_ids: frozenset[str]
    # The disclosure log's `shown` for each of those alerts (JSON text), where the message recorded one.
    shown: Mapping[str, str] = field(default_factory=dict)
    sent_at: dt.datetime | None = None


@dataclass(frozen=True)
class Disclosure:
    """One line of "who was told about this alert?"."""

    alert_id: str
    recipient_name: str
    recipient_email: str
    recipient_role: str
    kind: str
    listed_as: str
    message_id: str
    disclosed_on: dt.date
    disclosed_at: dt.datetime


@dataclass(frozen=True)
class FailedMessage:
    """A message refused for good (`failed`) or whose acceptance is unknown (`uncertain`)."""

    id: int
    message_id: str
    recipient_name: str
    recipient_email: str
    recipient_role: str
    as_of: dt.date
    last_error: str | None
    replaced: bool  # a later message of the same kind to the same recipient was sent or is queued
    status: str = "failed"


@dataclass(frozen=True)
class MessageState:
    idempotency_key: str
    message_id: str
    recipient_name: str
    recipient_email: str
    as_of: dt.date
    status: str
    last_error: str | None


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _kind_number(kind: str) -> int:
    """A kind's delivery lock number: stable across processes and versions (crc32, not hash(), which
    Python salts per process), within PostgreSQL's int4 for the advisory lock's second key."""
    import zlib

    return zlib.crc32(kind.encode()) & 0x7FFF_FFFF


def _chunks(items: Sequence[Any]) -> Iterator[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class Outbox:
    """Outbox reads and writes on one connection of the register's engine, one transaction each."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self._conn: Connection | None = None
        self._batch: Connection | None = None  # the open transaction of `batch()`, if any
        self._locked = False
        self._locked_kind: str | None = None  # PostgreSQL: whose advisory lock to release
        self._lock_file: Any = None

    # -- plumbing --------------------------------------------------------------------------------

    def _connection(self) -> Connection:
        if self._conn is None or self._conn.closed or self._conn.invalidated:
            self._conn = self.engine.connect()
            if self._conn.dialect.name == "sqlite":
                # Marking a message sent rewrites its row (the message text with it): checkpoint
                # the write-ahead log every 64 MB rather than every 4 MB during a delivery run.
                # SQLite checkpoints it anyway when the last connection closes.
                self._conn.exec_driver_sql(f"PRAGMA wal_autocheckpoint = {_WAL_CHECKPOINT_PAGES}")
                self._conn.commit()
        return self._conn

    @contextmanager
    def _transaction(self) -> Iterator[Connection]:
        from sqlalchemy.exc import SQLAlchemyError

        from cautionflow.adapters.register import RegisterError

        try:
            if self._batch is not None:  # inside batch(): its transaction commits
                yield self._batch
                return
            conn = self._connection()
            with conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise RegisterError(f"register {safe_url(str(self.engine.url))}: {describe_error(exc)}") from None

    @contextmanager
    def batch(self) -> Iterator[None]:
        """One transaction for every change made inside it (committed at the end, or rolled back
        entirely on an error): a group commit instead of one commit per state change."""
        if self._batch is not None:
            yield
            return
        with self._transaction() as conn:
            self._batch = conn
            try:
                yield
            finally:
                self._batch = None

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None

    def acquire_delivery_lock(self, kind: str) -> bool:
        """True when this run may deliver `kind`: only one run claims and sends a kind at a time (a
        second would resend what the first is sending, since `claim` takes back messages left
        `sending`). Per kind, because every claim is of one kind: a long digests send (1,000 digests
        at a provider's 30 a minute is over half an hour) must not hold up an urgent notice, which
        has to reach the visiting staff within the hour. PostgreSQL: a session advisory lock on the
        held connection; SQLite: a lock file beside the database; others: no lock."""
        conn = self._connection()
        if conn.dialect.name == "postgresql":
            with self._transaction() as tx:
                self._locked = bool(tx.exec_driver_sql(
                    f"SELECT pg_try_advisory_lock({_DELIVERY_LOCK}, {_kind_number(kind)})").scalar())
            self._locked_kind = kind if self._locked else None
            return self._locked
        path = sqlite_path(self.engine.url) if conn.dialect.name == "sqlite" else None
        if path is None:
            self._locked = True
            return True
        import fcntl

        handle = open(path.with_name(f"{path.name}.delivery.{_kind_number(kind)}.lock"), "a")  # held until release
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.close()
            return False
        self._lock_file, self._locked = handle, True
        return True

    def release_delivery_lock(self) -> None:
        if not self._locked:
            return
        self._locked = False
        if self._lock_file is not None:
            import fcntl

            fcntl.flock(self._lock_file, fcntl.LOCK_UN)
            self._lock_file.close()
            self._lock_file = None
        elif self._conn is not None and self._conn.dialect.name == "postgresql" and self._locked_kind is not None:
            with self._transaction() as tx:
                tx.exec_driver_sql(f"SELECT pg_advisory_unlock({_DELIVERY_LOCK}, {_kind_number(self._locked_kind)})")
            self._locked_kind = None

    @contextmanager
    def delivery_lock(self, kind: str) -> Iterator[bool]:
        got = self.acquire_delivery_lock(kind)
        try:
            yield got
        finally:
            self.release_delivery_lock()

    # -- composing -------------------------------------------------------------------------------

    def states(self, keys: Iterable[str]) -> dict[str, MessageState]:
        from sqlalchemy import select

        t = schema.outbox
        keys = list(dict.fromkeys(keys))
        found: dict[str, MessageState] = {}
        with self._transaction() as conn:
            for chunk in _chunks(keys):
                rows = conn.execute(
                    select(*_state_columns(t)).where(t.c.idempotency_key.in_(chunk))
                )
                for r in rows:
                    found[r.idempotency_key] = _state(r)
        return found

    def previous(self, kind: str, as_of: dt.date) -> dict[tuple[str, str], PreviousMessage]:
        """Each recipient's latest sent message of this kind up to `as_of`, with the alerts it listed
        as current (from the disclosure log: what they were actually told)."""
        from sqlalchemy import func, select

        t, d = schema.outbox, schema.disclosures
        with self._transaction() as conn:
            latest = (
                select(func.max(t.c.id))
                .where(t.c.kind == kind, t.c.status == "sent", t.c.as_of <= as_of)
                .group_by(t.c.recipient_name, t.c.recipient_email)
            )
            heads = conn.execute(
                select(t.c.id, t.c.recipient_name, t.c.recipient_email, t.c.as_of, t.c.sent_at)
                .where(t.c.id.in_(latest))
            ).all()
            ids: dict[int, set[str]] = {r.id: set() for r in heads}
            shown: dict[int, dict[str, str]] = {r.id: {} for r in heads}
            for chunk in _chunks(list(ids)):
                for outbox_id, alert_id, seen in conn.execute(
                    select(d.c.outbox_id, d.c.alert_id, d.c.shown)
                    .where(d.c.outbox_id.in_(chunk), d.c.listed_as == "current")
                ):
                    ids[outbox_id].add(alert_id)
                    if seen is not None:
                        shown[outbox_id][alert_id] = seen
        return {
            (r.recipient_name, r.recipient_email): PreviousMessage(
                r.id, _date(r.as_of), frozenset(ids[r.id]), shown[r.id], _aware(r.sent_at)
            )
            for r in heads
        }

    def revive(self, keys: Sequence[str], *, now: dt.datetime) -> None:
        """Queue superseded messages again (the content went back to what they say), superseding
        whatever else is pending for the same recipient."""
        from sqlalchemy import select, update

        t = schema.outbox
        with self._transaction() as conn:
            for key in keys:
                row = conn.execute(
                    select(t.c.kind, t.c.recipient_name, t.c.recipient_email).where(t.c.idempotency_key == key)
                ).one()
                conn.execute(
                    update(t)
                    .where(t.c.kind == row.kind, t.c.recipient_name == row.recipient_name,
                           t.c.recipient_email == row.recipient_email, t.c.status == "pending")
                    .values(status="superseded", updated_at=now)
                )
                conn.execute(
                    update(t)
                    .where(t.c.idempotency_key == key, t.c.status == "superseded")
                    .values(status="pending", updated_at=now)
                )

    def enqueue(
        self, messages: Sequence[QueuedMessage], *, run_id: str, now: dt.datetime, claim: bool = False
    ) -> list[OutboxMessage]:
        """Queue messages whose key is new (others are left as they are); for SUPERSEDING_KINDS an
        older pending message of the same kind to the same recipient is superseded. With `claim`, they are queued already
        claimed by this run for sending (`sending`, attempt 1). Returns the messages queued."""
        from sqlalchemy import bindparam, select, update

        if not messages:
            return []
        t = schema.outbox
        status, attempts = ("sending", 1) if claim else ("pending", 0)
        with self._transaction() as conn:
            keys = [m.idempotency_key for m in messages]
            existing: set[str] = set()
            for chunk in _chunks(keys):
                existing.update(conn.execute(select(t.c.idempotency_key).where(t.c.idempotency_key.in_(chunk))).scalars())
            new = [m for m in messages if m.idempotency_key not in existing]
            if not new:
                return []
            replacing = [m for m in new if m.kind in SUPERSEDING_KINDS]
            if replacing:
                conn.execute(
                    update(t)
                    .where(
                        t.c.kind == bindparam("b_kind"),
                        t.c.recipient_name == bindparam("b_name"),
                        t.c.recipient_email == bindparam("b_email"),
                        t.c.status == "pending",
                    )
                    .values(status="superseded", updated_at=now),
                    [{"b_kind": m.kind, "b_name": m.recipient_name, "b_email": m.recipient_email} for m in replacing],
                )
            conn.execute(
                _insert_ignoring_duplicates(conn),
                [
                    {
                        "idempotency_key": m.idempotency_key, "kind": m.kind, "recipient_name": m.recipient_name,
                        "recipient_email": m.recipient_email, "recipient_role": m.recipient_role, "as_of": m.as_of,
                        "content_hash": m.content_hash, "message_id": m.message_id, "subject": m.subject,
                        "message": m.message,
                        "disclosed_alerts": json.dumps(_disclosed(m.current_ids, m.lifted_ids, m.shown)),
                        "status": status, "attempts": attempts, "last_error": None, "created_run": run_id,
                        "created_at": now, "updated_at": now, "sent_at": None,
                    }
                    for m in new
                ],
            )
            ids: dict[str, int] = {}
            for chunk in _chunks([m.idempotency_key for m in new]):
                ids.update(
                    (key, row_id)
                    for row_id, key, queued_by in conn.execute(
                        select(t.c.id, t.c.idempotency_key, t.c.created_run).where(t.c.idempotency_key.in_(chunk))
                    )
                    if queued_by == run_id
                )
        return [
            OutboxMessage(
                ids[m.idempotency_key], m.idempotency_key, m.kind, m.recipient_name, m.recipient_email,
                m.recipient_role, m.as_of, m.message_id, m.subject, m.message, m.current_ids, m.lifted_ids,
                status, attempts, None, m.shown,
            )
            for m in new
            if m.idempotency_key in ids
        ]

    # -- delivering ------------------------------------------------------------------------------

    def claim(self, kind: str, *, now: dt.datetime, exclude: Collection[int] = ()) -> list[OutboxMessage]:
        """Every outstanding message of this kind, marked `sending`, but those in `exclude` (this
        run's own, already on their way). Messages a crashed run left `sending` are claimed too:
        they are sent again with the same Message-ID."""
        from sqlalchemy import select, update

        t = schema.outbox
        skip = set(exclude)
        with self._transaction() as conn:
            ids = [
                row_id
                for row_id in conn.execute(
                    select(t.c.id).where(t.c.kind == kind, t.c.status.in_(OUTSTANDING)).order_by(t.c.id)
                ).scalars()
                if row_id not in skip
            ]
            rows = []
            for chunk in _chunks(ids):
                rows.extend(
                    conn.execute(
                        select(
                            t.c.id, t.c.idempotency_key, t.c.kind, t.c.recipient_name, t.c.recipient_email,
                            t.c.recipient_role, t.c.as_of, t.c.message_id, t.c.subject, t.c.message,
                            t.c.disclosed_alerts, t.c.attempts, t.c.last_error,
                        )
                        .where(t.c.id.in_(chunk))
                        .order_by(t.c.id)
                    ).all()
                )
                conn.execute(
                    update(t).where(t.c.id.in_(chunk)).values(status="sending", attempts=t.c.attempts + 1, updated_at=now)
                )
        claimed = []
        for r in rows:
            disclosed = json.loads(r.disclosed_alerts)
            claimed.append(
                OutboxMessage(
                    r.id, r.idempotency_key, r.kind, r.recipient_name, r.recipient_email, r.recipient_role,
                    _date(r.as_of), r.message_id, r.subject, r.message, tuple(disclosed.get("current", ())),
                    tuple(disclosed.get("lifted", ())), "sending", r.attempts + 1, r.last_error,
                    disclosed.get("shown", {}),
                )
            )
        return claimed

    def mark_sent(self, message: OutboxMessage, *, at: dt.datetime) -> bool:
        """The server accepted it: mark it sent and log what it disclosed, in one transaction.

        On the delivery's hot path (once per message, before the next one is completed), so it talks to
        the driver directly: two statements and a commit."""
        with self._transaction() as conn:
            stamp = _timestamp(conn, at)
            changed = _execute(
                conn,
                "UPDATE outbox SET status = 'sent', sent_at = ?, updated_at = ?, last_error = NULL "
                "WHERE id = ? AND status = 'sending'",
                (stamp, stamp, message.id),
            )
            if changed != 1:
                return False  # already recorded: never log a disclosure twice
            listed = [(a, "current") for a in message.current_ids] + [(a, "lifted") for a in message.lifted_ids]
            day = message.as_of.isoformat()
            bulk_insert(
                conn,
                "disclosures",
                _DISCLOSURE_COLUMNS,
                [
                    (message.id, message.message_id, message.kind, alert_id, listed_as, message.recipient_name,
                     message.recipient_email, message.recipient_role, day, stamp,
                     message.shown.get(alert_id) if listed_as == "current" else None)
                    for alert_id, listed_as in listed
                ],
            )
        return True

    def mark_sent_many(self, messages: Sequence[OutboxMessage], *, at: dt.datetime) -> int:
        """`mark_sent` for messages the server accepted meanwhile, committed together; returns how
        many were newly recorded. If recording one fails, the group is rolled back, those before
        it are recorded one by one, and the error is raised: nothing accepted is left unrecorded
        that could be recorded."""
        done: list[OutboxMessage] = []
        recorded = 0
        try:
            with self.batch():
                for message in messages:
                    recorded += bool(self.mark_sent(message, at=at))
                    done.append(message)
        except Exception:
            with contextlib.suppress(Exception):
                for message in done:
                    self.mark_sent(message, at=at)
            raise
        return recorded

    def mark_pending(self, message_id: str, error: str, *, now: dt.datetime) -> None:
        self._set_status(message_id, "pending", error, now)

    def mark_failed(self, message_id: str, error: str, *, now: dt.datetime) -> None:
        self._set_status(message_id, "failed", error, now)

    def mark_uncertain(self, message_id: str, error: str, *, now: dt.datetime) -> None:
        """No reply to the end of the message: the server may have it. Never claimed again."""
        self._set_status(message_id, "uncertain", error, now)

    def _set_status(self, message_id: str, status: str, error: str, now: dt.datetime) -> None:
        with self._transaction() as conn:
            _execute(
                conn,
                "UPDATE outbox SET status = ?, last_error = ?, updated_at = ? WHERE message_id = ? AND status = 'sending'",
                (status, error[:2000], _timestamp(conn, now), message_id),
            )

    # -- operations ------------------------------------------------------------------------------

    def failed(
        self, kind: str, *, since: dt.date | None = None, statuses: Collection[str] = ("failed",)
    ) -> list[FailedMessage]:
        """Messages of this kind the server refused for good, oldest first (as-of `since` or later),
        each with whether a later message of the kind to the same recipient was sent or is queued.
        `statuses=("failed", "uncertain")` adds those whose acceptance is unknown."""
        from sqlalchemy import and_, exists, select

        t = schema.outbox
        later = t.alias("later")
        replaced = exists().where(
            and_(
                later.c.kind == t.c.kind, later.c.recipient_name == t.c.recipient_name,
                later.c.recipient_email == t.c.recipient_email, later.c.id > t.c.id,
                later.c.status.in_(("sent", *OUTSTANDING)),
            )
        )
        query = select(
            t.c.id, t.c.message_id, t.c.recipient_name, t.c.recipient_email, t.c.recipient_role, t.c.as_of,
            t.c.last_error, replaced.label("replaced"), t.c.status,
        ).where(t.c.kind == kind, t.c.status.in_(tuple(statuses)))
        if since is not None:
            query = query.where(t.c.as_of >= since)
        with self._transaction() as conn:
            rows = conn.execute(query.order_by(t.c.id)).all()
        return [FailedMessage(r[0], r[1], r[2], r[3], r[4], _date(r[5]), r[6], bool(r[7]), r[8]) for r in rows]

    def kinds(self) -> list[str]:
        """Every kind of message the outbox has held, sorted: what `mail resend-failed` looks at
        when no kind is named (a new kind of mail needs no list of kinds kept up to date)."""
        from sqlalchemy import select

        t = schema.outbox
        with self._transaction() as conn:
            return sorted(conn.execute(select(t.c.kind).distinct()).scalars())

    def requeue_failed(self, ids: Collection[int], *, now: dt.datetime) -> int:
        """Failed or uncertain messages queued again (`pending`: the next delivery sends them, with
        the same Message-ID); only messages still `failed` or `uncertain` change. Returns how many did."""
        return self._change_failed(ids, "pending", now)

    def retire_failed(self, ids: Collection[int], *, now: dt.datetime) -> int:
        """Failed or uncertain messages that will not be sent (a later message replaces them, or the
        address was replaced): `superseded`, keeping the last error. Returns how many changed."""
        return self._change_failed(ids, "superseded", now)

    def _change_failed(self, ids: Collection[int], status: str, now: dt.datetime) -> int:
        from sqlalchemy import update

        t = schema.outbox
        changed = 0
        with self._transaction() as conn:
            for chunk in _chunks(sorted(ids)):
                changed += conn.execute(
                    update(t)
                    .where(t.c.id.in_(chunk), t.c.status.in_(("failed", "uncertain")))
                    .values(status=status, updated_at=now)
                ).rowcount
        return changed

    def outstanding(self, kind: str) -> list[MessageState]:
        """Messages not yet accepted (pending, or left sending by a run that died)."""
        from sqlalchemy import select

        t = schema.outbox
        with self._transaction() as conn:
            rows = conn.execute(
                select(*_state_columns(t)).where(t.c.kind == kind, t.c.status.in_(OUTSTANDING)).order_by(t.c.id)
            ).all()
        return [_state(r) for r in rows]

    def uncertain(self, kind: str) -> list[MessageState]:
        """Messages whose acceptance is unknown, oldest first: waiting for a person, never resent."""
        from sqlalchemy import select

        t = schema.outbox
        with self._transaction() as conn:
            rows = conn.execute(
                select(*_state_columns(t)).where(t.c.kind == kind, t.c.status == "uncertain").order_by(t.c.id)
            ).all()
        return [_state(r) for r in rows]

    def disclosures_for_alert(self, alert_id: str) -> list[Disclosure]:
        """Who was told about this alert, in which message, when: the answer to "who was told about me?"."""
        from sqlalchemy import select

        d = schema.disclosures
        with self._transaction() as conn:
            rows = conn.execute(
                select(
                    d.c.alert_id, d.c.recipient_name, d.c.recipient_email, d.c.recipient_role, d.c.kind,
                    d.c.listed_as, d.c.message_id, d.c.disclosed_on, d.c.disclosed_at,
                )
                .where(d.c.alert_id == alert_id)
                .order_by(d.c.disclosed_at, d.c.id)
            ).all()
        return [Disclosure(*r[:7], _date(r[7]), r[8]) for r in rows]


_DISCLOSURE_COLUMNS = (
    "outbox_id", "message_id", "kind", "alert_id", "listed_as", "recipient_name", "recipient_email",
    "recipient_role", "disclosed_on", "disclosed_at", "shown",
)


def _disclosed(current: Sequence[str], lifted: Sequence[str], shown: Mapping[str, str]) -> dict[str, Any]:
    """The outbox's `disclosed_alerts`: `shown` only when the message records it (older kinds do not)."""
    disclosed: dict[str, Any] = {"current": list(current), "lifted": list(lifted)}
    if shown:
        disclosed["shown"] = dict(shown)
    return disclosed


def _aware(moment: Any) -> dt.datetime | None:
    """A stored timestamp as an aware datetime (SQLite gives back naive UTC)."""
    if moment is None:
        return None
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=dt.UTC)


def _timestamp(conn: Connection, moment: dt.datetime) -> Any:
    """A timestamp for the driver: aware on PostgreSQL; on SQLite, UTC text as SQLAlchemy writes it."""
    if conn.dialect.name == "sqlite":
        return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S.%f")
    return moment


def _execute(conn: Connection, statement: str, params: Sequence[Any]) -> int:
    """One statement through the driver (`?` for its marker); returns the rows it changed."""
    cursor = conn.connection.dbapi_connection.cursor()
    try:
        cursor.execute(statement.replace("?", placeholder(conn)), tuple(params))
        return cursor.rowcount
    finally:
        cursor.close()


def _state_columns(t: Any) -> tuple[Any, ...]:
    return (t.c.idempotency_key, t.c.message_id, t.c.recipient_name, t.c.recipient_email, t.c.as_of, t.c.status,
            t.c.last_error)


def _state(r: Any) -> MessageState:
    return MessageState(r[0], r[1], r[2], r[3], _date(r[4]), r[5], r[6])


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    """INSERT that skips a key another run queued meanwhile (ON CONFLICT DO NOTHING)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(schema.outbox).on_conflict_do_nothing(index_elements=["idempotency_key"])
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(schema.outbox).on_conflict_do_nothing(index_elements=["idempotency_key"])
    from sqlalchemy import insert

    return insert(schema.outbox)
