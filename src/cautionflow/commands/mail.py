"""`cautionflow mail resend-failed --config FILE [--kind K ...] [--since DATE] [--dry-run]
[--include-uncertain]`: operations' side of the outbox, for every kind of outgoing mail.

A message the mail server refused for good (a 5xx reply, e.g. `550 Mailbox unavailable`) is marked
`failed` and never retried by a run: a digest, a review reminder, an appeals list, an operations
notice (the daily run summary, a failure notice) or a resident's letter by email. Once the cause is
fixed (the mailbox exists again, the server accepts the address), this command queues it again and
sends it, with its original Message-ID, exactly once. Without `--kind`, every kind the outbox holds.

Not every failed message goes again. A digest, reminder or appeals list that a later one to the same
recipient replaces is marked `superseded`, as is a message whose name, address and role are no
longer a recipient in the config (the next message goes to the address there). A letter by email is
owed on its own: it is always resent, to the resident's address it was written for. Prints a JSON
summary last (`unknown_kinds`: kinds asked for that the outbox never held); exit code 3 when
something failed again or is still pending.

A message whose delivery is `uncertain` (the server received all of it and never confirmed it) may
already be in the recipient's mailbox, so it is never resent by itself: it is listed under
`uncertain_messages`. Ask the recipient; if it did not arrive, add `--include-uncertain` to resend
it as a refused one (the recipient may get it twice). `cautionflow digests resend-failed` is the
older name for `--kind digest`.
"""

from __future__ import annotations

import argparse
import json
import sys

from cautionflow.commands.common import CommandError, add_config_argument, parse_date, with_example


def register(subparsers: argparse._SubParsersAction) -> None:
    example = "cautionflow mail resend-failed --config cautionflow.yaml --kind reminder --since 2026-11-01 --dry-run"
    parser = subparsers.add_parser(
        "mail", help="operations on the outbox: every kind of outgoing mail", description=__doc__,
        **with_example(example),
    )
    actions = parser.add_subparsers(dest="action", required=True)

    resend = actions.add_parser(
        "resend-failed", help="queue again and send any mail the server refused, once the cause is fixed",
        description=__doc__, **with_example(example),
    )
    add_config_argument(resend)
    resend.add_argument(
        "--kind", action="append", default=None, metavar="KIND",
        help="only this kind of mail, as the outbox names it (digest, reminder, appeals, operations, letter, urgent, ...); "
             "repeat for several (default: every kind)",
    )
    add_resend_arguments(resend, "mail")
    resend.set_defaults(handler=handle_resend_failed)


def add_resend_arguments(parser: argparse.ArgumentParser, what: str) -> None:
    """--since, --dry-run and --include-uncertain, for `mail resend-failed` and `digests resend-failed`."""
    parser.add_argument("--since", type=parse_date, default=None,
                        help=f"only {what} as of this date (YYYY-MM-DD) or later (default: all)")
    parser.add_argument("--dry-run", action="store_true", help="say what would be resent or retired; change nothing")
    parser.add_argument(
        "--include-uncertain", action="store_true",
        help=f"also resend {what} whose delivery is uncertain (the server took the whole message and never "
             "confirmed it): the recipient may get it twice, so check with them first",
    )


def resent(summary: dict, args: argparse.Namespace) -> int:
    """Print the resend's JSON summary; exit 3 when something failed again or is still pending."""
    print(json.dumps(summary, sort_keys=True, default=str))
    return 0 if summary["complete"] or args.dry_run else 3


def handle_resend_failed(args: argparse.Namespace) -> int:
    import asyncio

    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.mail import resend_failed_mail

    kinds = [k.strip() for k in args.kind or () if k.strip()] or None
    try:
        summary = asyncio.run(resend_failed_mail(
            load_config(args.config), kinds=kinds, since=args.since, dry_run=args.dry_run,
            include_uncertain=args.include_uncertain,
        ))
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    if summary["unknown_kinds"]:
        # Not an error (a kind nothing has failed in yet is normal), but a mistyped one should show.
        print(f"cautionflow: warning: the outbox has never held mail of kind {', '.join(summary['unknown_kinds'])}: "
              "nothing of it to resend (see --help for the kinds)", file=sys.stderr)
    return resent(summary, args)
