"""Look-ups: search the register, read one alert or an alert page, and record every read; API tokens.

Every read is accounted for (UK GDPR accountability; Karbon 7, Dover 6.31: who was shown which
alert). A search and its log row are one transaction (`LookupStore.reading`): the answer is built
inside it and returned only once the log is committed, so a read that could not be logged is not
served (the caller gets the RegisterError instead). Refused queries and reads of nothing are logged
too, with no alerts.

`get_alert` answers None for both "no such alert" and "not yours" (an alert outside a contractor's
areas, or an ended one for a token), logging `not_found` either way: the answer never tells a
token that an alert it may not see exists.

Tokens: `cf_` and 32 random bytes (`secrets.token_urlsafe`), shown once; only the sha256 is stored.
A token is found by its hash (a unique index) and the stored hash compared again in constant time.
It reads as the configured recipient of the name it was issued for, while that recipient is in the
config with the role the token was issued for (contractor or out_of_hours: a recipient whose role
changed needs a new token); unknown, revoked or expired (`expires_on` before today in the
landlord's time zone) tokens authenticate to nothing. Its last use is recorded at most once a
minute, so reads stay cheap.

A long-lived process (the api-server) passes a `TokenCache`: a token's row, found by its hash, is
kept for TOKEN_CACHE_SECONDS by the given clock, so a look-up costs no token query of its own (it
was a third of a look-up's database round trips). What the row says is judged on every request:
expiry against today, the recipient against the config, the hash compared again. A revocation made
through the same cache (the same process) counts at once; one made elsewhere (the command line, a
worker) within TOKEN_CACHE_SECONDS.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import json
import secrets
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.database import stored_date
from cautionflow.domain import lookup as d

if TYPE_CHECKING:
    from cautionflow.adapters.lookup_store import LookupStore

TOKEN_PREFIX = "cf_"
TOKEN_MAX_LENGTH = 100  # a real token is 46 characters; anything far longer is not worth hashing
PREFIX_LENGTH = 8
TOUCH_EVERY = dt.timedelta(minutes=1)
TOKEN_CACHE_SECONDS = 5.0  # the longest a revocation elsewhere goes unseen by a cached token
TOKEN_CACHE_SIZE = 1024  # tokens a process keeps; only real ones are kept, so a landlord's few fit
NOTE_HIDDEN = "(not shown)"


class TokenError(ValueError):
    """A token that cannot be created or revoked as asked; one line."""


class LookupRegister(Protocol):
    lookups: LookupStore

    def migrate(self) -> None: ...


class TokenRecipient(Protocol):
    """What a token reads of a configured recipient (`cautionflow.config.Recipient`)."""

    @property
    def name(self) -> str: ...

    @property
    def email(self) -> str: ...

    @property
    def role(self) -> str: ...

    @property
    def areas(self) -> Sequence[str]: ...


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _plain(value: Any) -> Any:
    """A value as JSON holds it: dates and moments ISO 8601."""
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return moment.astimezone(dt.UTC).isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def _token_summary(row: Mapping[str, Any]) -> dict[str, Any]:
    """A token as lists show it: never the token or its hash."""
    return {
        "id": row["id"], "prefix": row["prefix"], "recipient": row["recipient_name"],
        "recipient_email": row["recipient_email"], "role": row["recipient_role"],
        "created_at": _plain(row["created_at"]), "expires_on": _plain(stored_date(row["expires_on"])),
        "revoked_at": _plain(row["revoked_at"]), "last_used_at": _plain(row["last_used_at"]),
    }


# --- tokens ----------------------------------------------------------------------------------------


def create_token(
    register: LookupRegister, recipient: TokenRecipient, *, expires: dt.date | None, now: dt.datetime, today: dt.date,
) -> tuple[str, dict[str, Any]]:
    """A new token acting as `recipient`: (the token, shown once; its summary, as `list_tokens`)."""
    if recipient.role not in d.TOKEN_ROLES:
        raise TokenError(f"recipient {recipient.name!r} is a {recipient.role} recipient: tokens are for "
                         "contractor and out_of_hours recipients, who are sent alerts")
    if expires is not None and expires < today:
        raise TokenError(f"--expires {expires.isoformat()} is before today ({today.isoformat()})")
    register.migrate()
    token = TOKEN_PREFIX + secrets.token_urlsafe(32)
    row = register.lookups.add_token(
        token_hash=hash_token(token), prefix=token[:PREFIX_LENGTH], recipient_name=recipient.name,
        recipient_email=recipient.email, recipient_role=recipient.role, created_at=now, expires_on=expires,
    )
    return token, _token_summary(row)


def list_tokens(register: LookupRegister, recipients: Mapping[str, TokenRecipient]) -> list[dict[str, Any]]:
    """Every token, oldest first; `bound`: its recipient is still in the config with its role."""
    register.migrate()
    return [
        {**_token_summary(row), "bound": _bound(row, recipients) is not None} for row in register.lookups.tokens()
    ]


def revoke_token(register: LookupRegister, prefix_or_id: str, *, now: dt.datetime) -> dict[str, Any]:
    """Revoke the one token whose id or prefix this is; TokenError when none or several match."""
    register.migrate()
    text = prefix_or_id.strip()
    if not text:
        raise TokenError("give the token's prefix (tokens list shows it) or its id")
    found = register.lookups.find_tokens(text)
    exact = [row for row in found if str(row["id"]) == text or row["prefix"] == text]
    matches = exact if len(exact) == 1 else found
    if not matches:
        raise TokenError(f"no token has the prefix or id {text!r} (see tokens list)")
    if len(matches) > 1:
        ids = ", ".join(str(row["id"]) for row in matches)
        raise TokenError(f"{text!r} matches several tokens (ids {ids}); give more of the prefix, or the id")
    already = matches[0]["revoked_at"] is not None
    row = register.lookups.revoke_token(matches[0]["id"], now)
    return {**_token_summary(row), "already_revoked": already}


def _bound(row: Mapping[str, Any], recipients: Mapping[str, TokenRecipient]) -> TokenRecipient | None:
    recipient = recipients.get(row["recipient_name"])
    if recipient is None or recipient.role not in d.TOKEN_ROLES or recipient.role != row["recipient_role"]:
        return None
    return recipient


class TokenCache:
    """Token rows by hash, each kept TOKEN_CACHE_SECONDS by the clock the requests are dated by (a
    clock that went back reads the row again). Unknown tokens are never kept: a guessed token can
    neither fill the cache nor outlive its creation. Thread-safe enough for the api-server's
    threads: a dict's get and set are atomic, and a lost race only reads a row twice."""

    def __init__(self, seconds: float = TOKEN_CACHE_SECONDS, size: int = TOKEN_CACHE_SIZE) -> None:
        self.seconds, self.size = seconds, size
        self._rows: dict[str, tuple[dt.datetime, dict[str, Any]]] = {}

    def get(self, digest: str, now: dt.datetime) -> dict[str, Any] | None:
        found = self._rows.get(digest)
        if found is None:
            return None
        read_at, row = found
        if not dt.timedelta(0) <= now - read_at < dt.timedelta(seconds=self.seconds):
            return None
        return row

    def put(self, digest: str, row: dict[str, Any], now: dt.datetime) -> None:
        if len(self._rows) >= self.size and digest not in self._rows:
            self._rows.clear()  # only a landlord with more live tokens than `size` ever gets here
        self._rows[digest] = (now, row)

    def touched(self, digest: str, at: dt.datetime) -> None:
        """Its last use was recorded `at`: the next minute's requests need not record it again."""
        found = self._rows.get(digest)
        if found is not None:
            self._rows[digest] = (found[0], {**found[1], "last_used_at": at})

    def forget(self, token_id: Any) -> None:
        """Drop a token's row (its revocation in this process counts at once)."""
        for digest, (_, row) in list(self._rows.items()):
            if row["id"] == token_id:
                self._rows.pop(digest, None)


