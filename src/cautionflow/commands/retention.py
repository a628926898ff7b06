"""`cautionflow retention --config FILE [--as-of DATE] [--dry-run]`: anonymise what the policy no longer keeps."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import uuid

from cautionflow.commands.common import CommandError, add_config_argument, parse_date, today_in, with_example


def register(subparsers: argparse._SubParsersAction) -> None:

    parser = subparsers.add_parser(
        "retention",
        help="anonymise the personal details of alerts ended longer ago than the profile keeps them (JSON last)",
        description=__doc__, **with_example("cautionflow retention --config cautionflow.yaml --dry-run"),
    )
    add_config_argument(parser)
    parser.add_argument("--as-of", type=parse_date, default=None, help="the day to run as (default: today)")
    parser.add_argument("--run-id", default=None, help="recorded in the anonymisation log")
    parser.add_argument("--dry-run", action="store_true", help="list what would be anonymised; change nothing")
    parser.add_argument("--force", action="store_true",
                        help="accept an --as-of more than a day after today (anonymises what is not yet due)")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import run_retention, step_errors

    try:
        config = load_config(args.config)
        today = today_in(config.timezone)
        as_of = args.as_of or today
        if as_of > today + dt.timedelta(days=1) and not args.force and not args.dry_run:
            # Anonymising cannot be undone: a mistyped year would clear alerts the policy still keeps.
            raise CommandError(
                f"--as-of {as_of.isoformat()} is after tomorrow ({today.isoformat()} today): retention would "
                "anonymise alerts not yet due. Use --dry-run to see what it would do, or --force if you mean it."
            )
        run_id = args.run_id or f"cli__{as_of.isoformat()}__{uuid.uuid4().hex[:8]}"
        summary = run_retention(config, as_of=as_of, run_id=run_id, dry_run=args.dry_run)
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    print(summary["message"])
    for alert in summary["alerts"]:
        cleared = ", ".join(alert["fields"]) or "no alert fields"
        print(f"  {alert['alert_id']} (ended {alert['ended_on']}): {cleared}; history rows {alert['alert_history']}, "
              f"letters {alert['letters']}, messages {alert['outbox']}, quarantined rows {alert['quarantine']}")
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0
