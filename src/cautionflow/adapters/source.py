"""The landlord's housing database, read through one SQL query in a read-only session."""

from __future__ import annotations

from typing import TYPE_CHECKING

from cautionflow.adapters.database import (
    DatabaseError,
    create_database_engine,
    describe_error,
    fetch_all,
    safe_url,
)

if TYPE_CHECKING:
    from cautionflow.domain.contract import SourceColumns


class SourceError(Exception):
    """The housing database could not be read; one line, no password."""


class SqlAlertSource:
    def __init__(self, url: str, query: str) -> None:
        self.url = url
        self.query = query

    def describe(self) -> str:
        return safe_url(self.url)

    def read(self) -> SourceColumns:
        columns, rows = read_only_query(self.url, self.query, what="housing database")
        # Column by column as the driver returned them: no frame, no type inference, no copy per cell.
        data = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
        return dict(zip(columns, data, strict=True))


def read_only_query(url: str, query: str, *, what: str) -> tuple[list[str], list[tuple]]:
    """Run one query on the landlord's database in a read-only session; errors as one-line SourceErrors."""
    from sqlalchemy.exc import SQLAlchemyError

    try:
        engine = create_database_engine(url, read_only=True)
    except DatabaseError as exc:
        raise SourceError(f"{what}: {exc}") from None
    try:
        with engine.connect() as conn:
            if conn.dialect.name == "postgresql":
                conn.exec_driver_sql("SET TRANSACTION READ ONLY")
            return fetch_all(conn, query)
    except SQLAlchemyError as exc:
        raise SourceError(f"{what} {safe_url(url)}: {describe_error(exc)}") from None
    except Exception as exc:  # driver errors raised outside SQLAlchemy's wrapping (raw cursor)
        if type(exc).__module__.split(".")[0] in {"sqlite3", "psycopg", "psycopg2"}:
            raise SourceError(f"{what} {safe_url(url)}: {describe_error(exc)}") from None
        raise
    finally:
        engine.dispose()