def _judge(row: Mapping[str, Any], digest: str, recipients: Mapping[str, TokenRecipient],
           today: dt.date) -> TokenRecipient | None:
    """The recipient a token's stored row acts as today, or None (forged, revoked, expired, orphaned)."""
    if not hmac.compare_digest(str(row["token_hash"]), digest) or row["revoked_at"] is not None:
        return None
    expires = stored_date(row["expires_on"])
    if expires is not None and expires < today:
        return None
    return _bound(row, recipients)


def _reader(row: Mapping[str, Any], recipient: TokenRecipient) -> d.Reader:
    return d.Reader(kind="token", name=recipient.name, role=recipient.role, areas=tuple(recipient.areas),
                    token_id=int(row["id"]))


def _well_formed(token: Any) -> bool:
    return isinstance(token, str) and token.startswith(TOKEN_PREFIX) and len(token) <= TOKEN_MAX_LENGTH


def _needs_touch(row: Mapping[str, Any], now: dt.datetime) -> bool:
    last = row["last_used_at"]
    return last is None or now - last >= TOUCH_EVERY


def authenticate_cached(
    cache: TokenCache, token: str, *, recipients: Mapping[str, TokenRecipient], now: dt.datetime, today: dt.date,
) -> tuple[bool, d.Reader | None]:
    """(True, the reader or None) when the cache alone decides, with no database work to do (so the
    api-server can answer it on its event loop); (False, None) when `authenticate` must run."""
    if not _well_formed(token):
        return True, None
    digest = hash_token(token)
    row = cache.get(digest, now)
    if row is None:
        return False, None
    recipient = _judge(row, digest, recipients, today)
    if recipient is None:
        return True, None
    if _needs_touch(row, now):
        return False, None  # the once-a-minute write of its last use
    return True, _reader(row, recipient)


