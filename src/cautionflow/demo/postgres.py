"""Databases for `CAUTIONFLOW_DB=postgresql://... make demo`: Airflow's metadata and the register
on one PostgreSQL server, as in production. Never for production itself: it drops the register.

    python -m cautionflow.demo.postgres --server postgresql://postgres@127.0.0.1:5432

creates `cautionflow_airflow` if it is missing (kept between demos: `airflow db migrate` is
idempotent), drops and recreates `cautionflow_register` (a clean register for each demo, like the
SQLite demo's `rm -f var/demo/register.db`), and prints the environment the demo runs with, one
`NAME=value` line each:

    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=postgresql+psycopg2://postgres@127.0.0.1:5432/cautionflow_airflow
    AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC=postgresql+psycopg://postgres@127.0.0.1:5432/cautionflow_airflow
    AIRFLOW_CONN_CAUTIONFLOW_REGISTER=postgresql://postgres@127.0.0.1:5432/cautionflow_register
    CAUTIONFLOW_REGISTER_URL=postgresql://postgres@127.0.0.1:5432/cautionflow_register

The first two are Airflow's metadata database (psycopg2 for Airflow's sync engine, psycopg 3 for
its async one: asyncpg, Airflow's derived default, is not installed), the third the register as an
Airflow Connection (what the DAG tasks use), the fourth the same register for the `cautionflow`
command line (`status`, `letters list`), which reads no Airflow Connections.
"""

from __future__ import annotations

import argparse
import sys

AIRFLOW_DATABASE = "cautionflow_airflow"
REGISTER_DATABASE = "cautionflow_register"


class ServerError(Exception):
    """The server URL is not a PostgreSQL URL, or the server cannot be reached."""


def database_urls(server: str) -> dict[str, str]:
    """The demo's environment for a server URL (any database named in it is replaced)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        url = make_url(server)
    except ArgumentError as exc:
        raise ServerError(f"not a database URL: {exc}") from None
    if url.get_backend_name() != "postgresql":
        raise ServerError(f"CAUTIONFLOW_DB must be a PostgreSQL server URL, not '{url.get_backend_name()}'")
    def render(driver: str, database: str) -> str:
        return url.set(drivername=driver, database=database).render_as_string(hide_password=False)

    register = render("postgresql", REGISTER_DATABASE)
    return {
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": render("postgresql+psycopg2", AIRFLOW_DATABASE),
        # Airflow 3 also opens the metadata database asynchronously; left unset it derives
        # postgresql+asyncpg, which is not installed. psycopg 3 (installed) has an async dialect.
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN_ASYNC": render("postgresql+psycopg", AIRFLOW_DATABASE),
        "AIRFLOW_CONN_CAUTIONFLOW_REGISTER": register,
        "CAUTIONFLOW_REGISTER_URL": register,
    }


def _admin_dsn(server: str) -> str:
    """A libpq URL to the server's `postgres` database, for CREATE and DROP DATABASE."""
    from sqlalchemy.engine import make_url

    return make_url(server).set(drivername="postgresql", database="postgres").render_as_string(
        hide_password=False
    )


def prepare(server: str, *, fresh_register: bool = True) -> dict[str, str]:
    """Create the two databases if missing (the register dropped first when `fresh_register`)."""
    import psycopg
    from psycopg import sql

    urls = database_urls(server)
    try:
        with psycopg.connect(_admin_dsn(server), autocommit=True, connect_timeout=10) as conn:
            if fresh_register:
                conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                    sql.Identifier(REGISTER_DATABASE)
                ))
            for name in (AIRFLOW_DATABASE, REGISTER_DATABASE):
                exists = conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (name,)).fetchone()
                if not exists:
                    conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    except psycopg.Error as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ServerError(f"PostgreSQL server: {first}") from None
    return urls


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m cautionflow.demo.postgres", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--server", required=True, help="a PostgreSQL server URL, e.g. postgresql://postgres@127.0.0.1:5432")
    parser.add_argument("--keep-register", action="store_true", help="keep an existing register database")
    args = parser.parse_args(argv)
    try:
        urls = prepare(args.server, fresh_register=not args.keep_register)
    except ServerError as exc:
        print(f"cautionflow demo: {exc}", file=sys.stderr)
        return 2
    for name, value in urls.items():
        print(f"{name}={value}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
