"""Look-ups at the moment of a visit (issue 16): the step functions the register page's search, the
alert page, the JSON API (`web/`) and `cautionflow tokens` (`commands/tokens.py`) call.

Who may ask what, and what each reader is shown, is `cautionflow.domain.lookup`; the searches and
the log of every read are `cautionflow.services.lookup`. Time is an input (`now`, aware): the day a
token's expiry and a contractor's "under review" are judged by is `now`'s date in `config.timezone`.

The look-ups never migrate or create the register: the api-server serves them, and the web must not
change the production register's schema (only the pipeline migrates: the sync creates and migrates,
the other steps migrate an existing register). Once per process and register, before the first
read, the register's schema revision is checked; a register not at the newest migration is refused
with `RegisterOutdatedError` (`NEEDS_MIGRATIONS`: a 503 on the web), one that does not exist with
RegisterNotFoundError. `cautionflow tokens` (the command line) migrates, as every command does.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.database import POOL_SIZE
from cautionflow.adapters.register import Register, RegisterOutdatedError
from cautionflow.domain.lookup import QueryRefused, Reader, TokenView
from cautionflow.services.lookup import TokenCache, TokenError
from cautionflow.steps.wiring import open_register

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig

__all__ = [
    "CONCURRENT_READS", "NEEDS_MIGRATIONS", "QueryRefused", "Reader", "RegisterOutdatedError", "TokenError", "alert_record",
    "authenticate_token", "authenticate_token_cached", "create_token", "get_alert", "list_tokens", "reads_by_recipient_day", "revoke_token",
    "search_alerts", "staff_reader",
]

NEEDS_MIGRATIONS = "the register needs its migrations: run `cautionflow run sync` or the sync DAG once"

# Unlike every other step, which opens the register, runs once and disposes of it (`open_register`),
# the look-ups keep ONE Register per process and register URL, never disposed: the api-server serves
# many short reads a second, and opening PostgreSQL connections (and a new engine, which asks the
# server its version and settings) cost more than a look-up's queries. Its engine is pooled
# (`Register(pooled=True)`). The Register still lives only below this layer: the web gets answers.
# Keyed by the process id too: an api-server worker forked after a look-up must not use its parent's
# pooled connections (two processes on one socket). The parent's entry stays in a child's copy of
# this dict, unused: dropping it could close the parent's connections from the child.
# With each Register, a gate: at most POOL_SIZE look-ups of a process use the database at once; the
# others wait here for a pooled connection rather than open overflow connections, which the pool
# closes again on return (the benchmark at 10 look-ups at once a worker: ~780 new PostgreSQL
# connections in 20 s and a third more PostgreSQL CPU a look-up). The threads share one GIL, so more
# at once would not be faster.
CONCURRENT_READS = POOL_SIZE  # look-ups of a process that use the database at once (the web queues the rest)
_registers: dict[tuple[int, str], tuple[Register, threading.BoundedSemaphore]] = {}
_registers_lock = threading.Lock()
# With each, by the same key, the tokens' rows (services.lookup.TokenCache): a token is read from
# the register at most once in TOKEN_CACHE_SECONDS, a revocation in this process forgets it at once.
_token_caches: dict[tuple[int, str], TokenCache] = {}


def _token_cache(config: CautionflowConfig) -> TokenCache:
    return _token_caches.setdefault((os.getpid(), config.register_url), TokenCache())


def _reset_lock_after_fork() -> None:
    global _registers_lock
    _registers_lock = threading.Lock()  # a lock held by another thread at the fork is never released in the child


os.register_at_fork(after_in_child=_reset_lock_after_fork)


@contextmanager
def _reading(config: CautionflowConfig) -> Iterator[Register]:
    """This process's Register for the configured URL, through its gate; its schema checked once
    (RegisterOutdatedError or RegisterNotFoundError until the pipeline has migrated or created it;
    not kept until it passes)."""
    key = (os.getpid(), config.register_url)
    found = _registers.get(key)
    if found is None:
        with _registers_lock:
            found = _registers.get(key)
            if found is None:
                register = Register(config.register_url, pooled=True)
                try:
                    register.require_current(remedy=NEEDS_MIGRATIONS)
                except BaseException:
                    register.dispose()
                    raise
                found = _registers[key] = (register, threading.BoundedSemaphore(CONCURRENT_READS))
    register, gate = found
    with gate:
        yield register


def _today(config: CautionflowConfig, now: dt.datetime) -> dt.date:
    from zoneinfo import ZoneInfo

    if now.tzinfo is None:
        raise ValueError("now must be an aware datetime")
    return now.astimezone(ZoneInfo(config.timezone)).date()


def _view(config: CautionflowConfig) -> TokenView:
    """What a token's answer shows beyond its role's columns, as its recipient's digest does."""
    from cautionflow.domain.digests import duty_contact_text

    return TokenView(
        contractors_see_instructions=config.digests.contractors_see_instructions,
        fallback_instruction=duty_contact_text(config.digests.duty_contact),
    )


def _recipients(config: CautionflowConfig) -> dict[str, Any]:
    return {r.name: r for r in config.recipients}


def staff_reader(username: str) -> Reader:
    """An Airflow user allowed the register page, reading as staff."""
    return Reader(kind="user", name=username, role="staff")


