"""`cautionflow run STEP --config FILE [--as-of DATE]`: one pipeline step without the scheduler."""

from __future__ import annotations

import argparse
import json
import uuid

from cautionflow.commands.common import CommandError, add_config_argument, parse_date, today_in, with_example

PROGRESS_NOTE = """

Progress goes to stderr: a bar per stage on a terminal, plain lines otherwise (rows read,
validated, written, with rates and elapsed time). Stdout holds only the JSON summary.
"""


def register(subparsers: argparse._SubParsersAction) -> None:
    from cautionflow.steps import COMMAND_STEPS, PIPELINE

    parser = subparsers.add_parser(
        "run", help="run a pipeline step and print its JSON summary last", description=__doc__ + PROGRESS_NOTE,
        **with_example("cautionflow run sync --config cautionflow.yaml --as-of 2026-11-23"),
    )
    parser.add_argument("step", choices=[*COMMAND_STEPS, "all"], help="the step; 'all' runs " + ", ".join(PIPELINE))
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
            summaries[name] = STEPS[name].run(config, as_of=as_of, run_id=run_id, **kwargs)
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    result = summaries[names[0]] if len(names) == 1 else {"step": "all", "as_of": as_of.isoformat(), **summaries}
    print(json.dumps(result, sort_keys=True, default=str))
    # A step that ran but left work undone (digests failed or pending) exits 3, so a cron user sees it.
    return 3 if any(summary.get("complete") is False for summary in summaries.values()) else 0
