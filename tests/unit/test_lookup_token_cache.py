"""The api-server's cache of token rows (services.lookup.TokenCache, authenticate_cached), pure: what
it keeps, for how long by the given clock, and that what a row says is judged on every request.
The register's side (a revocation elsewhere, in this process, the last use) is in
tests/integration/test_lookup.py. Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from cautionflow.services import lookup as s

NOW = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
TODAY = NOW.date()
TOKEN = "cf_" + "x" * 43


@dataclass(frozen=True)
class Recipient:
    name: str
    email: str
    role: str
    areas: tuple[str, ...] = ()


ACME = Recipient("Acme Repairs", "jobs@acme.example", "contractor", ("NORTH",))
RECIPIENTS = {ACME.name: ACME}


def row(**changes) -> dict:
    stored = {"id": 7, "token_hash": s.hash_token(TOKEN), "prefix": TOKEN[:8], "recipient_name": ACME.name,
              "recipient_email": ACME.email, "recipient_role": "contractor", "created_at": NOW,
              "expires_on": None, "revoked_at": None, "last_used_at": NOW}
    return {**stored, **changes}


def cached(stored: dict, at: dt.datetime = NOW) -> s.TokenCache:
    cache = s.TokenCache()
    cache.put(s.hash_token(TOKEN), stored, at)
    return cache


def test_a_cached_token_reads_as_its_recipient_without_the_register():
    decided, reader = s.authenticate_cached(cached(row()), TOKEN, recipients=RECIPIENTS,
                                            now=NOW + dt.timedelta(seconds=1), today=TODAY)
    assert decided and reader is not None
    assert (reader.kind, reader.name, reader.role, reader.areas, reader.token_id) == (
        "token", "Acme Repairs", "contractor", ("NORTH",), 7)


def test_a_row_is_kept_token_cache_seconds_by_the_given_clock_and_not_across_a_clock_gone_back():
    cache = cached(row())
    digest = s.hash_token(TOKEN)
    assert cache.get(digest, NOW + dt.timedelta(seconds=s.TOKEN_CACHE_SECONDS - 0.001)) is not None
    assert cache.get(digest, NOW + dt.timedelta(seconds=s.TOKEN_CACHE_SECONDS)) is None
    assert cache.get(digest, NOW - dt.timedelta(seconds=1)) is None
    assert s.authenticate_cached(cache, TOKEN, recipients=RECIPIENTS, now=NOW + dt.timedelta(minutes=1),
                                 today=TODAY) == (False, None)  # stale: the register decides


def test_what_a_cached_row_says_is_judged_on_every_request():
    # Expired by today's date, revoked, its recipient gone from the config or of another role, a
    # stored hash that is not this token's: each is decided, as nobody, from the cache alone.
    for stored, recipients, today in (
        (row(expires_on=TODAY), RECIPIENTS, TODAY + dt.timedelta(days=1)),
        (row(revoked_at=NOW), RECIPIENTS, TODAY),
        (row(), {}, TODAY),
        (row(), {ACME.name: Recipient(ACME.name, ACME.email, "out_of_hours")}, TODAY),
        (row(token_hash=s.hash_token(TOKEN + "y")), RECIPIENTS, TODAY),
    ):
        assert s.authenticate_cached(cached(stored), TOKEN, recipients=recipients, now=NOW,
                                     today=today) == (True, None)
    assert s.authenticate_cached(cached(row(expires_on=TODAY)), TOKEN, recipients=RECIPIENTS, now=NOW,
                                 today=TODAY)[1] is not None  # its last day


def test_a_malformed_token_is_nobody_and_an_unknown_one_goes_to_the_register():
    cache = cached(row())
    for token in ("", "garbage", "cf_" + "x" * 200, None):
        assert s.authenticate_cached(cache, token, recipients=RECIPIENTS, now=NOW, today=TODAY) == (True, None)
    assert s.authenticate_cached(cache, "cf_" + "z" * 43, recipients=RECIPIENTS, now=NOW,
                                 today=TODAY) == (False, None)


def test_the_once_a_minute_record_of_last_use_is_left_to_the_register():
    stale_use = row(last_used_at=NOW - s.TOUCH_EVERY)
    assert s.authenticate_cached(cached(stale_use), TOKEN, recipients=RECIPIENTS, now=NOW,
                                 today=TODAY) == (False, None)
    cache = cached(stale_use)
    cache.touched(s.hash_token(TOKEN), NOW)
    assert s.authenticate_cached(cache, TOKEN, recipients=RECIPIENTS, now=NOW, today=TODAY)[0] is True


def test_forget_drops_a_token_and_a_full_cache_starts_again():
    cache = cached(row())
    cache.forget(7)
    assert cache.get(s.hash_token(TOKEN), NOW) is None
    small = s.TokenCache(size=2)
    for n in range(3):
        small.put(f"digest{n}", row(id=n), NOW)
    assert small.get("digest2", NOW) is not None
    assert small.get("digest0", NOW) is None and small.get("digest1", NOW) is None
