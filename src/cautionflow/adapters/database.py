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


def sqlite_path(url: Any) -> Path | None:
    """An SQLite URL's database file (None for another database or `:memory:`), whether the URL
    names the file or is an SQLite URI (`file:/path?mode=rw&uri=true`, as `create_database_engine`
    opens a file that must already exist)."""
    from urllib.parse import unquote

    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    if parsed.get_backend_name() != "sqlite" or not parsed.database or parsed.database == ":memory:":
        return None
    if parsed.query.get("uri") == "true" and parsed.database.startswith("file:"):
        return Path(unquote(parsed.database.removeprefix("file:")))
    return Path(parsed.database)


# A pooled PostgreSQL engine's pool (`create_database_engine(pooled=True)`): the api-server's
# look-ups are many short reads a second, each one connection at a time.
POOL_SIZE = 5
POOL_MAX_OVERFLOW = 10
# A pooled connection is replaced once this old. An idle timeout (a firewall's, a cloud load
# balancer's: Azure's is 4 minutes, AWS's NLB 350 s) can drop a connection without a word, which
# the checkout's check cannot see; one younger than the shortest such timeout was never idle that
# long. Reconnecting 5 connections every 3 minutes costs nothing beside the look-ups.
POOL_RECYCLE_SECONDS = 180


def create_database_engine(url: str, *, read_only: bool = False, create: bool = True, pooled: bool = False) -> Engine:
    """`create=False` opens only an existing SQLite file (SQLite's `mode=rw`: neither the file nor
    its folder is made), so a mistyped path fails instead of becoming a new, empty database.

    Engines open a new connection for each use and close it after (NullPool): a pipeline step runs
    once and a pooled connection would outlive it. `pooled=True` is for a long-lived process serving
    many short reads (the api-server's look-ups): on PostgreSQL a QueuePool of POOL_SIZE connections
    (POOL_MAX_OVERFLOW more at a peak), each checked at checkout for a server that has closed it
    (`_drop_closed_connection`: no round trip) and replaced after POOL_RECYCLE_SECONDS, so a restarted
    server or a terminated backend costs a new connection, not a failed read; opening a PostgreSQL
    connection costs more than a look-up's queries. SQLite stays NullPool (opening its file is cheap). A pooled engine must not cross a
    fork: its connections' sockets would be shared by two processes."""
    from sqlalchemy import create_engine, event
    from sqlalchemy.exc import ArgumentError
    from sqlalchemy.pool import NullPool

    url = normalise_url(url)
    path = sqlite_path(url)
    try:
        if path is not None and read_only:
            if not path.is_file():
                raise DatabaseError(f"database file not found: {path}")
            engine = create_engine(_sqlite_uri(path, "ro"), poolclass=NullPool)
        elif path is not None and not create:
            engine = create_engine(_sqlite_uri(path, "rw"), poolclass=NullPool)
        else:
            if path is not None:
                path.parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(url, **_pool_options(url, pooled))
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

    if pooled and engine.dialect.name == "postgresql":
        event.listen(engine, "checkout", _drop_closed_connection)
    return engine


