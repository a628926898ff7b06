"""`cautionflow governance --config FILE [--as-of DATE] [--report NAME]`: equality monitoring and the
officers' lists (issue 7); each report's paths, then one JSON summary as the last line."""

from __future__ import annotations

import argparse
import json

from cautionflow.cli import CommandError, add_config_argument, with_example

CHOICES = ("equality", "survey-exclusions", "non-notification", "stale", "all")


def register(subparsers: argparse._SubParsersAction) -> None:
    from cautionflow.commands.run import parse_date

    parser = subparsers.add_parser(
        "governance", help="equality monitoring, survey exclusions, non-notification and stale-alert lists",
        description=__doc__, **with_example("cautionflow governance --config cautionflow.yaml --report stale"),
    )
    add_config_argument(parser)
    parser.add_argument("--as-of", type=parse_date, default=None, help="the day to report as (default: today)")
    parser.add_argument("--report", choices=CHOICES, default="all", help="one report, or all (default)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from cautionflow.adapters.register import Register
    from cautionflow.commands.run import today_in
    from cautionflow.config import load_config
    from cautionflow.services.governance_reports import REPORTS, run_governance_reports
    from cautionflow.steps import step_errors

    try:
        config = load_config(args.config)
        as_of = args.as_of or today_in(config.timezone)
        register = Register(config.register_url)
        try:
            result = run_governance_reports(
                config, register, as_of, reports=REPORTS if args.report == "all" else (args.report,)
            )
        finally:
            register.dispose()
    except step_errors() as exc:  # GovernanceError is a ConfigError; a bad equality query a SourceError
        raise CommandError(str(exc)) from None
    for name, path in result.paths.items():
        print(f"{name}: {path}")
    print(json.dumps(result.summary(), sort_keys=True, default=str))
    return 0
