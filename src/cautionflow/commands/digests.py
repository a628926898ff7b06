"""`cautionflow digests resend-failed --config FILE [--since DATE] [--dry-run]`: operations' side of
the digests' outbox.

A digest the mail server refused for good (a 5xx reply, e.g. `550 Mailbox unavailable`) is marked
`failed` and never retried by the daily run. Once the cause is fixed (the contractor's mailbox
exists again, the server accepts the address), this command queues each such recipient's latest
failed digest again and sends it, with its original Message-ID. A failed digest that a later one
replaces, or whose name and address are no longer a digest recipient in the config (the address
was corrected there: the next `run digests` composes for the new address), is marked
`superseded` instead. Prints a JSON summary last; exit code 3 when something failed again or is
still pending, as `run digests`.

A digest whose delivery is `uncertain` (the server received all of it and never confirmed it, even
after RFC 5321's 10 minutes) may already be in the recipient's mailbox, so it is never resent by
itself: it is listed under `uncertain_messages`. Ask the recipient; if it did not arrive, add
`--include-uncertain` to resend it as a refused one (the recipient may get it twice).
"""

from __future__ import annotations

import argparse

from cautionflow.commands.common import CommandError, add_config_argument, with_example
from cautionflow.commands.mail import add_resend_arguments, resent


def register(subparsers: argparse._SubParsersAction) -> None:
    example = "cautionflow digests resend-failed --config cautionflow.yaml --since 2026-11-01 --dry-run"
    parser = subparsers.add_parser(
        "digests", help="operations on the digests' outbox", description=__doc__, **with_example(example)
    )
    actions = parser.add_subparsers(dest="action", required=True)

    resend = actions.add_parser(
        "resend-failed", help="queue again and send the digests the mail server refused, once the cause is fixed",
        description=__doc__, **with_example(example),
    )
    add_config_argument(resend)
    add_resend_arguments(resend, "digests")
    resend.set_defaults(handler=handle_resend_failed)


def handle_resend_failed(args: argparse.Namespace) -> int:
    import asyncio

    from cautionflow.config import load_config
    from cautionflow.steps import step_errors
    from cautionflow.steps.digests import resend_failed_digests

    try:
        summary = asyncio.run(resend_failed_digests(
            load_config(args.config), since=args.since, dry_run=args.dry_run, include_uncertain=args.include_uncertain,
        ))
    except step_errors() as exc:
        raise CommandError(str(exc)) from None
    return resent(summary, args)
