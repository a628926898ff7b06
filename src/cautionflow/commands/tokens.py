"""`cautionflow tokens create|list|revoke`: API tokens for contractors' and call handlers' systems.

A token acts as a configured contractor or out-of-hours recipient and sees what its digest shows
(README, "Look-ups"). It is printed once, by `create`; only its hash is stored. JSON last.
"""

from __future__ import annotations

import argparse
import json

from cautionflow.commands.common import CommandError, add_config_argument, parse_date, with_example


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "tokens", help="create, list or revoke the look-up API's tokens (JSON last)", description=__doc__,
        **with_example("cautionflow tokens create --config cautionflow.yaml --recipient 'Acme Repairs'"),
    )
    actions = parser.add_subparsers(dest="tokens_action", required=True)

    create = actions.add_parser(
        "create", help="a new token for one contractor or out-of-hours recipient, printed once",
        **with_example("cautionflow tokens create --config cautionflow.yaml --recipient 'Acme Repairs' --expires 2027-03-31"),
    )
    add_config_argument(create)
    create.add_argument("--recipient", required=True, metavar="NAME", help="the recipient's name as in the config")
    create.add_argument("--expires", type=parse_date, default=None, metavar="YYYY-MM-DD",
                        help="the last day it works (default: until revoked)")
    create.set_defaults(handler=handle_create)

    listing = actions.add_parser("list", help="every token: prefix, recipient, role, dates; never the token",
                                 **with_example("cautionflow tokens list --config cautionflow.yaml"))
    add_config_argument(listing)
    listing.set_defaults(handler=handle_list)

    revoke = actions.add_parser("revoke", help="revoke a token by its prefix (or id): it stops working at once",
                                **with_example("cautionflow tokens revoke --config cautionflow.yaml cf_Ab3dE"))
    add_config_argument(revoke)
    revoke.add_argument("prefix", metavar="PREFIX", help="the prefix `tokens list` shows, or the token's id")
    revoke.set_defaults(handler=handle_revoke)


def _errors() -> tuple[type[BaseException], ...]:
    from cautionflow.steps import step_errors
    from cautionflow.steps.lookup import TokenError

    return (*step_errors(), TokenError)


def handle_create(args: argparse.Namespace) -> int:
    from cautionflow.clock import system_clock
    from cautionflow.config import load_config
    from cautionflow.steps.lookup import create_token

    try:
        config = load_config(args.config)
        token, summary = create_token(config, args.recipient, expires=args.expires, now=system_clock())
    except _errors() as exc:
        raise CommandError(str(exc)) from None
    print(token)
    print(f"This is the token for {summary['recipient']} ({summary['role']}), prefix {summary['prefix']}. It is shown "
          "once and cannot be shown again: only its hash is stored. Give it to the recipient's system now.")
    print(json.dumps(summary, sort_keys=True))
    return 0


def handle_list(args: argparse.Namespace) -> int:
    from cautionflow.config import load_config
    from cautionflow.steps.lookup import list_tokens

    try:
        tokens = list_tokens(load_config(args.config))
    except _errors() as exc:
        raise CommandError(str(exc)) from None
    for t in tokens:
        state = "revoked " + t["revoked_at"] if t["revoked_at"] else ("" if t["bound"] else "recipient not in the config")
        print(f"{t['prefix']}  id {t['id']}  {t['recipient']} ({t['role']})  created {t['created_at']}  "
              f"expires {t['expires_on'] or 'never'}  last used {t['last_used_at'] or 'never'}"
              + (f"  {state}" if state else ""))
    if not tokens:
        print("No tokens.")
    print(json.dumps({"tokens": tokens}, sort_keys=True))
    return 0


def handle_revoke(args: argparse.Namespace) -> int:
    from cautionflow.clock import system_clock
    from cautionflow.config import load_config
    from cautionflow.steps.lookup import revoke_token

    try:
        summary = revoke_token(load_config(args.config), args.prefix, now=system_clock())
    except _errors() as exc:
        raise CommandError(str(exc)) from None
    if summary["already_revoked"]:
        print(f"Token {summary['prefix']} (id {summary['id']}, {summary['recipient']}) was already revoked "
              f"at {summary['revoked_at']}.")
    else:
        print(f"Revoked token {summary['prefix']} (id {summary['id']}, {summary['recipient']}): it no longer works.")
    print(json.dumps(summary, sort_keys=True))
    return 0
