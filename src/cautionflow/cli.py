"""The `cautionflow` command line: the same steps the DAG tasks call, without the scheduler."""

from __future__ import annotations

import argparse
import importlib
import sys

# Each module in cautionflow.commands registers its own sub-commands.
COMMAND_MODULES = ("run", "status", "compute_deadlines", "demo_data", "letters", "governance", "dsar", "retention", "digests")


class CommandError(Exception):
    """A problem the user can fix; shown as one line on stderr."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cautionflow", description=__doc__)
    subparsers = parser.add_subparsers(dest="command", required=True)
    for name in COMMAND_MODULES:
        module = importlib.import_module(f"cautionflow.commands.{name}")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.handler(args) or 0)
    except CommandError as exc:
        print(f"cautionflow: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
