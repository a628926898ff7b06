"""`cautionflow run STEP --config FILE [--as-of DATE]`: one pipeline step without the scheduler."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid

from cautionflow.cli import CommandError, add_config_argument, with_example

PROGRESS_NOTE = """

Progress goes to stderr: a bar per stage on a terminal, plain lines otherwise (rows read,
validated, written, with rates and elapsed time). Stdout holds only the JSON summary.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from cautionflow.steps import PIPELINE, STEPS

    parser = subparsers.add_parser(
        "run", help="run a pipeline step and print its JSON summary last", description=__doc__ + PROGRESS_NOTE,
        **with_example("cautionflow run sync --config cautionflow.yaml --as-of 2026-11-23"),
    )
    parser.add_argument("step", choices=[*STEPS, "all"], help="the step; 'all' runs " + ", ".join(PIPELINE))
    add_config_argument(parser)
    parser.add_argument("--as-of", type=parse_date, default=None,
                        help="the day to run as (default: today in the config's timezone)")
    parser.add_argument("--run-id", default=None, help="recorded in the register's history")
    parser.add_argument(
        "--allow-mass-end", action="store_true",
        help="confirm a real clean-up: let the sync end (or take out of every contractor's view) more "
        "active alerts than sync.mass_end_share and sync.mass_end_minimum allow",
    )
    # The older name, from when only an empty source was refused; kept for scripts that use it.
    parser.add_argument("--allow-empty-source", dest="allow_mass_end", action="store_true", help=argparse.SUPPRESS)
    parser.set_defaults(handler=handle)


# The dates a register can be run as: deadlines years after the as-of date must still be dates
# (`--as-of 9999-12-31` once ended in an OverflowError traceback).
EARLIEST, LATEST = dt.date(1900, 1, 1), dt.date(2999, 12, 31)


def parse_date(text: str) -> dt.date:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got '{text}'") from None
    if not EARLIEST <= day <= LATEST:
        raise argparse.ArgumentTypeError(f"{text} is out of range ({EARLIEST.year} to {LATEST.year})")
    return day


def handle(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import PIPELINE, STEPS, step_errors

    try:
        config = load_config(args.config)
        as_of = args.as_of or today_in(config.timezone)  # the wall clock, deliberately: --as-of's default
        run_id = args.run_id or f"cli__{as_of.isoformat()}__{uuid.uuid4().hex[:8]}"
        names = PIPELINE if args.step == "all" else (args.step,)
        summaries = {}
        for name in names:
            kwargs = {"allow_mass_end": args.allow_mass_end, "progress": args.progress} if name == "sync" else {}
            summaries[name] = STEPS[name](config, as_of=as_of, run_id=run_id, **kwargs)
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    result = summaries[names[0]] if len(names) == 1 else {"step": "all", "as_of": as_of.isoformat(), **summaries}
    print(json.dumps(result, sort_keys=True, default=str))
    # A step that ran but left work undone (digests failed or pending) exits 3, so a cron user sees it.
    return 3 if any(summary.get("complete") is False for summary in summaries.values()) else 0


def today_in(timezone: str) -> dt.date:
    """Today's date in `timezone` from the wall clock: the deliberate default of `--as-of` on the
    command line (a person running a step by hand means today). The only place the commands read
    the clock; product code below takes the date as a parameter."""
    from zoneinfo import ZoneInfo

    from cautionflow.clock import system_clock

    return system_clock().astimezone(ZoneInfo(timezone)).date()
