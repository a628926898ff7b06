"""Benchmark: the urgent cycle at 10,000 alerts, from a change in the source to notices accepted.

    python -m bench.urgent [--alerts 10000] [--recipients 50] [--backend sqlite|postgresql|both]
                           [--security starttls|none]

Issue 15: an urgent warning reaches contractors and call handlers within the hour, by a DAG every
15 minutes whose sync must stay cheap. For each register backend, in the same run:

* **sync alone**: `run sync` of the 10,000 alerts already in the register, none changed (the cost
  every quarter of an hour pays when nothing happened);
* **urgent cycle**: one weapons warning added to the housing database, then the `urgent` step end
  to end: its sync, finding the urgent change, composing the notices, queueing them in the outbox
  and delivering them to a relay requiring STARTTLS and AUTH (the digests benchmark's local
  aiosmtpd server, its own process), until the relay accepted them. Goal: under 10 s;
* **baseline**: the same change the way it went before, `run sync` then `run digests` for the next
  day on a register prepared the same way (every due recipient's full digest).

The register is prepared as a deployment's would be: the first sync, the deadlines, a day's digests
(so each recipient's urgent window starts at its digest). Exit status non-zero only on an error
(the notices not delivered, or a rerun sending again). Synthetic data only (example domains).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import random
import ssl
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.digests import PASSWORD, USER, BenchServer, recipients, synthetic_alerts

AS_OF = dt.date(2026, 11, 23)
GOAL_SECONDS = 10.0
AREAS = [f"AREA{n:02d}" for n in range(1, 31)]


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


@contextlib.contextmanager
def register_url(backend: str, folder: Path, name: str) -> Iterator[str]:
    if backend == "sqlite":
        yield f"sqlite:///{folder / f'{name}.db'}"
        return
    from tests.support import temporary_postgres_database

    with temporary_postgres_database(f"cf_bench_{name}") as url:
        yield url


def prepared(base: dict, url: str, folder: Path, context: ssl.SSLContext | None) -> Any:
    """A register as a deployment's: first sync, deadlines, the day's digests sent."""
    from cautionflow.config import parse_config
    from cautionflow.steps import run_deadlines, run_digests, run_sync

    config = parse_config({**base, "register_url": url, "output_dir": str(folder / "reports")}, home=Path.cwd())
    run_sync(config, as_of=AS_OF, run_id="bench-first-sync")
    run_deadlines(config, as_of=AS_OF, run_id="bench-deadlines")
    digests = run_digests(config, as_of=AS_OF, run_id="bench-digests", tls_context=context,
                          smtp_overrides={"password": PASSWORD})
    if digests["failed"] or digests["pending"]:
        raise RuntimeError(f"the day's digests did not all go: {digests}")
    return config


def run_backend(backend: str, folder: Path, server: BenchServer, base: dict, rows: list[dict], urgent_row: dict,
                context: ssl.SSLContext | None) -> dict[str, Any]:
    from tests.support import write_sqlite_source

    from cautionflow.steps import run_digests, run_sync, run_urgent

    overrides = {"password": PASSWORD}
    source = folder / "housing.db"
    with register_url(backend, folder, f"urgent_{backend}") as ours_url, \
            register_url(backend, folder, f"daily_{backend}") as daily_url:
        write_sqlite_source(source, rows)
        ours = prepared(base, ours_url, folder, context)
        daily = prepared(base, daily_url, folder, context)

        unchanged_seconds, unchanged = timed(lambda: run_sync(ours, as_of=AS_OF, run_id="bench-unchanged"))

        write_sqlite_source(source, [*rows, urgent_row])  # 10:00: a weapons warning in the housing system
        server.ask("reset")
        urgent_seconds, summary = timed(lambda: run_urgent(
            ours, as_of=AS_OF, run_id="bench-urgent", tls_context=context, smtp_overrides=overrides))
        relay = server.count()
        rerun = run_urgent(ours, as_of=AS_OF, run_id="bench-urgent-rerun", tls_context=context,
                           smtp_overrides=overrides)

        server.ask("reset")
        next_day = AS_OF + dt.timedelta(days=1)
        baseline_seconds, (_, digests) = timed(lambda: (
            run_sync(daily, as_of=next_day, run_id="bench-daily-sync"),
            run_digests(daily, as_of=next_day, run_id="bench-daily-digests", tls_context=context,
                        smtp_overrides=overrides),
        ))
    return {
        "backend": backend, "unchanged_seconds": unchanged_seconds, "unchanged": unchanged["unchanged"],
        "urgent_seconds": urgent_seconds, "summary": summary, "relay_messages": relay[0], "rerun": rerun,
        "baseline_seconds": baseline_seconds, "baseline_sent": digests["sent"],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--alerts", type=int, default=10_000)
    parser.add_argument("--recipients", type=int, default=50)
    parser.add_argument("--backend", choices=["sqlite", "postgresql", "both"], default="both")
    parser.add_argument("--security", choices=["starttls", "none"], default="starttls")
    args = parser.parse_args(argv)

    from tests.support import alert_row, postgres_available

    backends = ["sqlite", "postgresql"] if args.backend == "both" else [args.backend]
    if "postgresql" in backends and not postgres_available():
        print("PostgreSQL on 127.0.0.1:5432 is not available: SQLite only", file=sys.stderr)
        backends.remove("postgresql")
    rng = random.Random(15)
    rows = synthetic_alerts(args.alerts, AREAS, rng)
    people = recipients(args.recipients, AREAS, rng)
    urgent_row = alert_row(alert_id="CX-URGENT", alert_code="WPN", area=AREAS[0], address="3 Heron Way, Eastwick",
                           postcode="EW1 9ZZ", person_ref="P-URGENT", person_name="Nia Demo", asset_ref="H-URGENT")
    told = sum(1 for p in people if p["role"] == "out_of_hours" or AREAS[0] in p.get("areas", ()))

    results = []
    errors = []
    with tempfile.TemporaryDirectory(prefix="cautionflow-bench-urgent-") as tmp:
        folder = Path(tmp)
        server = BenchServer(folder, tls=args.security == "starttls")
        try:
            context = ssl.create_default_context(cafile=server.cert) if server.cert else None
            base = {
                "organisation": "Example Homes", "policy": "dover", "source": {"url": f"sqlite:///{folder}/housing.db"},
                "smtp": {"host": "127.0.0.1", "port": server.port, "security": args.security, "username": USER,
                         "sender": "Example Homes <alerts@example.org>"},
                "recipients": people,
            }
            for backend in backends:
                results.append(run_backend(backend, folder, server, base, rows, urgent_row, context))
                print(f"  measured on {backend}", file=sys.stderr, flush=True)
        finally:
            server.close()

    print(f"urgent: {args.alerts:,} alerts, {args.recipients} recipients ({told} told of the change: the area's "
          f"contractors and the call handlers); relay requires {'STARTTLS and ' if server.cert else ''}AUTH")
    print(f"{'backend':<11} {'sync alone':>10} {'urgent cycle':>13} {'baseline':>9} {'ratio':>7}  goal < {GOAL_SECONDS:g} s")
    for r in results:
        s = r["summary"]
        ratio = r["baseline_seconds"] / r["urgent_seconds"]
        met = "met" if r["urgent_seconds"] < GOAL_SECONDS else f"MISSED: {r['urgent_seconds']:.1f} s"
        print(f"{r['backend']:<11} {r['unchanged_seconds']:9.2f}s {r['urgent_seconds']:12.2f}s "
              f"{r['baseline_seconds']:8.2f}s {ratio:6.1f}x  {met}")
        print(f"  sync alone: {r['unchanged']:,} unchanged; urgent: {s['changes']} change, {s['notices']} notices, "
              f"{s['sent']} sent, relay saw {r['relay_messages']}; rerun sent {r['rerun']['sent']}; "
              f"baseline (run sync + run digests, next day): {r['baseline_sent']} digests")
        if not (s["sent"] == s["notices"] == r["relay_messages"] == told and r["rerun"]["sent"] == 0):
            errors.append(f"{r['backend']}: the urgent notices were not each delivered exactly once")
    for error in errors:
        print(f"ERROR: {error}")
    return 1 if errors else 0


if __name__ == "__main__":
    raise SystemExit(main())
