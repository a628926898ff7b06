"""`cautionflow run STEP --config FILE [--as-of DATE]`: one pipeline step without the scheduler."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid

from cautionflow.cli import CommandError


def register(subparsers: argparse._SubParsersAction) -> None:
    from cautionflow.steps import PIPELINE, STEPS

    parser = subparsers.add_parser("run", help="run a pipeline step and print its JSON summary last")
    parser.add_argument("step", choices=[*STEPS, "all"], help="the step; 'all' runs " + ", ".join(PIPELINE))
    parser.add_argument("--config", required=True, help="the deployment's YAML file")
    parser.add_argument("--as-of", type=parse_date, default=None, help="the day to run as (default: today)")
    parser.add_argument("--run-id", default=None, help="recorded in the register's history")
    parser.add_argument(
        "--allow-empty-source", action="store_true", help="let an empty source end every active alert"
    )
    parser.set_defaults(handler=handle)


def parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got '{text}'") from None


def handle(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import PIPELINE, STEPS, step_errors

    as_of = args.as_of or today_in("Europe/London")
    run_id = args.run_id or f"cli__{as_of.isoformat()}__{uuid.uuid4().hex[:8]}"
    try:
        config = load_config(args.config)
        names = PIPELINE if args.step == "all" else (args.step,)
        summaries = {}
        for name in names:
            kwargs = {"allow_empty_source": args.allow_empty_source} if name == "sync" else {}
            summaries[name] = STEPS[name](config, as_of=as_of, run_id=run_id, **kwargs)
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    result = summaries[names[0]] if len(names) == 1 else {"step": "all", "as_of": as_of.isoformat(), **summaries}
    print(json.dumps(result, sort_keys=True, default=str))
    # A step that ran but left work undone (digests failed or pending) exits 3, so a cron user sees it.
    return 3 if any(summary.get("complete") is False for summary in summaries.values()) else 0


def today_in(timezone: str) -> dt.date:
    from zoneinfo import ZoneInfo

    return dt.datetime.now(ZoneInfo(timezone)).date()
