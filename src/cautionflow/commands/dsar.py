"""`cautionflow dsar --config FILE --person-ref REF`: a subject access export of one person (JSON last)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from cautionflow.cli import CommandError, add_config_argument, with_example


def register(subparsers: argparse._SubParsersAction) -> None:
    from cautionflow.commands.run import parse_date

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
    from cautionflow.adapters.register import Register, RegisterError
    from cautionflow.adapters.templates import renderer
    from cautionflow.commands.run import today_in
    from cautionflow.config import ConfigError, load_config
    from cautionflow.domain.subject_access import UnknownPerson
    from cautionflow.services.subject_access import default_path, gather_export, write_export

    person_ref = args.person_ref.strip()
    if not person_ref:
        raise CommandError("--person-ref: give the person's reference")
    try:
        config = load_config(args.config)
        produced_on = args.as_of or today_in(config.timezone)
        register = Register(config.register_url)
        try:
            export = gather_export(
                register, person_ref, include_withheld=args.include_withheld, organisation=config.organisation,
                produced_on=produced_on,
            )
        except UnknownPerson:
            raise CommandError(
                f"the register {register.describe()} holds nothing about person reference {person_ref!r} "
                "(no alert, letter or quarantined row); check the reference in the housing system. No file written."
            ) from None
        finally:
            register.dispose()
        path = Path(args.output) if args.output else default_path(config.path(config.output_dir), export, args.format)
        if path.exists() and not args.force:
            # An export is personal data sent to a person: never silently replace one already made.
            raise CommandError(f"{path} exists; choose another --output or add --force to replace it. No file written.")
        write_export(export, args.format, renderer(config), path)
    except (ConfigError, RegisterError) as exc:
        raise CommandError(str(exc)) from None
    except OSError as exc:
        raise CommandError(f"cannot write the export: {exc}") from None
    for warning in export.officer_warnings:
        print(f"cautionflow: warning: {warning}", file=sys.stderr)
    print(f"Subject access export for {person_ref} ({export.copy}'s copy, {args.format}): {path}")
    print(json.dumps({"person_ref": person_ref, "copy": export.copy, "format": args.format, "path": str(path),
                      **export.counts(), "warnings": len(export.officer_warnings)}, sort_keys=True))
    return 0