def authenticate(
    register: LookupRegister, token: str, *, recipients: Mapping[str, TokenRecipient], now: dt.datetime,
    today: dt.date, cache: TokenCache | None = None,
) -> d.Reader | None:
    """The reader a token acts as, or None: unknown, revoked, expired, or its recipient gone. With a
    `cache`, its row is read from the register at most once each TOKEN_CACHE_SECONDS."""
    if not _well_formed(token):
        return None
    digest = hash_token(token)
    row = cache.get(digest, now) if cache is not None else None
    if row is None:
        row = register.lookups.token_by_hash(digest)
        if row is None:
            return None
        if cache is not None:
            cache.put(digest, row, now)
    recipient = _judge(row, digest, recipients, today)
    if recipient is None:
        return None
    if _needs_touch(row, now):
        register.lookups.touch_token(row["id"], now, unless_since=now - TOUCH_EVERY)
        if cache is not None:
            cache.touched(digest, now)
    return _reader(row, recipient)


# --- reads -----------------------------------------------------------------------------------------


def _asked(**parameters: Any) -> dict[str, Any]:
    """The parameters as asked, for the log (text cut at a length no look-up needs)."""
    asked = {}
    for name, value in parameters.items():
        if value is None:
            continue
        asked[name] = value[: d.Q_MAX + 20] if isinstance(value, str) else value
    return asked


def search(
    register: LookupRegister, reader: d.Reader, *, q: str | None = None, postcode: str | None = None,
    asset_ref: str | None = None, page: int = 1, page_size: int = d.DEFAULT_PAGE_SIZE, now: dt.datetime,
    as_of: dt.date, view: d.TokenView, digest_fields: Sequence[str],
) -> dict[str, Any]:
    """One page of the alerts this reader may see that match the query, logged; QueryRefused (logged)
    for a query the reader may not ask."""
    asked = _asked(q=q, postcode=postcode, asset_ref=asset_ref, page=page, page_size=page_size)
    store = register.lookups
    try:
        query = d.validate_query(reader, q=q, postcode=postcode, asset_ref=asset_ref, page=page, page_size=page_size)
    except d.QueryRefused:
        with store.reading() as tx:
            _log(tx, reader, now, asked, "refused", ())
        raise
    scope = {"fields": d.read_fields(reader, digest_fields, view), "active_only": not reader.is_staff,
             "areas": tuple(reader.areas) if reader.role == "contractor" else None, "active_first": reader.is_staff}
    if store.searches_in_one_statement(query):
        return _search_in_one_statement(store, reader, query, scope, now=now, asked=asked, as_of=as_of, view=view)
    refused: str | None = None
    with store.reading() as tx:
        rows, total = tx.search(query, **scope)
        refused = d.too_broad(reader, total)
        if refused is not None:
            _log(tx, reader, now, asked, "refused", ())
            items: list[dict[str, Any]] = []
        else:
            # The SQL keeps to the reader's scope; the domain's rule is applied again to what comes back.
            items = [d.project(reader, row, as_of=as_of, view=view) for row in rows if d.may_see(reader, row)]
            _log(tx, reader, now, asked, "ok" if items else "not_found", [i["alert_id"] for i in items])
    if refused is not None:
        raise d.QueryRefused(refused)
    return {"items": items, "columns": d.column_list(reader, view), "page": query.page,
            "page_size": query.page_size, "total": total}


def _search_in_one_statement(
    store: LookupStore, reader: d.Reader, query: d.LookupQuery, scope: dict[str, Any], *, now: dt.datetime,
    asked: dict[str, Any], as_of: dt.date, view: d.TokenView,
) -> dict[str, Any]:
    """`search` as one statement that also logs (`LookupStore.search_logged`: a round trip instead of
    four). The SQL logs what it found, within the reader's scope and TOKEN_MAX_MATCHES; the domain's
    rules are applied again to what comes back, and should they show anything else than was logged
    (a scope the SQL and the domain disagree on), the log is amended to what is shown before the
    answer goes out: the log never says less, nor more, than the reader was shown."""
    found = store.search_logged(
        query, **scope, max_matches=None if reader.is_staff else d.TOKEN_MAX_MATCHES, at=now,
        reader_kind=reader.kind, reader=reader.name, token_id=reader.token_id, asked=asked,
    )
    refused = d.too_broad(reader, found.total)
    items = [] if refused else [d.project(reader, row, as_of=as_of, view=view) for row in found.rows
                                if d.may_see(reader, row)]
    outcome, shown = ("refused", ()) if refused else ("ok" if items else "not_found", tuple(i["alert_id"] for i in items))
    if (found.outcome, found.alert_ids) != (outcome, shown):
        with store.reading() as tx:
            tx.amend_log(found.lookup_id, outcome=outcome, alert_ids=shown)
    if refused is not None:
        raise d.QueryRefused(refused)
    return {"items": items, "columns": d.column_list(reader, view), "page": query.page,
            "page_size": query.page_size, "total": found.total}


