"""`cautionflow letters list|show|approve|dispatch|export|translated|flags --config FILE`: the officers' side of
the letters queue.

Letters are queued by the `letters` step (`cautionflow run letters`, the `cautionflow_letters` DAG);
an officer reads them, approves a batch (or one letter), then dispatches the approved ones: one
print batch for the post room and email through the outbox. A letter held for translation leaves
the hold when the officer attaches the translated PDF (`translated`); `flags` lists what no letter
can settle (untold old alerts, decisions not to tell without a recorded reason).

A letter is dated the day it leaves: `approve` and `dispatch` date the letters `--as-of` (default
today), rendering again one that bears another date, its appeal deadline counted from that day.
`export` lists the dispatched letters for the housing system, where the decision is recorded.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from cautionflow.commands.common import CommandError, add_config_argument, parse_date, today_in, with_example


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "letters", help="list, approve and dispatch resident letters", description=__doc__,
        **with_example("cautionflow letters approve --config cautionflow.yaml --batch 2026-11-23"),
    )
    actions = parser.add_subparsers(dest="action", required=True)

    listing = actions.add_parser(
        "list", help="the letters queue, oldest first",
        **with_example("cautionflow letters list --config cautionflow.yaml --status queued"),
    )
    add_config_argument(listing)
    listing.add_argument("--status", choices=("queued", "approved", "dispatched", "held"), default=None)
    listing.set_defaults(handler=handle_list)

    approve = actions.add_parser(
        "approve", help="approve a batch (an as-of date) or one letter",
        **with_example("cautionflow letters approve --config cautionflow.yaml --batch 2026-11-23"),
    )
    add_config_argument(approve)
    which = approve.add_mutually_exclusive_group(required=True)
    which.add_argument("--batch", type=parse_date, help="approve every queued letter of this as-of date")
    which.add_argument("--id", type=int, help="approve one letter")
    add_as_of_argument(approve, "the date the approved letters bear, their appeal deadline counted from it")
    approve.set_defaults(handler=handle_approve)

    show = actions.add_parser(
        "show", help="print one letter as the resident will read it (its PDF's text), to check before approving",
        **with_example("cautionflow letters show --config cautionflow.yaml --id 42"),
    )
    add_config_argument(show)
    show.add_argument("--id", type=int, required=True, help="the letter (its id in `letters list`)")
    show.set_defaults(handler=handle_show)

    dispatch = actions.add_parser(
        "dispatch", help="print batch and email for the approved letters",
        **with_example("cautionflow letters dispatch --config cautionflow.yaml"),
    )
    add_config_argument(dispatch)
    add_as_of_argument(dispatch, "the day the letters leave: each is dated it (rendered again if it bears another)")
    dispatch.set_defaults(handler=handle_dispatch)

    export = actions.add_parser(
        "export", help="CSV of the dispatched letters for the housing system: alert, kind, reference, dates",
        **with_example("cautionflow letters export --config cautionflow.yaml --since 2026-11-01 --out sent.csv"),
    )
    add_config_argument(export)
    export.add_argument("--since", type=parse_date, required=True, metavar="DATE", help="letters dispatched on or after this date")
    export.add_argument("--out", type=Path, default=None, metavar="FILE", help="write the CSV to this file (default: stdout)")
    export.set_defaults(handler=handle_export)

    translated = actions.add_parser(
        "translated", help="attach the translated PDF of a letter held for translation; it is queued again",
        **with_example("cautionflow letters translated --config cautionflow.yaml --id 42 --file letter-42-cy.pdf"),
    )
    add_config_argument(translated)
    translated.add_argument("--id", type=int, required=True, help="the held letter")
    # A str, not a Path: Path would fold a URL's "//" (s3://bucket/x.pdf -> s3:/bucket/x.pdf).
    translated.add_argument("--file", required=True,
                            help="the translation, a PDF (never machine-made): a local file, or a URL in the "
                            "letters' store (s3://bucket/translations/letter-42-cy.pdf)")
    translated.set_defaults(handler=handle_translated)

    flags = actions.add_parser(
        "flags", help="the officers' list: alerts no letter can settle",
        **with_example("cautionflow letters flags --config cautionflow.yaml --all"),
    )
    add_config_argument(flags)
    flags.add_argument("--all", action="store_true", help="include flags already resolved")
    flags.set_defaults(handler=handle_flags)


def handle_list(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.letters import list_letters

    try:
        letters = list_letters(load_config(args.config), status=args.status)
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    print("id\tbatch\tstatus\tkind\talert\tname\tchannels\tlarge_print\thold_reason\ttranslation")
    for x in letters:
        print("\t".join(str(v) for v in (
            x.id, x.batch, x.status, x.kind, x.alert_id, x.person_name, "+".join(x.channels),
            "yes" if x.large_print else "no", x.hold_reason or "",
            f"{x.language}: {x.translation_file}" if x.translated else "",
        )))
    print(json.dumps({"letters": len(letters), "status": args.status}))
    return 0


def handle_approve(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.letters import approve_letters

    try:
        config = load_config(args.config)
        approved = approve_letters(config, batch=args.batch, letter_id=args.id, as_of=_as_of(args, config))
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    # What was approved, one line a letter (`letters show --id N` prints one whole), then the JSON.
    print("id\tbatch\tkind\talert\tname\tchannels\tdated_on\tappeal_by\thold_reason")
    for x in approved:
        print("\t".join(str(v) for v in (
            x.id, x.batch, x.kind, x.alert_id, x.person_name, "+".join(x.channels), x.dated_on, x.appeal_by or "",
            x.hold_reason or "",
        )))
    batch = args.batch.isoformat() if args.batch else None
    print(json.dumps({"approved": len(approved), "ids": [x.id for x in approved], "batch": batch, "id": args.id}))
    return 0


def handle_show(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.letters import LetterNotFound, show_letter

    try:
        letter, pages = show_letter(load_config(args.config), args.id)
    except (*step_errors(), LetterNotFound) as exc:
        raise CommandError(str(exc)) from None
    print(f"Letter {letter.id}: {letter.kind} for alert {letter.alert_id}, {letter.status}"
          f"{f' ({letter.hold_reason})' if letter.hold_reason else ''}; by {' and '.join(letter.channels)}"
          f"{'; large print' if letter.large_print else ''}; batch {letter.batch}")
    for number, page in enumerate(pages, start=1):
        print(f"--- page {number} of {len(pages)} ---")
        print(page.rstrip())
    return 0


def handle_dispatch(args: argparse.Namespace) -> int:
    import asyncio

    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.letters import dispatch_approved_letters

    try:
        config = load_config(args.config)
        summary = asyncio.run(dispatch_approved_letters(config, as_of=_as_of(args, config)))
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0 if summary["complete"] else 3


def handle_export(args: argparse.Namespace) -> int:
    import sys

    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.letters import export_dispatched

    try:
        rows, text = export_dispatched(load_config(args.config), since=args.since, out=args.out)
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    if text is not None:  # stdout is the CSV itself: nothing else is printed there
        sys.stdout.write(text)
        return 0
    print(json.dumps({"rows": rows, "since": args.since.isoformat(), "out": str(args.out)}))
    return 0


def add_as_of_argument(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--as-of", type=parse_date, default=None, metavar="DATE",
                        help=f"{what} (default: today in the config's timezone)")


def _as_of(args: argparse.Namespace, config: Any) -> dt.date:
    """--as-of, or today in the deployment's timezone: a person approving or dispatching by hand means today."""
    return args.as_of if args.as_of is not None else today_in(config.timezone)


def handle_translated(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.letters import attach_translated_letter, translation_errors

    try:
        letter = attach_translated_letter(load_config(args.config), letter_id=args.id, file=args.file)
    except (*step_errors(), *translation_errors()) as exc:
        raise CommandError(str(exc)) from None
    print(json.dumps({"id": letter.id, "status": letter.status, "language": letter.language,
                      "translation_file": letter.translation_file, "pdf_path": letter.pdf_path}))
    return 0


def handle_flags(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.letters import officer_flags

    try:
        flags = officer_flags(load_config(args.config), include_resolved=args.all)
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    print("alert\tname\tcode\tflag\treason\tsince\tlast_seen\tresolved_on")
    for f in flags:
        print("\t".join(str(v) for v in (
            f.alert_id, f.person_name, f.alert_code, f.flag, f.reason, f.first_flagged_on, f.last_flagged_on,
            f.resolved_on or "",
        )))
    print(json.dumps({"open": sum(1 for f in flags if f.resolved_on is None),
                      "resolved": sum(1 for f in flags if f.resolved_on is not None)}))
    return 0
