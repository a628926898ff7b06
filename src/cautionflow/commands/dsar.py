"""`cautionflow dsar --config FILE --person-ref REF`: a subject access export of one person (JSON last)."""

from __future__ import annotations

import argparse
import json
import sys

from cautionflow.commands.common import CommandError, add_config_argument, parse_date, today_in, with_example


def register(subparsers: argparse._SubParsersAction) -> None:

    parser = subparsers.add_parser(
        "dsar", help="export everything the register holds about one person (subject access request)",
        description=__doc__, **with_example("cautionflow dsar --config cautionflow.yaml --person-ref P000123 --format pdf"),
    )
    add_config_argument(parser)
    parser.add_argument("--person-ref", required=True, help="the housing system's reference of the person")
    parser.add_argument("--format", choices=("json", "html", "pdf"), default="json")
    parser.add_argument(
        "--include-withheld", action="store_true",
        help="the officer's copy: include alerts withheld under a decision not to notify (Hexagon 5.5)",
    )
    parser.add_argument("--output", default=None, help="the file to write (default: OUTPUT_DIR/dsar/...)")
    parser.add_argument("--force", action="store_true", help="replace the output file if it exists")
    parser.add_argument("--as-of", type=parse_date, default=None, help="the date the export is produced on")
    parser.set_defaults(handler=handle)


def handle(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config, shown_path
    from cautionflow.steps import step_errors
    from cautionflow.steps.reads import ExportNotWritten, subject_access_export

    person_ref = args.person_ref.strip()
    if not person_ref:
        raise CommandError("--person-ref: give the person's reference")
    try:
        config = load_config(args.config)
        export, path = subject_access_export(
            config, person_ref, fmt=args.format, produced_on=args.as_of or today_in(config.timezone),
            include_withheld=args.include_withheld, output=args.output or None,  # a local path or a URL: the step tells them apart
            force=args.force,
        )
    except (*step_errors(), ExportNotWritten) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write the export: {exc}") from None
    for warning in export.officer_warnings:
        print(f"cautionflow: warning: {warning}", file=sys.stderr)
    print(f"Subject access export for {person_ref} ({export.copy}'s copy, {args.format}): {shown_path(path)}")
    print(json.dumps({"person_ref": person_ref, "copy": export.copy, "format": args.format, "path": shown_path(path),
                      **export.counts(), "warnings": len(export.officer_warnings)}, sort_keys=True))
    return 0
