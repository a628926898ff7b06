"""`cautionflow letters list|approve|dispatch|translated|flags --config FILE`: the officers' side of
the letters queue.

Letters are queued by the `letters` step (`cautionflow run letters`, the `cautionflow_letters` DAG);
an officer reads them, approves a batch (or one letter), then dispatches the approved ones: one
print batch for the post room and email through the outbox. A letter held for translation leaves
the hold when the officer attaches the translated PDF (`translated`); `flags` lists what no letter
can settle (untold old alerts, decisions not to tell without a recorded reason).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from cautionflow.commands.common import CommandError, add_config_argument, parse_date, with_example


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
    approve.set_defaults(handler=handle_approve)

    dispatch = actions.add_parser(
        "dispatch", help="print batch and email for the approved letters",
        **with_example("cautionflow letters dispatch --config cautionflow.yaml"),
    )
    add_config_argument(dispatch)
    dispatch.set_defaults(handler=handle_dispatch)

    translated = actions.add_parser(
        "translated", help="attach the translated PDF of a letter held for translation; it is queued again",
        **with_example("cautionflow letters translated --config cautionflow.yaml --id 42 --file letter-42-cy.pdf"),
    )
    add_config_argument(translated)
    translated.add_argument("--id", type=int, required=True, help="the held letter")
    translated.add_argument("--file", type=Path, required=True, help="the translation, a PDF (never machine-made)")
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
        approved = approve_letters(load_config(args.config), batch=args.batch, letter_id=args.id)
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    batch = args.batch.isoformat() if args.batch else None
    print(json.dumps({"approved": approved, "batch": batch, "id": args.id}))
    return 0


def handle_dispatch(args: argparse.Namespace) -> int:
    import asyncio

    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.letters import dispatch_approved_letters

    try:
        summary = asyncio.run(dispatch_approved_letters(load_config(args.config)))
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0 if summary["complete"] else 3


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
