"""`cautionflow governance --config FILE [--as-of DATE] [--report NAME]`: equality monitoring and the
officers' lists; each report's paths, then one JSON summary as the last line."""

from __future__ import annotations

import argparse
import json

from cautionflow.commands.common import CommandError, add_config_argument, parse_date, today_in, with_example

CHOICES = ("equality", "survey-exclusions", "non-notification", "stale", "all")


def register(subparsers: argparse._SubParsersAction) -> None:

    parser = subparsers.add_parser(
        "governance", help="equality monitoring, survey exclusions, non-notification and stale-alert lists",
        description=__doc__, **with_example("cautionflow governance --config cautionflow.yaml --report stale"),
    )
    add_config_argument(parser)
    parser.add_argument("--as-of", type=parse_date, default=None, help="the day to report as (default: today)")
    parser.add_argument("--report", choices=CHOICES, default="all", help="one report, or all (default)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import run_governance, step_errors

    try:
        config = load_config(args.config)
        as_of = args.as_of or today_in(config.timezone)
        summary = run_governance(config, as_of=as_of, reports=None if args.report == "all" else (args.report,))
    except step_errors() as exc:  # GovernanceError is a ConfigError; a bad equality query a SourceError
        raise CommandError(str(exc)) from None
    for name, path in summary["reports"].items():
        print(f"{name}: {path}")
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0
