"""The register's side of the look-ups (services/lookup.py): API tokens, the searches, and the log
of every read.

A read and its log row are one transaction (`LookupStore.reading`): the service searches, writes
the log, and only a committed log lets the answer out. On PostgreSQL that transaction takes no
register-wide lock, so look-ups go on while the morning sync writes; on SQLite (one machine) it
takes the write lock first (`BEGIN IMMEDIATE`, as `Register.writing` does), since a reader that
later wants to write could otherwise fail at once on a busy database.

Timestamps are stored in UTC (SQLite keeps them as text, which compares in order only in one
offset) and read back as aware UTC datetimes.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import describe_error

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine
    from sqlalchemy.sql.elements import ColumnElement

    from cautionflow.domain.lookup import LookupQuery

# The alert page's alert: every register field but the note (and the sync's bookkeeping).
ALERT_PAGE_FIELDS = (
    "alert_id", "alert_code", "subject_type", "person_ref", "person_name", "tenancy_ref", "asset_ref", "address",
    "postcode", "area", "effective_from", "ends_on", "last_reviewed_on", "review_outcome", "status",
    "notify_resident", "no_notify_reason", "notified_on", "told_on", "appeal_received_on", "appeal_decided_on",
    "appeal_outcome", "source", "contact_instruction", "resident_reason", "preferred_channel", "language",
    "large_print", "dq_flags", "register_state", "ended_reason", "first_seen_on", "last_changed_on", "anonymised_on",
)
DEADLINE_FIELDS = ("review_due", "review_window_opens", "expires_on", "appeal_deadline", "appeal_response_due",
                   "overdue", "error", "evaluated_on")
READS_SHOWN = 500  # the alert page lists the latest reads; the log keeps them all


def utc(moment: dt.datetime) -> dt.datetime:
    """An aware moment as UTC without its offset: how the look-up tables store time on both backends."""
    return moment.astimezone(dt.UTC).replace(tzinfo=None)


def aware(value: Any) -> dt.datetime | None:
    from cautionflow.adapters.register import stored_moment

    return stored_moment(value)


def _register_error(exc: BaseException) -> Exception:
    from cautionflow.adapters.register import RegisterError

    return RegisterError(f"register: {describe_error(exc)}")


def _like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _token(row: Any) -> dict[str, Any]:
    record = dict(row._mapping)
    for name in ("created_at", "revoked_at", "last_used_at"):
        record[name] = aware(record[name])
    return record


class LookupStore:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    @contextmanager
    def _connect(self, *, write: bool) -> Iterator[Connection]:
        """A transaction for writing; for one statement (`write=False`), an autocommit connection:
        no BEGIN and COMMIT around it, two round trips fewer. One statement in autocommit is still
        one transaction, committed (durably: synchronous_commit stays on) before its rows come back."""
        from sqlalchemy.exc import SQLAlchemyError

        try:
            if not write:
                with self.engine.connect() as conn:
                    yield conn.execution_options(isolation_level="AUTOCOMMIT")
                return
            with self.engine.begin() as conn:
                if conn.dialect.name == "sqlite" and not conn.connection.dbapi_connection.in_transaction:
                    conn.exec_driver_sql("BEGIN IMMEDIATE")
                yield conn
        except SQLAlchemyError as exc:
            raise _register_error(exc) from None

    # --- tokens -----------------------------------------------------------------------------------

    def add_token(
        self, *, token_hash: str, prefix: str, recipient_name: str, recipient_email: str, recipient_role: str,
        created_at: dt.datetime, expires_on: dt.date | None,
    ) -> dict[str, Any]:
        t = schema.api_tokens
        with self._connect(write=True) as conn:
            token_id = conn.execute(
                t.insert().values(
                    token_hash=token_hash, prefix=prefix, recipient_name=recipient_name,
                    recipient_email=recipient_email, recipient_role=recipient_role, created_at=utc(created_at),
                    expires_on=expires_on,
                ).returning(t.c.id)
            ).scalar_one()
            return _token(conn.execute(t.select().where(t.c.id == token_id)).one())

    def tokens(self) -> list[dict[str, Any]]:
        t = schema.api_tokens
        with self._connect(write=False) as conn:
            return [_token(r) for r in conn.execute(t.select().order_by(t.c.id))]

    def token_by_hash(self, token_hash: str) -> dict[str, Any] | None:
        t = schema.api_tokens
        with self._connect(write=False) as conn:
            row = conn.execute(t.select().where(t.c.token_hash == token_hash)).first()
        return _token(row) if row is not None else None

    def find_tokens(self, prefix_or_id: str) -> list[dict[str, Any]]:
        """Tokens whose id is `prefix_or_id` (digits) or whose prefix starts with it."""
        from sqlalchemy import or_

        t = schema.api_tokens
        text = prefix_or_id.strip()
        clauses = [t.c.prefix.like(_like(text) + "%", escape="\\")]
        if text.isdigit():
            clauses.append(t.c.id == int(text))
        with self._connect(write=False) as conn:
            return [_token(r) for r in conn.execute(t.select().where(or_(*clauses)).order_by(t.c.id))]

    def touch_token(self, token_id: int, at: dt.datetime, *, unless_since: dt.datetime) -> None:
        """Record a use, unless one was recorded at or after `unless_since` (a write a minute at most)."""
        from sqlalchemy import or_

        t = schema.api_tokens
        with self._connect(write=True) as conn:
            conn.execute(
                t.update()
                .where(t.c.id == token_id, or_(t.c.last_used_at.is_(None), t.c.last_used_at < utc(unless_since)))
                .values(last_used_at=utc(at))
            )

    def revoke_token(self, token_id: int, at: dt.datetime) -> dict[str, Any]:
        """Revoke the token (once: an earlier revocation's time is kept); returns its row."""
        t = schema.api_tokens
        with self._connect(write=True) as conn:
            conn.execute(t.update().where(t.c.id == token_id, t.c.revoked_at.is_(None)).values(revoked_at=utc(at)))
            return _token(conn.execute(t.select().where(t.c.id == token_id)).one())

    # --- reads --------------------------------------------------------------------------------------

    @contextmanager
    def reading(self) -> Iterator[LookupTransaction]:
        """One read and its log row, committed together when the block ends (a RegisterError if the
        commit fails: the caller must not have let the answer out before)."""
        with self._connect(write=True) as conn:
            yield LookupTransaction(conn)

    def searches_in_one_statement(self, query: LookupQuery) -> bool:
        """Can `search_logged` serve this search? On PostgreSQL, its first page (the look-up of a
        visit): a later page that turns out empty needs a count of its own, in `reading`."""
        return self.engine.dialect.name == "postgresql" and query.offset == 0

    def search_logged(
        self, query: LookupQuery, *, fields: Sequence[str], active_only: bool, areas: Sequence[str] | None,
        active_first: bool, max_matches: int | None, at: dt.datetime, reader_kind: str, reader: str,
        token_id: int | None, asked: dict[str, Any],
    ) -> LoggedSearch:
        """`LookupTransaction.search` and its `log` as ONE statement (`_logged_statement`), committed
        on its own before the rows come back: one round trip a look-up instead of four (BEGIN, the
        search, the log, COMMIT); through the step, single-threaded, 1.15 ms of CPU in the process
        instead of 1.39, and 1.8 ms of wall time instead of 2.4 (3,000 look-ups, runs interleaved). The
        log says what the SQL found: `refused` (nothing returned) beyond `max_matches` matches, else
        `ok` with the page's alerts, or `not_found`; the caller checks that against what it shows."""
        shape = _Shape.of(query, fields=fields, active_only=active_only, areas=areas, active_first=active_first)
        params = {
            **_parameters(query, areas), "limit": query.page_size, "offset": query.offset,
            "at": at.astimezone(dt.UTC), "reader_kind": reader_kind, "reader": reader, "token_id": token_id,
            "query": json.dumps(asked, sort_keys=True, ensure_ascii=False), "max_matches": max_matches,
        }
        with self._connect(write=False) as conn:
            result = [dict(r._mapping) for r in conn.execute(_logged_statement(shape), params)]
        first = result[0]
        rows = []
        for row in result:
            if row.pop("position") is None:
                continue  # the log's row alone: the search found nothing
            rows.append({k: v for k, v in row.items() if k not in ("matches_in_all", "lookup_id", "logged_outcome")})
        total = int(first["matches_in_all"] or 0)
        outcome = first["logged_outcome"]
        return LoggedSearch(rows=rows, total=total, lookup_id=int(first["lookup_id"]), outcome=outcome,
                            alert_ids=() if outcome == "refused" else tuple(r["alert_id"] for r in rows))

    def reads_by_hour(self, since: dt.datetime) -> list[tuple[dt.datetime, str, str, int, int]]:
        """(UTC hour, reader kind, reader, lookups, alerts returned) of the reads from `since` on,
        by hour: the caller turns hours into days in the landlord's time zone."""
        from sqlalchemy import func, literal_column, select

        lk = schema.lookups
        with self._connect(write=False) as conn:
            if conn.dialect.name == "postgresql":
                hour = func.date_trunc(literal_column("'hour'"), lk.c.at.op("AT TIME ZONE")(literal_column("'UTC'")))
            else:
                hour = func.substr(lk.c.at, 1, 13)
            rows = conn.execute(
                select(hour.label("hour"), lk.c.reader_kind, lk.c.reader, func.count(), func.sum(lk.c.result_count))
                .where(lk.c.at >= utc(since))
                .group_by(hour, lk.c.reader_kind, lk.c.reader)
            ).all()
        out = []
        for hour_value, kind, reader, count, returned in rows:
            moment = hour_value if isinstance(hour_value, dt.datetime) else dt.datetime.fromisoformat(f"{hour_value}:00")
            out.append((moment.replace(tzinfo=dt.UTC), kind, reader, int(count), int(returned or 0)))
        return out


@dataclass(frozen=True)
class _Shape:
    """What a search's SQL depends on, apart from the values it binds: a look-up asks the same few
    shapes again and again, so each is built once (`_statements`) and SQLAlchemy's compiled cache
    and the driver's prepared statement serve every later one; building and keying a new statement
    each time cost a tenth of the api-server's time a look-up."""

    fields: tuple[str, ...]
    active_only: bool
    in_areas: bool
    postcode: str | None  # "exact", "prefix" or None
    asset_ref: bool
    q: str | None  # "anywhere", "address" or None
    q_key: bool
    active_first: bool

    @classmethod
    def of(cls, query: LookupQuery, *, fields: Sequence[str], active_only: bool, areas: Sequence[str] | None,
           active_first: bool) -> _Shape:
        postcode = ("prefix" if query.postcode_prefix else "exact") if query.postcode_key else None
        return cls(
            fields=tuple(fields), active_only=active_only, in_areas=areas is not None, postcode=postcode,
            asset_ref=bool(query.asset_ref), q=("anywhere" if query.match_anywhere else "address") if query.q else None,
            q_key=bool(query.q and query.match_anywhere and query.q_key), active_first=active_first,
        )


def _parameters(query: LookupQuery, areas: Sequence[str] | None) -> dict[str, Any]:
    """The values a search's statement binds (`_conditions` names them)."""
    params: dict[str, Any] = {}
    if areas is not None:
        params["areas"] = list(areas)
    if query.postcode_key:
        params["postcode"] = _like(query.postcode_key) + "%" if query.postcode_prefix else query.postcode_key
    if query.asset_ref:
        params["asset_ref"] = query.asset_ref
    if query.q:
        q = _like(query.q)
        params.update(q_anywhere=f"%{q}%", q_start=f"{q}%", q_word=f"% {q}%", q_upper=query.q.upper())
        if query.q_key:
            params["q_key"] = f"%{_like(query.q_key)}%"
    return params


def _conditions(shape: _Shape) -> list[ColumnElement[bool]]:
    from sqlalchemy import bindparam, func, or_

    a = schema.alerts
    conditions: list[Any] = []
    if shape.active_only:
        conditions.append(a.c.register_state == "active")
    if shape.in_areas:
        conditions.append(func.upper(func.trim(a.c.area)).in_(bindparam("areas", expanding=True)))
    if shape.postcode == "prefix":
        conditions.append(schema.POSTCODE_KEY.like(bindparam("postcode"), escape="\\"))
    elif shape.postcode == "exact":
        conditions.append(schema.POSTCODE_KEY == bindparam("postcode"))
    if shape.asset_ref:
        conditions.append(a.c.asset_ref == bindparam("asset_ref"))
    if shape.q is not None:
        address = func.lower(a.c.address)
        if shape.q == "anywhere":
            upper = bindparam("q_upper")
            matches = [
                address.like(bindparam("q_anywhere"), escape="\\"),
                func.lower(a.c.person_name).like(bindparam("q_anywhere"), escape="\\"),
                func.upper(a.c.person_ref) == upper, func.upper(a.c.tenancy_ref) == upper,
                func.upper(a.c.alert_id) == upper, func.upper(a.c.asset_ref) == upper,
            ]
            if shape.q_key:
                matches.append(schema.POSTCODE_KEY.like(bindparam("q_key"), escape="\\"))
            conditions.append(or_(*matches))
        else:
            # The start of the address, or of a word in it: "27 yew court" is not "127 yew court".
            conditions.append(or_(address.like(bindparam("q_start"), escape="\\"),
                                  address.like(bindparam("q_word"), escape="\\")))
    return conditions


@dataclass(frozen=True)
class LoggedSearch:
    """A search and its log row, written by one statement (`LookupStore.search_logged`)."""

    rows: list[dict[str, Any]]
    total: int
    lookup_id: int
    outcome: str
    alert_ids: tuple[str, ...]


def _order(shape: _Shape) -> list[Any]:
    from sqlalchemy import case

    a = schema.alerts
    order: list[Any] = [schema.POSTCODE_KEY, a.c.address, a.c.alert_id]
    if shape.active_first:
        order.insert(0, case((a.c.register_state == "active", 0), else_=1))
    return order


@functools.lru_cache(maxsize=256)
def _logged_statement(shape: _Shape) -> Any:
    """PostgreSQL: the page of a search of this shape and its log, in one statement of data-modifying
    CTEs (one snapshot, one implicit transaction): `found` is the page (as `_statements`, with each
    row's place in it), `logged` the lookups row, `returned` its lookup_results; the answer is the
    page's rows, each with the log row's id and outcome, or that alone when nothing was found."""
    from sqlalchemy import DateTime, Integer, String, Text, bindparam, case, func, insert, select, true

    lk, lr = schema.lookups, schema.lookup_results
    page, _ = _statements(shape)
    found = page.add_columns(func.row_number().over(order_by=_order(shape)).label("position")).cte("found")
    count, total = func.count(found.c.alert_id), func.max(found.c.matches_in_all)
    refused = total > bindparam("max_matches", type_=Integer)  # NULL (staff): never
    logged = (
        insert(lk)
        .from_select(
            ["at", "reader_kind", "reader", "token_id", "query", "outcome", "result_count"],
            select(
                bindparam("at", type_=DateTime(timezone=True)), bindparam("reader_kind", type_=String),
                bindparam("reader", type_=Text), bindparam("token_id", type_=Integer), bindparam("query", type_=Text),
                case((refused, "refused"), (count > 0, "ok"), else_="not_found"), case((refused, 0), else_=count),
            ).select_from(found),
        )
        .returning(lk.c.id, lk.c.outcome)
        .cte("logged")
    )
    returned = (
        insert(lr)
        .from_select(["lookup_id", "alert_id"],
                     select(logged.c.id, found.c.alert_id).select_from(logged.join(found, true()))
                     .where(logged.c.outcome != "refused"))
        .cte("returned")
    )
    return (
        select(logged.c.id.label("lookup_id"), logged.c.outcome.label("logged_outcome"), *found.c)
        .select_from(logged.outerjoin(found, true()))
        .add_cte(returned)
        .order_by(found.c.position)
    )


@functools.lru_cache(maxsize=256)
def _statements(shape: _Shape) -> tuple[Any, Any]:
    """(the page, the count of all matches) for a search of this shape, with bound parameters."""
    from sqlalchemy import Integer, bindparam, func, select

    a, d = schema.alerts, schema.alert_deadlines
    conditions = _conditions(shape)
    order = _order(shape)
    page = (
        select(*(a.c[f] for f in dict.fromkeys(("alert_id", *shape.fields, "register_state", "area"))), d.c.review_due,
               func.count().over().label("matches_in_all"))
        .select_from(a.outerjoin(d, d.c.alert_id == a.c.alert_id))
        .where(*conditions)
        .order_by(*order)
        .limit(bindparam("limit", type_=Integer))
        .offset(bindparam("offset", type_=Integer))
    )
    return page, select(func.count()).select_from(a).where(*conditions)


class LookupTransaction:
    """The reads and the log write of one look-up, in its transaction."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn

    def search(
        self, query: LookupQuery, *, fields: Sequence[str], active_only: bool, areas: Sequence[str] | None,
        active_first: bool,
    ) -> tuple[list[dict[str, Any]], int]:
        """One page of the alerts matching `query` within the scope (active only; in `areas`), with
        `fields` and the stored `review_due`; and how many match in all.

        One statement: the page, each row carrying the count of all matches (`count(*) OVER ()`,
        the deadlines' join is one row an alert at most); only a page beyond the last needs a count
        of its own."""
        shape = _Shape.of(query, fields=fields, active_only=active_only, areas=areas, active_first=active_first)
        page, count = _statements(shape)
        params = _parameters(query, areas)
        rows = [dict(r._mapping) for r in self.conn.execute(page, {**params, "limit": query.page_size,
                                                                   "offset": query.offset})]
        if rows:
            total = rows[0]["matches_in_all"]
            for row in rows:
                del row["matches_in_all"]
            return rows, int(total)
        if query.offset == 0:
            return [], 0
        return [], int(self.conn.execute(count, params).scalar_one())

    def alert(self, alert_id: str, *, fields: Sequence[str]) -> dict[str, Any] | None:
        """The alert with `fields`, its state, area and stored review date; None when there is none."""
        from sqlalchemy import select

        a, d = schema.alerts, schema.alert_deadlines
        row = self.conn.execute(
            select(*(a.c[f] for f in dict.fromkeys(("alert_id", *fields, "register_state", "area"))), d.c.review_due)
            .select_from(a.outerjoin(d, d.c.alert_id == a.c.alert_id))
            .where(a.c.alert_id == alert_id)
        ).first()
        return dict(row._mapping) if row is not None else None

    def alert_page(self, alert_id: str) -> dict[str, Any] | None:
        """The alert page's rows: the alert (never the note), its stored dates, history, letters (no
        bodies), disclosures and the latest reads that returned it; None when there is no such alert."""
        from sqlalchemy import select

        a, d, h = schema.alerts, schema.alert_deadlines, schema.alert_history
        lt, ds, lk, lr = schema.letters, schema.disclosures, schema.lookups, schema.lookup_results
        row = self.conn.execute(select(*(a.c[f] for f in ALERT_PAGE_FIELDS)).where(a.c.alert_id == alert_id)).first()
        if row is None:
            return None
        dates = self.conn.execute(select(*(d.c[f] for f in DEADLINE_FIELDS)).where(d.c.alert_id == alert_id)).first()
        history = [dict(r._mapping) for r in self.conn.execute(
            select(h.c.as_of, h.c.run_id, h.c.change, h.c.changed_fields).where(h.c.alert_id == alert_id).order_by(h.c.id)
        )]
        letters = [dict(r._mapping) for r in self.conn.execute(
            select(lt.c.id, lt.c.kind, lt.c.outcome, lt.c.decision_date, lt.c.as_of, lt.c.status, lt.c.hold_reason,
                   lt.c.channels, lt.c.dated_on, lt.c.appeal_by, lt.c.dispatched_at)
            .where(lt.c.alert_id == alert_id).order_by(lt.c.id)
        )]
        disclosures = [dict(r._mapping) for r in self.conn.execute(
            select(ds.c.recipient_name, ds.c.recipient_role, ds.c.kind, ds.c.listed_as, ds.c.disclosed_on,
                   ds.c.disclosed_at, ds.c.message_id)
            .where(ds.c.alert_id == alert_id).order_by(ds.c.disclosed_at, ds.c.id)
        )]
        reads = [dict(r._mapping) for r in self.conn.execute(
            select(lk.c.id, lk.c.at, lk.c.reader_kind, lk.c.reader, lk.c.query, lk.c.outcome)
            .select_from(lk.join(lr, lr.c.lookup_id == lk.c.id))
            .where(lr.c.alert_id == alert_id).order_by(lk.c.at.desc(), lk.c.id.desc()).limit(READS_SHOWN)
        )]
        for read in reads:
            read["at"] = aware(read["at"])
        return {"alert": dict(row._mapping), "deadlines": dict(dates._mapping) if dates is not None else None,
                "history": history, "letters": letters, "disclosures": disclosures, "reads": reads}

    def amend_log(self, lookup_id: int, *, outcome: str, alert_ids: Sequence[str]) -> None:
        """Make a logged read say `outcome` and exactly `alert_ids` (`services.lookup.search`: when
        what `search_logged` logged is not what the reader is shown)."""
        lk, lr = schema.lookups, schema.lookup_results
        self.conn.execute(lk.update().where(lk.c.id == lookup_id).values(outcome=outcome, result_count=len(alert_ids)))
        self.conn.execute(lr.delete().where(lr.c.lookup_id == lookup_id))
        if alert_ids:
            self.conn.execute(lr.insert(), [{"lookup_id": lookup_id, "alert_id": a} for a in alert_ids])

    def log(
        self, *, at: dt.datetime, reader_kind: str, reader: str, token_id: int | None, query: dict[str, Any],
        outcome: str, alert_ids: Sequence[str],
    ) -> int:
        """Write one read to the log (the lookup and the alerts it returned); returns its id."""
        lk, lr = schema.lookups, schema.lookup_results
        text = json.dumps(query, sort_keys=True, ensure_ascii=False)
        if self.conn.dialect.name == "postgresql":
            # The log row and its alerts in one statement: a round trip fewer on every look-up.
            return int(self.conn.exec_driver_sql(
                "WITH logged AS (INSERT INTO lookups (at, reader_kind, reader, token_id, query, outcome, result_count) "
                "VALUES (%s, %s, %s, %s, %s, %s, %s) RETURNING id), "
                "returned AS (INSERT INTO lookup_results (lookup_id, alert_id) "
                "SELECT logged.id, returned_id FROM logged, unnest(%s::text[]) AS returned_id) "
                "SELECT id FROM logged",
                (at.astimezone(dt.UTC), reader_kind, reader, token_id, text, outcome, len(alert_ids), list(alert_ids)),
            ).scalar_one())
        lookup_id = self.conn.execute(
            lk.insert().values(
                at=utc(at), reader_kind=reader_kind, reader=reader, token_id=token_id,
                query=text, outcome=outcome,
                result_count=len(alert_ids),
            ).returning(lk.c.id)
        ).scalar_one()
        if alert_ids:
            self.conn.execute(lr.insert(), [{"lookup_id": lookup_id, "alert_id": a} for a in alert_ids])
        return int(lookup_id)