def get_alert(
    register: LookupRegister, reader: d.Reader, alert_id: str, *, now: dt.datetime, as_of: dt.date,
    view: d.TokenView, digest_fields: Sequence[str],
) -> dict[str, Any] | None:
    """The alert as this reader is shown it (`domain.lookup.project`), or None when there is no such
    alert or the reader may not see it: the same answer, and the same log outcome, for both."""
    alert_id = str(alert_id).strip()
    with register.lookups.reading() as tx:
        row = tx.alert(alert_id, fields=d.read_fields(reader, digest_fields, view)) if len(alert_id) <= 64 else None
        item = d.project(reader, row, as_of=as_of, view=view) if row is not None and d.may_see(reader, row) else None
        _log(tx, reader, now, _asked(alert_id=alert_id), "ok" if item else "not_found", [alert_id] if item else ())
    return item


def alert_record(register: LookupRegister, reader: d.Reader, alert_id: str, *, now: dt.datetime) -> dict[str, Any] | None:
    """Staff only (QueryRefused for a token): the alert page's alert (never the note), its stored
    dates, history (a note's old and new values hidden), letters, disclosures and the reads that
    returned it; None when there is no such alert. The read itself is logged."""
    if not reader.is_staff:
        raise d.QueryRefused("the alert page is for staff")
    alert_id = str(alert_id).strip()
    with register.lookups.reading() as tx:
        page = tx.alert_page(alert_id) if len(alert_id) <= 64 else None
        _log(tx, reader, now, _asked(alert_id=alert_id, view="record"), "ok" if page else "not_found",
             [alert_id] if page else ())
    if page is None:
        return None
    return {
        "alert": {k: _plain(v) for k, v in page["alert"].items()},
        "deadlines": {k: _plain(v) for k, v in page["deadlines"].items()} if page["deadlines"] else None,
        "history": [{**{k: _plain(v) for k, v in h.items() if k != "changed_fields"},
                     "changed_fields": _without_note(h["changed_fields"])} for h in page["history"]],
        "letters": [{k: _plain(v) for k, v in x.items()} for x in page["letters"]],
        "disclosures": [{k: _plain(v) for k, v in x.items()} for x in page["disclosures"]],
        "reads": [{**{k: _plain(v) for k, v in r.items() if k != "query"}, "query": _parsed(r["query"])}
                  for r in page["reads"]],
    }


def _parsed(text: Any) -> dict[str, Any]:
    try:
        value = json.loads(text) if text else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _without_note(raw: Any) -> dict[str, Any]:
    """A history row's {field: [old, new]}, the note's values hidden (that it changed, and when, stays)."""
    changes = _parsed(raw)
    if "note" in changes:
        changes["note"] = [NOTE_HIDDEN, NOTE_HIDDEN]
    return {k: [_plain(v) for v in pair] if isinstance(pair, list) else pair for k, pair in changes.items()}


def reads_by_recipient_day(register: LookupRegister, *, since: dt.date, timezone: str) -> list[dict[str, Any]]:
    """Reads per reader per day (in `timezone`) from `since` on, newest day first:
    [{"day", "reader_kind", "reader", "lookups", "alerts_returned"}]."""
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    start = dt.datetime.combine(since, dt.time(0), tzinfo=zone)
    days: dict[tuple[dt.date, str, str], list[int]] = {}
    for hour, kind, reader, count, returned in register.lookups.reads_by_hour(start):
        day = hour.astimezone(zone).date()
        if day < since:
            continue  # an hour that began before local midnight (a zone off UTC by part of an hour)
        totals = days.setdefault((day, kind, reader), [0, 0])
        totals[0] += count
        totals[1] += returned
    return [
        {"day": day.isoformat(), "reader_kind": kind, "reader": reader, "lookups": n, "alerts_returned": returned}
        for (day, kind, reader), (n, returned) in sorted(days.items(), key=lambda item: (-item[0][0].toordinal(),
                                                                                          item[0][1], item[0][2]))
    ]


def _log(tx: Any, reader: d.Reader, now: dt.datetime, asked: dict[str, Any], outcome: str, alert_ids: Sequence[str]) -> None:
    tx.log(at=now, reader_kind=reader.kind, reader=reader.name, token_id=reader.token_id, query=asked,
           outcome=outcome, alert_ids=list(alert_ids))
