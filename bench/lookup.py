"""Benchmark: look-ups by postcode through the running api-server, on PostgreSQL with 100,000 alerts.

    python -m bench.lookup [--alerts 100000] [--clients 20] [--seconds 20] [--workers 2]

A register of `--alerts` alerts (the demo generator's housing database, each home given a postcode
of its own street, about a dozen homes a postcode as in the UK, synced by the real sync into a fresh
PostgreSQL database) served by the real `airflow api-server` (SimpleAuthManager, `--workers`
processes) with the register page's app mounted at /cautionflow as the plugin mounts it. The only
difference from `plugins/cautionflow_register_page.py` is the token rate limit, raised out of the
way: this measures the look-up, not the limiter. `--clients` threads, each with its own keep-alive
connection (`http.client`: the clients share the machine with the server, so they must cost little),
look up random postcodes (nine in ten in the contractor's areas, one in ten elsewhere, which must
answer nothing) with one contractor's token for `--seconds`: p50/p99 latency and look-ups a second,
each client's mean latency (its keep-alive connection is served by one worker at a time, so a
spread is the workers' uneven share of the connections), the lookup log counted before and after
(every look-up logged, in the same transaction as its search), the PostgreSQL connections opened meanwhile (the api-server's pooled engine should open
next to none), and where the CPU went: milliseconds a look-up in the api-server's processes, in
PostgreSQL (every database's, so other work on the machine shows there too) and in the clients,
and how busy the machine was. Takes about 50 s (building and syncing the register ~10 s, the
api-server's start, 3 s of warm-up, the two runs).

Beside it, in the same run, the baseline: the same look-ups against the same server after dropping
the postcode index (`ix_alerts_postcode_key`), so every one is a full scan of the register, and the
ratio. Goal: p99 under 100 ms and at least 200 look-ups a second with the index.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import secrets
import sqlite3
import statistics
import subprocess
import tempfile
import threading
import time
from pathlib import Path

import yaml

AS_OF = dt.date(2026, 11, 23)
NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
CONTRACTOR = "Acme Repairs"  # the demo config's: areas NORTH and EAST
HOMES_PER_POSTCODE = 12
P99_GOAL_MS, RATE_GOAL = 100.0, 200.0

PLUGIN = '''"""The register page's plugin for the look-up benchmark: the same app, its token rate limit raised."""
from airflow.plugins_manager import AirflowPlugin

from cautionflow.web.register_page import RESOURCE_NAME, URL_PREFIX, create_app


class CautionflowRegisterPage(AirflowPlugin):
    name = "cautionflow_register_page"
    fastapi_apps = [{"app": create_app(token_rate_limit=10**9), "url_prefix": URL_PREFIX, "name": RESOURCE_NAME}]
