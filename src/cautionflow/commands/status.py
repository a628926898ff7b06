"""`cautionflow status --config FILE`: the register at a glance (JSON last)."""

from __future__ import annotations

import argparse
import json

from cautionflow.cli import CommandError, add_config_argument, with_example


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "status", help="summarise the register; JSON on the last line", description=__doc__,
        **with_example("cautionflow status --config cautionflow.yaml"),
    )
    add_config_argument(parser)
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from cautionflow.adapters.register import Register, RegisterError
    from cautionflow.config import ConfigError, load_config
    from cautionflow.services.status import format_status, register_status

    try:
        config = load_config(args.config)
        register = Register(config.register_url)
        try:
            status = register_status(register)
        finally:
            register.dispose()
    except (ConfigError, RegisterError) as exc:
        raise CommandError(str(exc)) from None
    print(format_status(status, organisation=config.organisation))
    print(json.dumps(status, sort_keys=True))
    return 0
