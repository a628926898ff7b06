"""`cautionflow demo-data`: build the synthetic CX-style housing database for demos and benchmarks."""

from __future__ import annotations

import argparse
import json
from datetime import date
from pathlib import Path

from cautionflow.commands.common import CommandError, today_in, with_example
from cautionflow.config import DEFAULT_TIMEZONE

DEFAULT_OUT = Path("var/demo/housing.db")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "demo-data",
        help="build a synthetic CX-style housing database (SQLite) with a caution_alerts_export view",
        description=(
            "Write a fresh SQLite database of made-up homes, residents and caution alerts, including a\n"
            "counted handful of deliberately bad rows, shaped like the landlord's housing system."
        ),
        **with_example("cautionflow demo-data --out var/demo/housing.db --alerts 600 --as-of 2026-11-23"),
    )
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help=f"database file (default {DEFAULT_OUT})")
    parser.add_argument("--homes", type=int, default=20_000, help="number of homes (default 20000)")
    parser.add_argument("--alerts", type=int, default=600, help="number of alert rows (default 600)")
    parser.add_argument("--as-of", default=None, help="YYYY-MM-DD the dates are relative to (default today)")
    parser.add_argument("--seed", type=int, default=7, help="random seed; the same seed builds the same data")
    parser.add_argument("--timezone", default=DEFAULT_TIMEZONE,
                        help=f"whose today --as-of defaults to (default {DEFAULT_TIMEZONE}, as the config's)")
    parser.add_argument(
        "--second-day", action="store_true",
        help="instead of building, apply the demo's scripted next day to the --out database as of --as-of: "
             "alerts added, one escalated (VIP to WPN), some ended (once per database)",
    )
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    """Build the database, print a short summary and, as the last line, the summary as JSON."""
    as_of = _as_of(args.as_of, args.timezone)
    if getattr(args, "second_day", False):
        return _second_day(args.out, as_of, args.seed)
    # Imported here so `cautionflow --help` and the other commands do not pay for numpy.
    from cautionflow.demo.housing import MIN_ALERTS, build_housing_database

    if args.homes < 1:
        raise CommandError(f"--homes must be at least 1, not {args.homes}")
    if args.alerts < MIN_ALERTS:
        raise CommandError(f"--alerts must be at least {MIN_ALERTS} (room for every fault kind), not {args.alerts}")
    out: Path = args.out
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        summary = build_housing_database(out, homes=args.homes, alerts=args.alerts, as_of=as_of, seed=args.seed)
    except (OSError, ValueError) as exc:
        raise CommandError(f"could not build {out}: {exc}".replace("\n", " ")) from exc

    faults = ", ".join(f"{kind} {count}" for kind, count in summary.faults.items())
    print(f"Built {summary.path}: {summary.homes} homes, {summary.people} people, {summary.alerts} alerts "
          f"as of {summary.as_of.isoformat()} (seed {summary.seed}).")
    print(f"Deliberately bad rows: {faults}.")
    print("Read it through the caution_alerts_export view.")
    print(json.dumps(summary.as_dict(), sort_keys=True))
    return 0


def _second_day(out: Path, day: date, seed: int) -> int:
    """Apply the scripted second day; say what changed (ids and codes), the JSON last."""
    from cautionflow.demo.second_day import apply_second_day

    try:
        plan = apply_second_day(out, day, seed=seed).as_dict()
    except (OSError, ValueError) as exc:
        raise CommandError(f"could not apply the second day to {out}: {exc}".replace("\n", " ")) from exc
    added = ", ".join(f"{a['alert_id']} {a['code']}" for a in plan["added"])
    ended = ", ".join(f"{e['alert_id']} {e['code']} ({e['how']})" for e in plan["ended"])
    [up] = plan["escalated"]
    print(f"Second day {plan['day']} in {out}: added {len(plan['added'])} ({added}); "
          f"escalated {up['alert_id']} from {up['from']} to {up['to']}; ended {len(plan['ended'])} ({ended}).")
    print(json.dumps(plan, sort_keys=True))
    return 0


def _as_of(value: str | None, timezone: str) -> date:
    if value is None:  # the deliberate default: the demo is of today, in the landlord's time zone
        try:
            return today_in(timezone)
        except (ValueError, KeyError):  # zoneinfo's ZoneInfoNotFoundError is a KeyError
            raise CommandError(f"--timezone: '{timezone}' is not a time zone (an IANA name such as Europe/London)") from None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise CommandError(f"--as-of must be a date as YYYY-MM-DD, not {value!r}") from None