'''


def street_postcode(asset_ref: str, area: str | None) -> str:
    """A full UK-shaped postcode shared by about HOMES_PER_POSTCODE homes (by asset number)."""
    number = int("".join(c for c in asset_ref if c.isdigit()) or 0) // HOMES_PER_POSTCODE
    letters = "ABDEFGHJLNPQRSTUWXYZ"
    outward = f"{(area or 'Q')[0]}N{number % 90 + 10}"
    inward = f"{number // 90 % 10}{letters[number // 900 % 20]}{letters[number // 18000 % 20]}"
    return f"{outward} {inward}"


def build_source(folder: Path, alerts: int) -> Path:
    """The demo generator's housing database, flattened as an export view returns it, each home
    given its street's postcode (the generator's postcodes are shared by ~80 alerts each)."""
    from cautionflow.demo.housing import build_housing_database

    path = folder / "housing.db"
    build_housing_database(path, homes=max(125_000, alerts * 5 // 4), alerts=alerts, as_of=AS_OF, seed=11)
    with sqlite3.connect(path) as conn:
        conn.create_function("street_postcode", 2, street_postcode, deterministic=True)
        conn.execute("CREATE TABLE alerts_flat AS SELECT * FROM caution_alerts_export")
        conn.execute("UPDATE alerts_flat SET postcode = street_postcode(asset_ref, area) WHERE asset_ref IS NOT NULL")
    return path


def sync(source: Path, register_url: str) -> dict:
    from cautionflow.adapters.register import Register
    from cautionflow.adapters.source import SqlAlertSource
    from cautionflow.services.sync import sync_register

    register = Register(register_url)
    try:
        register.migrate(create=True)
        summary = sync_register(SqlAlertSource(f"sqlite:///{source}", "SELECT * FROM alerts_flat"), register,
                                as_of=AS_OF, run_id="bench-lookup")
    finally:
        register.dispose()
    return summary.as_dict()


def sql(url: str, statement: str) -> list[tuple]:
    import psycopg

    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        cursor = conn.execute(statement)
        return cursor.fetchall() if cursor.description else []


def postcodes_to_ask(url: str, areas: tuple[str, ...], count: int, seed: int = 5) -> list[str]:
    """`count` postcodes: nine in ten of active alerts in the contractor's areas (as a job system
    would type them: any case, spaces or none), one in ten elsewhere."""
    rows = sql(url, "SELECT DISTINCT postcode, area FROM alerts WHERE register_state = 'active' AND postcode IS NOT NULL")
    mine = [p for p, a in rows if a in areas]
    others = [p for p, a in rows if a not in areas]
    rng = random.Random(seed)
    asked = []
    for _ in range(count):
        postcode = rng.choice(others if rng.random() < 0.1 and others else mine)
        asked.append(rng.choice([postcode, postcode.lower(), postcode.replace(" ", "")]))
    return asked


def start_api_server(folder: Path, config_path: Path, workers: int) -> tuple[subprocess.Popen, str, Path]:
    from tests.smtp_server import free_port
    from tests.support import AIRFLOW_BIN, migrated_airflow

    plugins = folder / "plugins"
    plugins.mkdir()
    (plugins / "cautionflow_register_page.py").write_text(PLUGIN)
    dags = folder / "dags"
    dags.mkdir()
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = migrated_airflow(folder / "airflow", dags_folder=dags, extra={
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(plugins),
        "AIRFLOW__CORE__AUTH_MANAGER": "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "ops:viewer",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(folder / "passwords.json"),
        "AIRFLOW__API_AUTH__JWT_SECRET": secrets.token_hex(32),
        "AIRFLOW__API__SECRET_KEY": secrets.token_hex(16),
        "AIRFLOW__API__BASE_URL": url,
        "AIRFLOW__CORE__LAZY_LOAD_PLUGINS": "False",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "WARNING",
        "CAUTIONFLOW_CONFIG": str(config_path),
    }, without=("AIRFLOW_CONN_CAUTIONFLOW_REGISTER",))
    log = folder / "api-server.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(AIRFLOW_BIN / "airflow"), "api-server", "--host", "127.0.0.1", "--port", str(port),
             "--workers", str(workers)],
            env=env, cwd=folder, stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
        )
    import httpx

    deadline = time.monotonic() + 240
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the api-server exited with {process.returncode}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(f"{url}/api/v2/monitor/health", timeout=5).status_code == 200:
                return process, url, log
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise SystemExit(f"the api-server did not start in 240 s:\n{log.read_text()[-3000:]}")
        time.sleep(1)


def run_clients(url: str, token: str, postcodes: list[str], clients: int, seconds: float,
                server: int | None = None) -> dict:
    """`clients` threads looking up postcodes for `seconds`: latencies (s), statuses, results found,
    and the CPU seconds spent meanwhile (`cpu_now`). The clients are plain `http.client` keep-alive
    connections: the load generator shares the machine's two cores with the server, and httpx cost
    several times the CPU a request."""
    import http.client
    import json
    from urllib.parse import urlencode, urlsplit

    where = urlsplit(url)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    found = [0]
    means: list[float] = []  # each client's mean latency: keep-alive connections stay on one worker
    lock = threading.Lock()
    start_gate = threading.Barrier(clients + 1)

    def client(n: int) -> None:
        rng = random.Random(n)
        mine, codes, hits = [], {}, 0
        connection = http.client.HTTPConnection(where.hostname, where.port, timeout=30)
        headers = {"Authorization": f"Bearer {token}"}
        try:
            start_gate.wait()
            end = time.perf_counter() + seconds
            while (began := time.perf_counter()) < end:
                path = "/cautionflow/api/v1/alerts?" + urlencode({"postcode": rng.choice(postcodes)})
                connection.request("GET", path, headers=headers)
                response = connection.getresponse()
                body = response.read()
                mine.append(time.perf_counter() - began)
                codes[response.status] = codes.get(response.status, 0) + 1
                if response.status == 200:
                    hits += bool(json.loads(body)["total"])
        finally:
            connection.close()
        with lock:
            latencies.extend(mine)
            means.append(statistics.fmean(mine) if mine else 0.0)
            for code, n in codes.items():
                statuses[code] = statuses.get(code, 0) + n
            found[0] += hits

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    for thread in threads:
        thread.start()
    start_gate.wait()
    began, cpu_before = time.perf_counter(), cpu_now(server)
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    cpu = {k: v - cpu_before[k] for k, v in cpu_now(server).items()}
    return {"latencies": latencies, "statuses": statuses, "found": found[0], "elapsed": elapsed, "cpu": cpu,
            "means": means}


def _ticks(stat: str) -> tuple[str, int, int]:
    """(command, process group, CPU ticks of the process and its reaped children) from /proc/PID/stat."""
    command, fields = stat[stat.index("(") + 1 : stat.rindex(")")], stat[stat.rindex(")") + 2 :].split()
    return command, int(fields[2]), sum(int(f) for f in fields[11:15])


def cpu_now(server: int | None) -> dict[str, float]:
    """CPU seconds so far: the api-server's process group, every PostgreSQL process (other databases'
    too; the postmaster's reaped children included), this process (the clients), and the machine's
    busy time (everything, other users' work included). Linux only; empty elsewhere."""
    tick = os.sysconf("SC_CLK_TCK")
    totals = {"api-server": 0, "postgresql": 0}
    try:
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                command, group, ticks = _ticks((entry / "stat").read_text())
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
            if server is not None and group == server:
                totals["api-server"] += ticks
            elif command == "postgres":
                totals["postgresql"] += ticks
        machine = [int(f) for f in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    except OSError:
        return {}
    times = os.times()
    return {**{k: v / tick for k, v in totals.items()}, "clients": times.user + times.system,
            "machine": (sum(machine) - machine[3] - machine[4]) / tick}


def describe(label: str, run: dict) -> tuple[float, float, float]:
    latencies = sorted(run["latencies"])
    p50 = statistics.median(latencies) * 1000
    p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
    rate = len(latencies) / run["elapsed"]
    print(f"{label:<22} lookups={len(latencies):>6,}  {rate:7.1f}/s  p50={p50:7.1f} ms  p99={p99:7.1f} ms  "
          f"statuses={run['statuses']}  with an alert={run['found']:,}")
    if run["means"]:
        print(f"{'':<22} each client's mean latency: {min(run['means']) * 1000:.1f} to {max(run['means']) * 1000:.1f} ms "
              "(a spread is the workers' share of the connections)")
    if run["cpu"]:
        each = {k: v * 1000 / max(1, len(latencies)) for k, v in run["cpu"].items()}
        cores = run["cpu"]["machine"] / run["elapsed"]
        print(f"{'':<22} CPU ms a look-up: api-server {each['api-server']:.1f}, PostgreSQL {each['postgresql']:.1f}, "
              f"clients {each['clients']:.1f}; the machine busy {cores:.2f} of {os.cpu_count()} cores")
    return p50, p99, rate


def lookups_logged(url: str) -> int:
    return sql(url, "SELECT COUNT(*) FROM lookups")[0][0]


def sessions_opened(url: str) -> int:
    """PostgreSQL sessions ever opened to the register's database (this count's own included)."""
    return sql(url, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")[0][0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--baseline-seconds", type=float, default=10.0)
    parser.add_argument("--workers", type=int, default=2, help="api-server worker processes")
    args = parser.parse_args(argv)

    from tests.support import demo_config, postgres_available, stop_process_group, temporary_postgres_database

    from cautionflow.config import load_config
    from cautionflow.steps import lookup

    if not postgres_available():
        print("lookup: skipped, no PostgreSQL server on 127.0.0.1:5432")
        return 0
    with tempfile.TemporaryDirectory(prefix="cautionflow-bench-lookup-") as tmp, \
            temporary_postgres_database("cf_bench_lookup") as register_url:
        folder = Path(tmp)
        start = time.perf_counter()
        source = build_source(folder, args.alerts)
        summary = sync(source, register_url)
        print(f"register: {summary['inserted']:,} alerts synced into PostgreSQL in {time.perf_counter() - start:.1f}s")
        # The first load gathers the planner's statistics itself (`ANALYZE alerts`): without them,
        # on a server with autovacuum off (this machine's), the planner ANDed the register_state
        # index with the postcode's, 3 ms of PostgreSQL CPU a look-up instead of 0.1.
        config_path = folder / "cautionflow.yaml"
        config_path.write_text(yaml.safe_dump(demo_config(folder, register_url=register_url)))
        config = load_config(config_path, home=folder)
        [acme] = [r for r in config.recipients if r.name == CONTRACTOR]
        token, _ = lookup.create_token(config, CONTRACTOR, expires=None, now=NOW)
        postcodes = postcodes_to_ask(register_url, tuple(acme.areas), 5000)
        sizes = sql(register_url, "SELECT max(c), avg(c) FROM (SELECT count(*) c FROM alerts GROUP BY postcode) t")[0]
        print(f"postcodes: {len(set(postcodes)):,} distinct asked; alerts a postcode: max {sizes[0]}, "
              f"mean {float(sizes[1]):.1f}; token for {CONTRACTOR} ({', '.join(acme.areas)})")

        process, url, log = start_api_server(folder, config_path, args.workers)
        try:
            # Warm up: every worker imports, reads the config, checks the register's schema and fills its pool.
            run_clients(url, token, postcodes, args.clients, 3.0)
            before, sessions = lookups_logged(register_url), sessions_opened(register_url)
            indexed = run_clients(url, token, postcodes, args.clients, args.seconds, process.pid)
            after, sessions = lookups_logged(register_url), sessions_opened(register_url) - sessions - 2
            p50, p99, rate = describe("with the index", indexed)
            served = len(indexed["latencies"])
            print(f"{'':<22} lookup log: {after - before:,} rows for {served:,} look-ups "
                  f"({'every one logged' if after - before == served else 'MISSING ROWS'}); "
                  f"{sessions:,} PostgreSQL connections opened meanwhile")
            verdict = "OK" if p99 < P99_GOAL_MS and rate >= RATE_GOAL else "OVER GOAL"
            print(f"{'':<22} goal p99 < {P99_GOAL_MS:.0f} ms and >= {RATE_GOAL:.0f}/s: {verdict}")

            sql(register_url, "DROP INDEX ix_alerts_postcode_key")  # the same look-ups, as full scans
            sql(register_url, "ANALYZE alerts")
            scanned = run_clients(url, token, postcodes, args.clients, args.baseline_seconds, process.pid)
            s50, s99, srate = describe("full scan (no index)", scanned)
            print(f"{'':<22} the index: {srate and rate / srate:.1f}x the look-ups a second, "
                  f"p50 {s50 / p50:.1f}x and p99 {s99 / p99:.1f}x lower")
        finally:
            stop_process_group(process)
        if os.environ.get("BENCH_SHOW_LOG"):
            print(log.read_text()[-3000:])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
