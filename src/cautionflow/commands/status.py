"""`cautionflow status --config FILE`: the register at a glance (JSON last)."""

from __future__ import annotations

import argparse
import json

from cautionflow.commands.common import CommandError, add_config_argument, with_example


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="summarise the register; JSON on the last line", description=__doc__,
        **with_example("cautionflow status --config cautionflow.yaml"),
    )
    add_config_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.reads import register_status

    try:
        status, text = register_status(load_config(args.config))
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    print(text)
    print(json.dumps(status, sort_keys=True))
    return 0
