"""What every command shares: the user's one-line error, --config, dates, examples in --help.

Here rather than in `cli.py` so that the commands never import the command line that loads them.
"""

from __future__ import annotations

import argparse
import datetime as dt
from typing import Any

from cautionflow.config import CONFIG_ENV


class CommandError(Exception):
    """A problem the user can fix; shown as one line on stderr."""


def with_example(command: str) -> dict[str, Any]:
    """`add_parser` arguments that end a command's --help with one example, kept as written."""
    return {"epilog": f"example:\n  {command}", "formatter_class": argparse.RawDescriptionHelpFormatter}


def add_config_argument(parser: argparse.ArgumentParser) -> None:
    """--config, falling back to $CAUTIONFLOW_CONFIG (resolved in `main`, so --help shows no path)."""
    parser.add_argument(
        "--config", metavar="FILE", default=None, help=f"the deployment's YAML file (default: ${CONFIG_ENV})"
    )


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


def today_in(timezone: str) -> dt.date:
    """Today's date in `timezone` from the wall clock: the deliberate default of `--as-of` on the
    command line (a person running a step by hand means today). The only place the commands read
    the clock; product code below takes the date as a parameter."""
    from zoneinfo import ZoneInfo

    from cautionflow.clock import system_clock

    return system_clock().astimezone(ZoneInfo(timezone)).date()
