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
        from sqlalchemy.exc import SQLAlchemyError

        try:
            engine = create_database_engine(self.url, read_only=True)
        except DatabaseError as exc:
            raise SourceError(f"housing database: {exc}") from None
        try:
            with engine.connect() as conn:
                if conn.dialect.name == "postgresql":
                    conn.exec_driver_sql("SET TRANSACTION READ ONLY")
                columns, rows = fetch_all(conn, self.query)
        except SQLAlchemyError as exc:
            raise SourceError(f"housing database {self.describe()}: {describe_error(exc)}") from None
        except Exception as exc:  # driver errors raised outside SQLAlchemy's wrapping (raw cursor)
            if type(exc).__module__.split(".")[0] in {"sqlite3", "psycopg", "psycopg2"}:
                raise SourceError(f"housing database {self.describe()}: {describe_error(exc)}") from None
            raise
        finally:
            engine.dispose()
        # Column by column as the driver returned them: no frame, no type inference, no copy per cell.
        data = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
        return dict(zip(columns, data, strict=True))

