"""The lookup API (issue 16): `GET /cautionflow/api/v1/alerts` and `/alerts/{alert_id}`, a FastAPI
app that the register page's app mounts at `/api/v1`, so it is served by the same plugin inside
Airflow's api-server.

**Two kinds of reader.** Airflow mounts a plugin's app without authenticating it, and a mounted app
inherits none of the register page's dependencies, so every route here depends on `reader`:
- `Authorization: Bearer cf_...`: an API token (`cautionflow tokens create`), authenticated by the
  step layer (`steps.lookup.authenticate_token`; unknown, revoked or expired: 401). It acts as its
  recipient: a contractor sees only its areas and its digest's fields, out of hours its digest's.
  Airflow's own JWTs are Bearer too; the "cf_" prefix tells a token apart (a JWT starts "eyJ").
- otherwise an Airflow user, authenticated and authorised exactly as the register page
  (`require_airflow_user`: the Bearer JWT or the UI's `_token` cookie, and the "Caution register"
  custom view); any failure to authenticate is 401 here, a user without the permission 403.

**Status codes.** Every error is JSON `{"detail": "one line"}`. 401 (with `WWW-Authenticate:
Bearer`) without credentials or with a bad, revoked or expired token; 403 for a logged-in user
whose role may not see the register (and, on the staff pages, for any API token); 404 "no such
alert" both for an alert that does not exist and for one the reader may not see, the same body, so
the API is no oracle of what exists; 422 for a query the lookup rules refuse (its one-line reason:
tokens search by an exact postcode, an exact asset reference, or a house number and street) or a
malformed parameter; 429 with `Retry-After` beyond the token's rate limit; 503 when the register
cannot be read, or when its schema is behind this cautionflow's migrations (the detail then says
so: `steps.lookup.NEEDS_MIGRATIONS`; the api-server never migrates the register, the pipeline does).
Each served read (200, 404 and refused queries) is one row of the lookup log,
written by the step in the same transaction as the search (a read that cannot be logged is not
served). A request refused before it reads (401, 403, 429, a malformed parameter) reads nothing and
is not a lookup; the api-server's access log has it.

**Rate limit.** Each token may make `lookup.rate_limit_per_minute` requests (the config's, default
60, read with the config as below) in any 60 seconds; beyond that 429 with `Retry-After` (seconds
until the oldest request in the window leaves it). `create_api(rate_limit=...)` overrides the
config's (tests, the benchmark). The window
is a sliding log kept in this process's memory, so each api-server worker keeps its own: with
`airflow api-server --workers N` a token may make up to N times the limit. Operations set the limit
as the per-token rate they want divided by the workers. Airflow users are not limited (they are
staff, and Airflow's own login throttles them).

**OpenAPI.** The document is at `/cautionflow/api/v1/openapi.json`, served only to an authenticated
reader (user or token), never the interactive docs.

Time is an input: `clock` (the system clock by default) dates each read and judges token expiry.
Each worker reads the config again once it is `CONFIG_MAX_AGE` seconds old (`RecentConfig`), not
on every request.
"""

from __future__ import annotations

import collections
import gc
import logging
import math
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated, Any

import anyio
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request, Security
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.security import APIKeyCookie, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import datetime as dt

    from cautionflow.config import CautionflowConfig

log = logging.getLogger(__name__)

TOKEN_PREFIX = "cf_"  # what `cautionflow tokens create` prints; a JWT never starts so
WINDOW_SECONDS = 60.0
API_PREFIX = "/api/v1"
CONFIG_MAX_AGE = 30.0  # seconds a worker keeps the config it read (RecentConfig)
MAX_PAGE_SIZE = 50  # the lookup rules' cap (domain.lookup.MAX_PAGE_SIZE), so the document says it: more is 422


# --- the documents (pydantic models, so the OpenAPI document has schemas) --------------------------


class Problem(BaseModel):
    """Every error: one line, saying nothing of what exists."""

    detail: str


class AlertItem(BaseModel):
    """One alert as this reader may see it: `alert_id` and exactly the reader's fields (a contractor's
    digest fields, the out-of-hours digest's, or the register's for staff; never the note)."""

    model_config = ConfigDict(extra="allow")
    alert_id: str