def _drop_closed_connection(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Refuse a pooled connection the server has closed (a restart, `pg_terminate_backend`, an idle
    timeout): an idle connection has nothing to read, so a readable socket means the server's goodbye
    (or a notice, and a fresh connection costs nothing then). SQLAlchemy's DisconnectionError makes
    the pool discard it and check out another. This replaces `pool_pre_ping`, whose round trip cost
    each look-up about 0.2 ms of its 1.5 ms of CPU in the api-server's step (measured single-threaded,
    3,000 look-ups, runs interleaved) and 0.05 ms in PostgreSQL."""
    import select

    from sqlalchemy.exc import DisconnectionError

    if dbapi_connection.closed:
        raise DisconnectionError("the connection is closed")
    fd = dbapi_connection.fileno()
    if hasattr(select, "poll"):
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        readable = bool(poller.poll(0))
    else:
        readable = bool(select.select([fd], [], [], 0)[0])
    if readable:
        raise DisconnectionError("the server closed the connection")


def _pool_options(url: str, pooled: bool) -> dict[str, Any]:
    from sqlalchemy.engine import make_url
    from sqlalchemy.pool import NullPool, QueuePool

    if pooled and make_url(url).get_backend_name() == "postgresql":
        return {"poolclass": QueuePool, "pool_size": POOL_SIZE, "max_overflow": POOL_MAX_OVERFLOW,
                "pool_recycle": POOL_RECYCLE_SECONDS}
    return {"poolclass": NullPool}


def _sqlite_uri(path: Path, mode: str) -> Any:
    """An SQLite URI URL for `path` (a URL object, so SQLAlchemy does not unquote the path's `%`,
    `?` or `#`)."""
    from urllib.parse import quote

    from sqlalchemy.engine import URL

    return URL.create("sqlite", database="file:" + quote(str(path)), query={"mode": mode, "uri": "true"})


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


def copy_text(values: Sequence[Sequence[Any]], constants: Sequence[Any] = (), *, formatted: bool = False) -> list[str]:
    """Rows given column by column as COPY text, in pieces of a few megabytes.

    `formatted`: the values are already COPY fields (`copy_fields`).
    """
    constant_fields = copy_fields(constants)
    rows = len(values[0]) if values else 0
    pieces = []
    for start in range(0, rows, _COPY_PIECE):
        part = [column[start : start + _COPY_PIECE] for column in values]
        fields = part if formatted else [copy_fields(column) for column in part]
        lines = zip(*fields, *([f] * len(fields[0]) for f in constant_fields), strict=True)
        pieces.append("\n".join(map("\t".join, lines)) + "\n")
    return pieces


def _copy_in(dbapi: Any, table: str, columns: Sequence[str], pieces: Iterable[str]) -> None:
    with dbapi.cursor() as cursor, cursor.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:
        for piece in pieces:
            copy.write(piece)


class BackgroundWriter:
    """Writes run in order by a helper thread, in the caller's transaction, so the caller can go on.

    The database does the work (PostgreSQL in its own process; SQLite in C, without the GIL) and
    the thread only waits for it, so that work overlaps whatever the caller does next: preparing
    the next rows, or freeing the last ones. `send` is COPY (PostgreSQL only); `execute` is any
    statement. Only this writer may use the connection until `close`. A failure in the thread is
    raised in the caller by the next `send` or `execute`, or by `close`; nothing after it runs.
    """

    def __init__(self, conn: Connection) -> None:
        import queue
        import threading

        self._dbapi = conn.connection.dbapi_connection
        self._paramstyle = conn.dialect.paramstyle
        self._queue: queue.Queue[tuple[Any, ...] | None] = queue.Queue(maxsize=2)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="cautionflow-writer", daemon=True)
        self._thread.start()

    def send(
        self,
        table: str,
        columns: Sequence[str],
        values: Sequence[Sequence[Any]],
        constants: Sequence[Any] = (),
        *,
        formatted: bool = False,
    ) -> None:
        if self._error is not None:
            raise self._error
        self._queue.put(("copy", table, columns, copy_text(values, constants, formatted=formatted)))

    def execute(self, statement: str, params: Sequence[Any] = ()) -> None:
        """Run one statement; `?` stands for the driver's parameter marker."""
        if self._error is not None:
            raise self._error
        marker = "%s" if self._paramstyle != "qmark" else "?"
        self._queue.put(("execute", statement.replace("?", marker), tuple(params)))

    def close(self, *, raise_errors: bool = True) -> None:
        """Wait until every write sent has run."""
        self._queue.put(None)
        self._thread.join()
        if self._error is not None and raise_errors:
            raise self._error

    def _run(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                if item[0] == "copy":
                    _copy_in(self._dbapi, *item[1:])
                    continue
                cursor = self._dbapi.cursor()
                try:
                    cursor.execute(*item[1:])
                finally:
                    cursor.close()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self._error = exc
            while self._queue.get() is not None:  # let the caller's puts through until it closes
                pass


_COPY_PIECE = 25_000
_COPY_SPECIAL = ("\\", "\t", "\n", "\r")


def copy_fields(values: Sequence[Any]) -> list[str]:
    """A column's values as fields of COPY's text format: \\N for NULL, special characters escaped."""
    kinds = set(map(type, values))
    if kinds <= {str, type(None)}:
        text = "".join(filter(None, values))
        if not any(special in text for special in _COPY_SPECIAL):
            return [r"\N" if v is None else v for v in values]
    elif kinds == {int}:
        return list(map(str, values))
    return [r"\N" if v is None else _copy_escape(str(v)) for v in values]


def _copy_escape(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n").replace("\r", "\\r")


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
