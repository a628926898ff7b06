"""Benchmark: the daily sync of 1,000,000 source rows into a fresh register.

Beside it, in the same run, a plain bulk load of the same rows into a bare table: executemany
for SQLite, COPY for PostgreSQL. Goal: the sync within 3x of the plain load on both.

    python -m bench.sync [--rows 1000000] [--backend sqlite|postgresql|both]

The sync is timed end to end, through `sync_register` as the DAG calls it: read the housing
database (a SQLite file built by the demo generator, flattened to one table as a landlord's
export view would return it), validate every row, write alerts, history and quarantine and build
the indexes in one transaction, commit, and free what was read. Into a fresh register that is
the first-load path: chunks validated and written in turn (on PostgreSQL streamed to the server
by a helper thread while the next chunk is validated).

The plain load is timed two ways, both printed:
- "copy": the same rows read with the same query from the same housing database and loaded into
  the bare table, i.e. the plainest job that moves these rows from the source into the target.
  The goal is judged against this: the sync cannot load rows it has not read, and reading
  1,000,000 rows out of SQLite costs about twice a PostgreSQL COPY of them on its own.
- "load only": the rows already in memory, loaded into the bare table (for comparison).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sqlite3
import tempfile
import time
from pathlib import Path

from cautionflow.domain.contract import SOURCE_COLUMNS

AS_OF = dt.date(2026, 11, 23)


def build_source(folder: Path, rows: int) -> Path:
    from cautionflow.demo.housing import build_housing_database

    path = folder / "housing.db"
    build_housing_database(path, homes=max(125_000, rows // 8), alerts=rows, as_of=AS_OF, seed=11)
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE alerts_flat AS SELECT * FROM caution_alerts_export")
    return path


SOURCE_QUERY = f"SELECT {', '.join(SOURCE_COLUMNS)} FROM alerts_flat"


def fetch_rows(source: Path) -> list[tuple]:
    with sqlite3.connect(source) as conn:
        return conn.execute(SOURCE_QUERY).fetchall()


def timed_fetch(source: Path) -> tuple[list[tuple], float]:
    start = time.perf_counter()
    rows = fetch_rows(source)
    return rows, time.perf_counter() - start


def bare_sqlite_load(folder: Path, rows: list[tuple]) -> float:
    path = folder / "bare.db"
    path.unlink(missing_ok=True)
    conn = sqlite3.connect(path)
    conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"CREATE TABLE bare ({', '.join(SOURCE_COLUMNS)})")
    start = time.perf_counter()
    with conn:
        conn.executemany(f"INSERT INTO bare VALUES ({', '.join('?' * len(SOURCE_COLUMNS))})", rows)
    elapsed = time.perf_counter() - start
    conn.close()
    return elapsed


def bare_postgres_copy(url: str, rows: list[tuple]) -> float:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        conn.execute(f"CREATE TABLE IF NOT EXISTS bare ({', '.join(c + ' text' for c in SOURCE_COLUMNS)})")
        conn.execute("TRUNCATE bare")
        conn.commit()
        start = time.perf_counter()
        with conn.cursor() as cur, cur.copy(f"COPY bare ({', '.join(SOURCE_COLUMNS)}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        conn.commit()
        return time.perf_counter() - start


def timed_sync(source: Path, register_url: str) -> tuple[float, dict]:
    from cautionflow.adapters.register import Register
    from cautionflow.adapters.source import SqlAlertSource
    from cautionflow.services.sync import sync_register

    register = Register(register_url)
    register.migrate(create=True)  # schema creation is not part of the load
    start = time.perf_counter()
    summary = sync_register(
        SqlAlertSource(f"sqlite:///{source}", "SELECT * FROM alerts_flat"), register, as_of=AS_OF, run_id="bench"
    )
    elapsed = time.perf_counter() - start
    register.dispose()
    return elapsed, summary.as_dict()


def report(backend: str, rows: int, sync_seconds: float, read_seconds: float, load_seconds: float, summary: dict) -> float:
    copy_seconds = read_seconds + load_seconds
    ratio = sync_seconds / copy_seconds
    verdict = "OK" if ratio <= 3 else "OVER GOAL"
    print(
        f"{backend:<10} rows={rows:>9,}  sync={sync_seconds:7.2f}s ({rows / sync_seconds:>9,.0f} rows/s)  "
        f"plain copy={copy_seconds:6.2f}s (read {read_seconds:.2f}s + load {load_seconds:.2f}s)  "
        f"ratio={ratio:4.2f}x  goal<=3x {verdict}  |  vs load only: {sync_seconds / load_seconds:4.2f}x"
    )
    print(f"{'':<10} sync summary: inserted={summary['inserted']:,} quarantined={summary['quarantined']:,} "
          f"flagged={summary['flagged']:,}")
    return ratio


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="cautionflow-bench-") as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        source = build_source(folder, args.rows)
        print(f"source: {args.rows:,} rows built in {time.perf_counter() - start:.1f}s")

        if args.backend in {"sqlite", "both"}:
            rows, read = timed_fetch(source)
            load = bare_sqlite_load(folder, rows)
            del rows
            seconds, summary = timed_sync(source, f"sqlite:///{folder / 'register.db'}")
            report("sqlite", args.rows, seconds, read, load, summary)

        if args.backend in {"postgresql", "both"}:
            from tests.support import postgres_available, temporary_postgres_database

            if not postgres_available():
                print("postgresql: skipped, no server on 127.0.0.1:5432")
            else:
                with temporary_postgres_database("cf_bench_bare") as bare_url, temporary_postgres_database(
                    "cf_bench_register"
                ) as register_url:
                    rows, read = timed_fetch(source)
                    load = bare_postgres_copy(bare_url, rows)
                    del rows
                    seconds, summary = timed_sync(source, register_url)
                    report("postgresql", args.rows, seconds, read, load, summary)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