class Column(BaseModel):
    key: str
    label: str


class AlertPage(BaseModel):
    """One page of a search: `next` is the URL of the following page while there is one."""

    items: list[AlertItem]
    columns: list[Column]
    page: int = Field(ge=1)
    page_size: int = Field(ge=1, le=MAX_PAGE_SIZE)
    total: int = Field(ge=0)
    next: str | None = None


ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": Problem, "description": "no credentials, or a bad, revoked or expired token"},
    403: {"model": Problem, "description": "a logged-in Airflow user whose role may not see the register"},
    422: {"model": Problem, "description": "a query the lookup rules refuse, or a malformed parameter"},
    429: {"model": Problem, "description": "the token's rate limit: retry after `Retry-After` seconds"},
    503: {"model": Problem, "description": "the register cannot be read now"},
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": Problem, "description": "no such alert, or not one this reader may see (the same answer)"},
}


class ApiError(Exception):
    """An error answered as `{"detail": ...}` with `status` (and `headers`)."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers or {}


def unauthorised(detail: str = "not authenticated") -> ApiError:
    return ApiError(401, detail, {"WWW-Authenticate": "Bearer"})


# --- the rate limit ----------------------------------------------------------------------------------


class SlidingWindowLimit:
    """At most `limit` requests per key in any `window` seconds, as a log of each key's recent request
    times (at most `limit` of them per key). The limit is given with each request: it is the config's,
    and the app is built (by the plugin, at the api-server's start) before any config is read; a
    lowered limit holds at once, the times already logged counting against it. In this process's
    memory: each api-server worker keeps its own windows (see the module's doc). A refused request is
    not counted."""

    def __init__(self, window: float = WINDOW_SECONDS) -> None:
        self.window = window
        self._seen: dict[Any, collections.deque[float]] = {}
        self._lock = threading.Lock()

    def admit(self, key: Any, at: float, limit: int) -> float | None:
        """None when the request at `at` (seconds) is admitted (and counted) under `limit`; else the
        seconds until one would be."""
        if limit < 1:
            raise ValueError("a rate limit needs at least one request per window")
        with self._lock:
            seen = self._seen.setdefault(key, collections.deque())
            while seen and seen[0] <= at - self.window:
                seen.popleft()
            if len(seen) >= limit:
                return seen[len(seen) - limit] + self.window - at
            seen.append(at)
            return None


# --- the worker's garbage collector -------------------------------------------------------------------

_frozen_in: int | None = None


def _freeze_startup_objects() -> None:
    """Once per api-server worker, at its first API request: move everything alive (Airflow's app,
    its routes and models, ~600,000 objects) out of the garbage collector's reach (`gc.freeze`).
    A full collection otherwise walks them all, a pause of 0.3-0.7 s on a busy machine for every
    request in flight on that worker: the look-ups' p99. They live as long as the worker anyway."""
    global _frozen_in
    if _frozen_in != os.getpid():
        _frozen_in = os.getpid()
        gc.freeze()


# --- who is asking ------------------------------------------------------------------------------------


bearer = HTTPBearer(auto_error=False, description="an API token (cf_...) or an Airflow JWT")
airflow_cookie = APIKeyCookie(name="_token", auto_error=False, description="the Airflow UI's login")


class RecentConfig:
    """The config, read again once it is `max_age` seconds old (monotonic time, not the clock the
    reads are dated by). Reading it costs a YAML parse and, in the api-server, a look-up of the
    register's Connection in Airflow's metadata database: more than a look-up itself, so not on
    every request. A token's expiry counts at once, its revocation within TOKEN_CACHE_SECONDS
    (`services.lookup`; at once when revoked in this process); a change to the config file (a
    recipient removed, its areas changed) within `max_age` seconds."""

    def __init__(self, load: Callable[[], CautionflowConfig], max_age: float = CONFIG_MAX_AGE,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        self._load, self._max_age, self._monotonic = load, max_age, monotonic
        self._config: CautionflowConfig | None = None
        self._read_at = 0.0
        self._lock = threading.Lock()

    def fresh(self) -> bool:
        """Would a call now answer without reading the config (so without blocking)?"""
        return self._config is not None and self._monotonic() - self._read_at < self._max_age

    def __call__(self) -> CautionflowConfig:
        with self._lock:
            now = self._monotonic()
            if self._config is None or now - self._read_at >= self._max_age:
                # A config that cannot be read is a 503, and the next request reads it again.
                self._config, self._read_at = self._load(), now
            return self._config


@dataclass(frozen=True)
class ApiSettings:
    """What `create_api` was given, kept on the app's state for the module-level dependency."""

    load_config: Callable[[], CautionflowConfig]
    clock: Callable[[], dt.datetime]
    limits: SlidingWindowLimit
    rate_limit: int | None = None  # None: the config's lookup.rate_limit_per_minute


def settings_of(request: Request) -> ApiSettings:
    return request.app.state.lookup  # Starlette sets scope["app"] to the mounted app itself


def config_for(request: Request) -> CautionflowConfig:
    """The config, read once a request (authentication and the read share it), or 503 saying nothing
    of why to the reader (the api-server's log says)."""
    from cautionflow.steps import step_errors

    config = getattr(request.state, "cautionflow_config", None)
    if config is None:
        try:
            config = settings_of(request).load_config()
        except step_errors() as exc:
            log.warning("lookup API: cannot read the config: %s", exc)
            raise ApiError(503, "the register cannot be read now") from None
        request.state.cautionflow_config = config
    return config


async def reader(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Security(bearer)] = None,
    _cookie: Annotated[str | None, Security(airflow_cookie)] = None,  # declared for the document only
) -> Any:
    """Who is asking (a `steps.lookup.Reader`): a token's recipient, or a logged-in Airflow user (see
    the module's doc)."""
    from cautionflow.steps import lookup, step_errors
    from cautionflow.web.register_page import NotPermitted, require_airflow_user

    _freeze_startup_objects()
    settings = settings_of(request)
    if credentials is not None and credentials.credentials.startswith(TOKEN_PREFIX):
        # Reading the config (a YAML parse and, in the api-server, the register's Connection from
        # Airflow's metadata database) blocks: in the thread pool, not on the worker's event loop,
        # where it stalled every request in flight on the worker once in CONFIG_MAX_AGE seconds.
        fresh = isinstance(settings.load_config, RecentConfig) and settings.load_config.fresh()
        config = config_for(request) if fresh else await run_in_threadpool(config_for, request)
        now = settings.clock()
        # A token this worker has read in the last few seconds is judged here, on the event loop: a
        # hop to the thread pool and a database round trip fewer on nearly every look-up.
        decided, found = lookup.authenticate_token_cached(config, credentials.credentials, now=now)
        if not decided:
            try:
                found = await run_in_threadpool(lookup.authenticate_token, config, credentials.credentials, now=now)
            except step_errors() as exc:
                raise unreadable(exc) from None
        if found is None:
            raise unauthorised("invalid, revoked or expired token")
        limit = settings.rate_limit or config.lookup.rate_limit_per_minute
        wait = settings.limits.admit(found.token_id, settings.clock().timestamp(), limit)
        if wait is not None:
            raise ApiError(429, "rate limit exceeded", {"Retry-After": str(max(1, math.ceil(wait)))})
        return found
    try:
        user = await require_airflow_user(request)
    except HTTPException as exc:  # Airflow's: not authenticated, expired, or an invalid JWT (its 403)
        raise unauthorised(str(exc.detail)) from None
    except NotPermitted:
        raise ApiError(403, "your Airflow role may not see the caution register") from None
    return lookup.staff_reader(getattr(user, "username", None) or str(user.get_id()))


AuthenticatedReader = Annotated[Any, Depends(reader)]


# --- the app -----------------------------------------------------------------------------------------


NO_STORE = {"Cache-Control": "no-store"}  # personal data: no cache keeps an answer
CONNECTION_REQUESTS = 20  # answers on one keep-alive connection before it is closed (see ConnectionRecycler)
SHED_QUEUED = 3  # look-ups waiting for the worker's database gate that make it shed a connection (ConnectionRecycler)
SHED_AFTER = 4  # answers a connection gets before it may be shed: a reconnection each 4 look-ups at most


class ConnectionRecycler:
    """Closes each client connection after CONNECTION_REQUESTS answers (`Connection: close`, which
    uvicorn honours; the client reconnects). The api-server's workers share one listening socket
    and a keep-alive connection stays with whichever worker accepted it: a job system's long-lived
    connections, split unevenly, leave one worker queueing while another idles (the benchmark: one
    worker's clients waiting twice as long as the other's, the p99). A reconnection is accepted by
    a worker free to accept it, so the load evens out (the benchmark, 20 clients on 2 workers: each
    client's mean latency 41-80 ms closing every 100th answer, as without; 61-76 ms every 10th,
    49-82 ms every 20th). A loopback or LAN connection each 20 look-ups is cheap beside a look-up. Keyed by the
    client's address and port, per worker; forgotten when it grows large.

    A busy worker sheds sooner: when SHED_QUEUED or more look-ups wait for its database gate as it
    answers, a connection that has had SHED_AFTER answers is closed, so the load moves off the worker
    that has more than its share, while an idle one keeps its connections (the benchmark, 20
    clients on 2 workers, two runs each: each client's mean latency 49-54 and 57-63 ms, against
    44-68 and 55-67 ms closing only every 20th answer; p99 133 and 140 ms against 157 and 141 ms)."""

    def __init__(self, every: int = CONNECTION_REQUESTS, size: int = 4096, *, shed_queued: int = SHED_QUEUED,
                 shed_after: int = SHED_AFTER) -> None:
        self.every, self.size, self.shed_queued, self.shed_after = every, size, shed_queued, shed_after
        self._served: dict[Any, int] = {}

    def headers(self, request: Request, queued: int = 0) -> dict[str, str]:
        """The headers of an answer: NO_STORE, and `Connection: close` on a connection's last (its
        `every`th answer, or a later one than `shed_after` while `queued` look-ups wait on this worker)."""
        client = request.scope.get("client")
        if client is None:
            return NO_STORE
        if len(self._served) >= self.size:
            self._served.clear()
        key = tuple(client)
        served = self._served.get(key, 0) + 1
        if served < self.every and not (queued >= self.shed_queued and served >= self.shed_after):
            self._served[key] = served
            return NO_STORE
        self._served.pop(key, None)
        return {**NO_STORE, "Connection": "close"}


async def _api_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status, headers={**NO_STORE, **exc.headers})


async def _malformed(request: Request, exc: Exception) -> JSONResponse:
    """A parameter out of its bounds: 422 with one line, like a refused query."""
    assert isinstance(exc, RequestValidationError)
    first = exc.errors()[0] if exc.errors() else {}
    where = ".".join(str(part) for part in first.get("loc", ()) if part not in ("query", "path"))
    return JSONResponse({"detail": f"{where}: {first.get('msg', 'malformed')}"}, status_code=422, headers=NO_STORE)


def unreadable(exc: Exception) -> ApiError:
    """503: saying nothing of why to the reader (the api-server's log says), except that the register
    needs its migrations, which the api-server never runs: whoever sees it can have them run."""
    from cautionflow.steps import lookup

    log.warning("lookup API: cannot read the register: %s", exc)
    if isinstance(exc, lookup.RegisterOutdatedError):
        return ApiError(503, lookup.NEEDS_MIGRATIONS)
    return ApiError(503, "the register cannot be read now")


def create_api(
    *, load_config: Callable[[], CautionflowConfig], clock: Callable[[], dt.datetime],
    rate_limit: int | None = None, config_max_age: float = CONFIG_MAX_AGE,
) -> FastAPI:
    """The lookup API's app (see the module's doc); `load_config` and `clock` as the register page's,
    the config read again after `config_max_age` seconds (0: on every request); `rate_limit`, when
    given, instead of the config's `lookup.rate_limit_per_minute`."""
    api = FastAPI(
        title="cautionflow lookup API", version="1",
        description="Look up the caution alert register before a visit or a call. Every read is recorded.",
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    api.state.lookup = ApiSettings(RecentConfig(load_config, config_max_age), clock, SlidingWindowLimit(), rate_limit)
    recycler = ConnectionRecycler()
    # The reads wait their turn here, first come first served, not in the thread pool: at most
    # CONCURRENT_READS a worker use the database at once (the step's own gate, its pool's size),
    # and a thread blocked on that gate is woken in no order and fights the others for the GIL
    # (the benchmark's p99). An anyio semaphore binds to no event loop (tests run several).
    from cautionflow.steps.lookup import CONCURRENT_READS

    gate = anyio.Semaphore(CONCURRENT_READS)
    api.add_exception_handler(ApiError, _api_error)
    api.add_exception_handler(RequestValidationError, _malformed)

    @api.get(
        "/alerts", response_model=AlertPage, name="search_alerts", responses=ERRORS,
        summary="Search the register: by exact postcode, exact asset reference, or a house number and street",
    )
    async def search_alerts(
        request: Request, who: AuthenticatedReader,
        postcode: Annotated[str | None, Query(
            max_length=16, description="a full UK postcode, any case or spacing",
            openapi_examples={"full": {"value": "EW1 2AB"}, "typed": {"value": "ew12ab"}},
        )] = None,
        asset_ref: Annotated[str | None, Query(
            max_length=64, description="the exact asset reference", openapi_examples={"asset": {"value": "H0001"}},
        )] = None,
        q: Annotated[str | None, Query(
            max_length=200, description="tokens: a house number and street (staff also a name or a reference)",
            openapi_examples={"address": {"value": "1 Larkspur Close"}},
        )] = None,
        page: Annotated[int, Query(ge=1, le=100_000)] = 1,
        page_size: Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)] = 20,
    ) -> Any:
        from cautionflow.steps import lookup, step_errors

        settings = settings_of(request)
        try:
            async with gate:
                found = await run_in_threadpool(lambda: lookup.search_alerts(
                    config_for(request), who, q=q, postcode=postcode, asset_ref=asset_ref,
                    page=page, page_size=page_size, now=settings.clock(),
                ))
        except lookup.QueryRefused as exc:
            raise ApiError(422, str(exc)) from None
        except step_errors() as exc:
            raise unreadable(exc) from None
        more = found["page"] * found["page_size"] < found["total"]
        following = str(request.url.include_query_params(page=found["page"] + 1)) if more else None
        # Plain JSON of what the step built (AlertPage's shape: the schemathesis test checks it),
        # not validated again by the response model: about a fifth of the worker's time a look-up.
        return JSONResponse({**found, "next": following},
                            headers=recycler.headers(request, gate.statistics().tasks_waiting))

    @api.get(
        "/alerts/{alert_id}", response_model=AlertItem, name="get_alert", responses={**ERRORS, **NOT_FOUND},
        summary="One alert, as this reader may see it",
    )
    async def get_alert(
        request: Request, who: AuthenticatedReader,
        alert_id: Annotated[str, Path(min_length=1, max_length=64, openapi_examples={"alert": {"value": "CX-0001"}})],
    ) -> Any:
        from cautionflow.steps import lookup, step_errors

        settings = settings_of(request)
        try:
            async with gate:
                found = await run_in_threadpool(
                    lambda: lookup.get_alert(config_for(request), who, alert_id, now=settings.clock()))
        except step_errors() as exc:
            raise unreadable(exc) from None
        if found is None:
            raise ApiError(404, "no such alert")
        return JSONResponse(found, headers=recycler.headers(request, gate.statistics().tasks_waiting))

    @api.get("/openapi.json", include_in_schema=False)
    def openapi(request: Request, who: AuthenticatedReader) -> JSONResponse:
        """The OpenAPI document, only for an authenticated reader."""
        document = get_openapi(
            title=api.title, version=api.version, description=api.description, routes=api.routes,
            servers=[{"url": request.scope.get("root_path", "") or "/"}],
        )
        return JSONResponse(document, headers=NO_STORE)

    return api