def authenticate_token(config: CautionflowConfig, token: str, *, now: dt.datetime) -> Reader | None:
    """The reader a token acts as, or None (unknown, revoked, expired, or its recipient gone). Its
    row is this process's for TOKEN_CACHE_SECONDS (see `services.lookup`): a revocation by another
    process counts within that, one by `revoke_token` here at once; expiry and the config at once."""
    from cautionflow.services.lookup import authenticate

    with _reading(config) as register:
        return authenticate(register, token, recipients=_recipients(config), now=now, today=_today(config, now),
                            cache=_token_cache(config))


def authenticate_token_cached(config: CautionflowConfig, token: str, *, now: dt.datetime) -> tuple[bool, Reader | None]:
    """`authenticate_token` from this process's cache alone, never blocking on the database: (True,
    the reader or None) when that decides; (False, None) when `authenticate_token` must run."""
    from cautionflow.services.lookup import authenticate_cached

    return authenticate_cached(_token_cache(config), token, recipients=_recipients(config), now=now,
                               today=_today(config, now))


def search_alerts(
    config: CautionflowConfig, reader: Reader, *, q: str | None = None, postcode: str | None = None,
    asset_ref: str | None = None, page: int = 1, page_size: int = 20, now: dt.datetime,
) -> dict[str, Any]:
    """{"items": [{column key: value, ..., "alert_id"}], "columns": [{"key", "label"}], "page",
    "page_size", "total"}, the read logged; QueryRefused (one line, also logged) for a query this
    reader may not ask."""
    from cautionflow.domain.digests import ALERT_FIELDS
    from cautionflow.services.lookup import search

    with _reading(config) as register:
        return search(
            register, reader, q=q, postcode=postcode, asset_ref=asset_ref, page=page, page_size=page_size, now=now,
            as_of=_today(config, now), view=_view(config), digest_fields=ALERT_FIELDS,
        )


def get_alert(config: CautionflowConfig, reader: Reader, alert_id: str, *, now: dt.datetime) -> dict[str, Any] | None:
    """One alert as this reader is shown it (a search item: {column key: value, ..., "alert_id"}), or
    None for both "no such alert" and "not yours"; logged either way."""
    from cautionflow.domain.digests import ALERT_FIELDS
    from cautionflow.services.lookup import get_alert

    with _reading(config) as register:
        return get_alert(register, reader, alert_id, now=now, as_of=_today(config, now), view=_view(config),
                         digest_fields=ALERT_FIELDS)


def columns(config: CautionflowConfig, reader: Reader) -> list[dict[str, str]]:
    """The columns this reader is shown ([{"key", "label"}]), as `search_alerts` gives them."""
    from cautionflow.domain.lookup import column_list

    return column_list(reader, _view(config))


def alert_record(config: CautionflowConfig, alert_id: str, *, reader: Reader, now: dt.datetime) -> dict[str, Any] | None:
    """Staff only (QueryRefused otherwise): {"alert" (no note), "deadlines", "history", "letters",
    "disclosures", "reads"} for the alert page, or None; the read itself is logged."""
    from cautionflow.services.lookup import alert_record

    with _reading(config) as register:
        return alert_record(register, reader, alert_id, now=now)


def reads_by_recipient_day(config: CautionflowConfig, *, since: dt.date) -> list[dict[str, Any]]:
    """[{"day", "reader_kind", "reader", "lookups", "alerts_returned"}] from `since` on (days in
    `config.timezone`), newest first, for the register page."""
    from cautionflow.services.lookup import reads_by_recipient_day

    with _reading(config) as register:
        return reads_by_recipient_day(register, since=since, timezone=config.timezone)


def create_token(
    config: CautionflowConfig, recipient: str, *, expires: dt.date | None, now: dt.datetime,
) -> tuple[str, dict[str, Any]]:
    """A new token for the configured recipient called `recipient`: (the token, shown once; its
    summary). TokenError for a recipient not in the config, of another role, or a past expiry."""
    from cautionflow.services.lookup import create_token

    found = _recipients(config).get(recipient.strip())
    if found is None:
        known = ", ".join(r.name for r in config.recipients if r.role in ("contractor", "out_of_hours")) or "none"
        raise TokenError(f"no recipient called {recipient!r} in the config (contractors and call handlers: {known})")
    with open_register(config) as register:
        return create_token(register, found, expires=expires, now=now, today=_today(config, now))


def list_tokens(config: CautionflowConfig) -> list[dict[str, Any]]:
    """Every token (never the token itself): id, prefix, recipient, role, created, expires, revoked,
    last used, and `bound` (its recipient is still in the config with that role)."""
    from cautionflow.services.lookup import list_tokens

    with open_register(config) as register:
        return list_tokens(register, _recipients(config))


def revoke_token(config: CautionflowConfig, prefix_or_id: str, *, now: dt.datetime) -> dict[str, Any]:
    """Revoke the token with this prefix or id; TokenError when none or several match."""
    from cautionflow.services.lookup import revoke_token

    with open_register(config) as register:
        revoked = revoke_token(register, prefix_or_id, now=now)
    cache = _token_caches.get((os.getpid(), config.register_url))
    if cache is not None:
        cache.forget(revoked["id"])
    return revoked
