"""Engines for the two databases cautionflow talks to, with errors a person can act on."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine


class DatabaseError(Exception):
    """A database could not be opened or used; the message is one line and has no password."""


def normalise_url(url: str) -> str:
    """Use psycopg 3 for PostgreSQL whatever driver the URL names (COPY and pipelining)."""
    for prefix in ("postgresql+psycopg2://", "postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def safe_url(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL must not leak in an error message
        return "<unparseable database URL>"


def sqlite_path(url: str) -> Path | None:
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    return Path(parsed.database)


def create_database_engine(url: str, *, read_only: bool = False) -> Engine:
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError
    from sqlalchemy.pool import NullPool

    url = normalise_url(url)
    path = sqlite_path(url)
    try:
        if path is not None and read_only:
            if not path.is_file():
                raise DatabaseError(f"database file not found: {path}")
            engine = create_engine(f"sqlite:///file:{path}?mode=ro&uri=true", poolclass=NullPool)
        else:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, poolclass=NullPool)
    except (ArgumentError, ModuleNotFoundError, ValueError) as exc:
        raise DatabaseError(f"invalid database URL {safe_url(url)}: {exc}") from None
    except OSError as exc:
        raise DatabaseError(f"cannot create the folder for {safe_url(url)}: {exc.strerror}") from None

    if engine.dialect.name == "sqlite":

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
            cursor = dbapi_connection.cursor()
            cursor.execute("PRAGMA busy_timeout = 30000")
            if not read_only:
                cursor.execute("PRAGMA journal_mode = WAL")
                cursor.execute("PRAGMA synchronous = NORMAL")
                cursor.execute("PRAGMA cache_size = -262144")  # 256 MiB: a million-row index stays in memory
            cursor.close()

    return engine


def describe_error(exc: BaseException) -> str:
    """The first line of a driver's error, without the SQL or parameters SQLAlchemy appends."""
    orig = getattr(exc, "orig", None) or exc
    text = str(orig).strip().splitlines()
    return text[0] if text else type(orig).__name__


def stored_date(value: Any) -> dt.date | None:
    """A date column as read through a raw cursor: a date on PostgreSQL, ISO text on SQLite."""
    if value is None or isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value)[:10])
    except ValueError:
        return None


def placeholder(conn: Connection) -> str:
    return "?" if conn.dialect.paramstyle == "qmark" else "%s"


def bulk_insert(conn: Connection, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> None:
    """Load many rows in one go: COPY on PostgreSQL, executemany elsewhere, in the open transaction."""
    dbapi = conn.connection.dbapi_connection
    column_list = ", ".join(columns)
    if conn.dialect.name == "postgresql":
        with dbapi.cursor() as cursor, cursor.copy(f"COPY {table} ({column_list}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        return
    marks = ", ".join([placeholder(conn)] * len(columns))
    cursor = dbapi.cursor()
    try:
        cursor.executemany(f"INSERT INTO {table} ({column_list}) VALUES ({marks})", rows)
    finally:
        cursor.close()


def execute_many(conn: Connection, statement: str, rows: Sequence[Sequence[Any]]) -> None:
    """executemany through the driver, with `?` in the statement standing for the driver's marker."""
    if not rows:
        return
    dbapi = conn.connection.dbapi_connection
    cursor = dbapi.cursor()
    try:
        cursor.executemany(statement.replace("?", placeholder(conn)), rows)
    finally:
        cursor.close()


def fetch_all(conn: Connection, statement: str, params: Sequence[Any] = ()) -> tuple[list[str], list[tuple]]:
    """Rows as plain tuples straight from the driver: much cheaper than Row objects at scale."""
    dbapi = conn.connection.dbapi_connection
    cursor = dbapi.cursor()
    try:
        cursor.execute(statement.replace("?", placeholder(conn)), tuple(params))
        columns = [d[0] for d in cursor.description]
        return columns, cursor.fetchall()
    finally:
        cursor.close()
