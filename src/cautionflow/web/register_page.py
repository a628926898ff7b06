"""The register page: a FastAPI app that `plugins/cautionflow_register_page.py` mounts in Airflow's
api-server under `/cautionflow`, with a "Caution register" entry in the Airflow UI's navigation.

**Only for users logged in to Airflow.** Airflow mounts a plugin's FastAPI app as it is: it adds no
authentication of its own. So every route of this app depends on `require_airflow_user`, which
authenticates the request exactly as Airflow's own API does (`get_user` in
`airflow.api_fastapi.core_api.security`: the `Authorization: Bearer` JWT, or else the `_token`
cookie the Airflow UI's login sets, validated by the configured auth manager) and then asks the
auth manager whether the user may see this custom view (`is_authorized_custom_view`, GET,
"Caution register"; the SimpleAuthManager allows every role from viewer up). A request without a
valid login gets 401 (a browser asking for HTML is redirected to Airflow's login page, which brings
it back); a logged-in user without the permission gets 403. The OpenAPI docs are switched off so
nothing under the prefix is served without a login.

**An API token is not a login.** The lookup API's tokens (`cf_...`, `cautionflow tokens create`) read
only the API (`cautionflow.web.lookup_api`, mounted at `/api/v1` with its own authentication); one
presented to any page here is 403, before Airflow is asked about it.

**Look-ups (issue 16).** A search box on the page leads to `/search?q=`: one box for a postcode (any
case or spacing), an address, an asset reference, a person's name or reference, the results as the
register shows them, each linking to its alert page (`/alerts/{alert_id}`: the alert, its history,
letters, disclosures and the reads that returned it). Both are staff pages (the Airflow login above)
and both are reads: each search and each alert page is a row of the lookup log, as an API request
is. The page itself shows the reads per recipient per day of the last `READS_DAYS` days.

Read-only: it reads the register through the step layer (`cautionflow.steps.reads`; its URL from
the config, overridden by the Connection `cautionflow_register`) and the latest DAG runs from
Airflow's metadata database through the api-server's own ORM session
(`cautionflow.integrations.airflow.metadata`).

**Reports.** The page lists the latest report files in the config's `output_dir` (All Alerts,
reviews overdue, and the governance reports) and serves them at `/reports/{name}`: HTML inline,
CSV as a download, behind the same login. Only a file directly in that folder whose name matches a
known report is served (`cautionflow.steps.reads.report_file`: the name is matched, then the path
resolved and its parent checked; in a bucket, the key is the folder's prefix and the name); anything
else is 404. Reports and letters' PDFs are read whole through Airflow's object storage, so
`output_dir` and `letters.output_dir` may be URLs (`s3://bucket/reports`) as well as folders.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig
    from cautionflow.integrations.airflow.metadata import DagRunState

log = logging.getLogger(__name__)

URL_PREFIX = "/cautionflow"
NAV_ROUTE = "caution-register"
RESOURCE_NAME = "Caution register"
TOKEN_PREFIX = "cf_"  # an API token's (cautionflow.web.lookup_api): never a login for these pages
READS_DAYS = 7  # the register page's table of reads per recipient per day
SEARCH_PAGE_SIZE = 50


class NotPermitted(Exception):
    """A logged-in user whose role may not see the register page."""


class TokenNotAllowed(Exception):
    """An API token presented to a staff page: the token reads the lookup API only."""


# --- authentication ------------------------------------------------------------------------------


async def require_airflow_user(request: Request) -> Any:
    """The logged-in Airflow user, as Airflow's API authenticates one; 401 (or 403 for a bad token)
    without a valid login, NotPermitted (403) when the auth manager denies this view."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    if credentials is not None and credentials.credentials.startswith(TOKEN_PREFIX):
        raise TokenNotAllowed()
    user = await get_user(request, None, credentials)
    if not get_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE_NAME, user=user):
        raise NotPermitted(getattr(user, "username", "user"))
    return user


AirflowUser = Annotated[Any, Depends(require_airflow_user)]  # run once a request, however often named


def _wants_html(request: Request) -> bool:
    return "text/html" in request.headers.get("accept", "")


def _login_url(request: Request) -> str | None:
    try:
        from airflow.api_fastapi.app import get_auth_manager

        return get_auth_manager().get_url_login(next_url=str(request.url))
    except Exception:  # noqa: BLE001 - without a login URL the plain 401 stands
        return None


async def _not_logged_in(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code in (401, 403) and _wants_html(request) and (login := _login_url(request)):
        return RedirectResponse(login, status_code=303)
    return JSONResponse({"detail": exc.detail}, status_code=exc.status_code, headers=exc.headers)


async def _token_not_allowed(request: Request, exc: Exception) -> Response:
    return JSONResponse({"detail": "an API token may read only the lookup API"}, status_code=403)


async def _not_permitted(request: Request, exc: Exception) -> Response:
    return HTMLResponse(
        "<!doctype html><title>Caution register</title><p>Your Airflow role may not see the caution register.</p>",
        status_code=403,
    )


# --- the last run of each DAG (Airflow's metadata database) ----------------------------------------


# --- the chart ------------------------------------------------------------------------------------


def week_chart(bars: Sequence[Any], *, width: int = 560, height: int = 160) -> dict[str, Any]:
    """Geometry of an inline SVG bar chart of alerts coming due per week (no script, no CDN)."""
    top, bottom, left = 14, 30, 8
    most = max((b.count for b in bars), default=0) or 1
    slot = (width - left) / max(len(bars), 1)
    plot = height - top - bottom
    out = []
    for i, bar in enumerate(bars):
        h = round(plot * bar.count / most, 1)
        out.append({
            "x": round(left + i * slot + slot * 0.15, 1), "width": round(slot * 0.7, 1),
            "y": round(top + plot - h, 1), "height": h, "count": bar.count,
            "label": f"{bar.week_start.day} {bar.week_start:%b}", "week_start": bar.week_start,
            "label_x": round(left + i * slot + slot / 2, 1),
        })
    return {"width": width, "height": height, "baseline": top + plot, "bars": out}


# --- the app --------------------------------------------------------------------------------------


def create_app(
    *,
    config_loader: Callable[[], CautionflowConfig] | None = None,
    dag_runs: Callable[[], list[DagRunState]] | None = None,
    clock: Callable[[], dt.datetime] | None = None,
    token_rate_limit: int | None = None,
) -> FastAPI:
    """The register page's app; every route requires an Airflow login (see the module's doc), and the
    lookup API is mounted at `/api/v1` with its own (a token or that login). By default the config
    and the DAG runs are read as the api-server reads them (the plugin's case), the time is the
    system clock's and each token may make the config's `lookup.rate_limit_per_minute` requests a
    minute per worker; a test (or the benchmark) passes its own, `token_rate_limit` overriding the
    config's."""
    from cautionflow.clock import system_clock
    from cautionflow.web.lookup_api import API_PREFIX, create_api

    if config_loader is None:
        from cautionflow.integrations.airflow.settings import config_for_api_server as config_loader
    if dag_runs is None:
        from cautionflow.integrations.airflow.metadata import airflow_dag_runs as dag_runs

    load_config = config_loader
    read_dag_runs = dag_runs
    now = clock or system_clock
    app = FastAPI(
        title="cautionflow register page",
        dependencies=[Depends(require_airflow_user)],
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.add_exception_handler(HTTPException, _not_logged_in)
    app.add_exception_handler(NotPermitted, _not_permitted)
    app.add_exception_handler(TokenNotAllowed, _token_not_allowed)
    # A mount: its routes have their own authentication (a token or the login), not this app's.
    app.mount(API_PREFIX, create_api(
        load_config=load_config, clock=now, rate_limit=token_rate_limit,
    ))

    def context(request: Request) -> tuple[CautionflowConfig, Callable[..., str], dict[str, str]]:
        from cautionflow.steps.wiring import renderer

        config = load_config()
        root = request.scope.get("root_path", "")
        links = {
            "page": str(request.url_for("register_page")),
            "overdue": str(request.url_for("review_list", which="overdue")),
            "due": str(request.url_for("review_list", which="due")),
            "search": str(request.url_for("search_page")),
            "airflow": root.removesuffix(URL_PREFIX) + "/",
        }
        return config, renderer(config), links

    def trouble(message: str) -> HTMLResponse:
        """503 with a plain message: the register is missing (never created here), or its database
        is down, or the config cannot be read. Never a 500, never an empty register."""
        log.warning("register page unavailable: %s", message)
        return HTMLResponse(
            "<!doctype html><title>Caution register</title><h1>Caution register</h1>"
            f"<p>The register cannot be read: {_escape(message)}</p>",
            status_code=503,
        )

    @app.get("/", response_class=HTMLResponse, name="register_page")
    def register_page(request: Request) -> Response:
        from cautionflow.steps import lookup, reads, step_errors

        try:
            config, render, links = context(request)
            page = reads.register_page(config)
        except step_errors() as exc:
            return trouble(str(exc))
        try:
            runs, runs_error = read_dag_runs(), None
        except Exception as exc:  # noqa: BLE001 - the register's figures still show
            log.warning("cannot read the DAG runs: %s: %s", type(exc).__name__, exc)
            runs, runs_error = [], f"{type(exc).__name__}"
        try:
            reports, reports_error = reads.report_files(config), None
        except OSError as exc:  # the rest of the page still shows (a folder, or a bucket, out of reach)
            log.warning("cannot list the reports in %s: %s", config.output_dir, exc)
            reports, reports_error = [], exc.strerror or type(exc).__name__
        report_links = {
            f.name: str(request.url_for("report_file", name=f.name)) for group in reports for f in group.files
        }
        letter_links = {x.id: str(request.url_for("letter_pdf", letter_id=x.id)) for x in page.letters_waiting}
        since = now().astimezone(ZoneInfo(config.timezone)).date() - dt.timedelta(days=READS_DAYS - 1)
        try:
            lookup_reads = [{**r, "day": _day(r["day"])} for r in lookup.reads_by_recipient_day(config, since=since)]
            reads_error = None
        except step_errors() as exc:  # a register not migrated to the lookup log yet: the rest shows
            log.warning("cannot read the lookup log: %s", exc)
            lookup_reads, reads_error = [], str(exc)
        html = render(
            "web/register_page.html", organisation=config.organisation, page=page, links=links,
            runs=runs, runs_error=runs_error, chart=week_chart(page.due_by_week), horizon=reads.HORIZON_DAYS,
            reports=reports, reports_error=reports_error, report_links=report_links, letter_links=letter_links,
            lookup_reads=lookup_reads, reads_error=reads_error, reads_since=since,
        )
        return HTMLResponse(html)

    @app.get("/reports/{name}", name="report_file")
    def report_file(name: str) -> Response:
        """A report file from the output folder: HTML inline, CSV as a download; 404 for any name
        that is not a known report's, or whose file is not directly in the folder."""
        from cautionflow.steps import reads, step_errors

        try:
            config = load_config()
        except step_errors() as exc:
            return trouble(str(exc))
        path = reads.report_file(config, name)
        if path is None:
            raise HTTPException(status_code=404, detail="no such report")
        try:
            content = path.read_bytes()  # whole: a report replaced meanwhile is served old or new, never mixed
        except OSError as exc:
            raise HTTPException(status_code=404, detail="no such report") from exc
        # The name matched a report's pattern, so it needs no quoting.
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff"}
        if path.suffix == ".html":
            # The reports are static pages (inline style and SVG): nothing else may load or run.
            headers["Content-Security-Policy"] = (
                "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'self'"
            )
            headers["Content-Disposition"] = f'inline; filename="{path.name}"'
            return Response(content, media_type="text/html; charset=utf-8", headers=headers)
        headers["Content-Disposition"] = f'attachment; filename="{path.name}"'
        return Response(content, media_type="text/csv; charset=utf-8", headers=headers)

    @app.get("/letters/{letter_id}.pdf", name="letter_pdf")
    def letter_pdf(letter_id: int) -> Response:
        """A letter's PDF, to read before approving it: only a letter not dispatched yet, only the file
        the queue records inside `letters.output_dir`; 404 for anything else. Inline, never cached."""
        from cautionflow.steps import reads, step_errors

        try:
            path = reads.letter_pdf_file(load_config(), letter_id)
        except step_errors() as exc:
            return trouble(str(exc))
        if path is None:
            raise HTTPException(status_code=404, detail="no such letter")
        try:
            content = path.read_bytes()
        except OSError as exc:
            raise HTTPException(status_code=404, detail="no such letter") from exc
        headers = {"Cache-Control": "no-store", "X-Content-Type-Options": "nosniff",
                   "Content-Disposition": f'inline; filename="letter-{letter_id}.pdf"'}
        return Response(content, media_type="application/pdf", headers=headers)

    @app.get("/reviews/{which}", response_class=HTMLResponse, name="review_list")
    def review_list(
        request: Request, which: str, code: str | None = Query(default=None, max_length=16),
        area: str | None = Query(default=None, max_length=64),
    ) -> Response:
        from cautionflow.steps import reads, step_errors

        if which not in reads.REVIEW_LISTS:
            raise HTTPException(status_code=404, detail="no such list")
        try:
            config, render, links = context(request)
            as_of, rows = reads.review_list(config, which, code=code, area=area)
        except step_errors() as exc:
            return trouble(str(exc))
        html = render(
            "web/review_list.html", organisation=config.organisation, which=which, as_of=as_of, rows=rows,
            code=code, area=area, links=links, horizon=reads.HORIZON_DAYS,
        )
        return HTMLResponse(html)

    @app.get("/search", response_class=HTMLResponse, name="search_page")
    def search_page(
        request: Request, user: AirflowUser,
        q: str = Query(default="", max_length=200), page: int = Query(default=1, ge=1, le=100_000),
    ) -> Response:
        """The search box's results: one box for a postcode, address, asset reference, name or person
        reference (staff's rules; the step normalises a postcode); each search is logged."""
        from cautionflow.steps import lookup, step_errors

        try:
            config, render, links = context(request)
        except step_errors() as exc:
            return trouble(str(exc))
        box = q.strip()
        found, refused = None, None
        if box:
            try:
                found = lookup.search_alerts(
                    config, lookup.staff_reader(_username(user)), q=box, page=page, page_size=SEARCH_PAGE_SIZE,
                    now=now(),
                )
            except lookup.QueryRefused as exc:
                refused = str(exc)
            except step_errors() as exc:
                return trouble(str(exc))
        alert_links = {
            item["alert_id"]: str(request.url_for("alert_page", alert_id=item["alert_id"]))
            for item in (found or {}).get("items", ())
        }
        pages = {}
        if found is not None:
            if found["page"] > 1:
                pages["previous"] = str(request.url.include_query_params(page=found["page"] - 1))
            if found["page"] * found["page_size"] < found["total"]:
                pages["next"] = str(request.url.include_query_params(page=found["page"] + 1))
        html = render(
            "web/search.html", organisation=config.organisation, q=box, found=found, refused=refused,
            alert_links=alert_links, pages=pages, links=links,
        )
        return HTMLResponse(html, status_code=422 if refused else 200, headers={"Cache-Control": "no-store"})

    @app.get("/alerts/{alert_id}", response_class=HTMLResponse, name="alert_page")
    def alert_page(request: Request, alert_id: str, user: AirflowUser) -> Response:
        """One alert for staff: the alert (never the note), its history, letters, disclosures and
        reads; the same 404 for an id that is not in the register as the API's. The read is logged."""
        from cautionflow.steps import lookup, step_errors

        try:
            config, render, links = context(request)
            record = lookup.alert_record(config, alert_id, reader=lookup.staff_reader(_username(user)), now=now())
        except step_errors() as exc:
            return trouble(str(exc))
        if record is None:  # the same for any id not in the register: the page says no more
            return HTMLResponse(
                "<!doctype html><title>Caution register</title><h1>No such alert</h1>"
                f'<p><a href="{_escape(links["search"])}">Look up another</a></p>',
                status_code=404, headers={"Cache-Control": "no-store"},
            )
        html = render("web/alert.html", organisation=config.organisation, alert_id=alert_id, record=record,
                      links=links)
        return HTMLResponse(html, headers={"Cache-Control": "no-store"})

    return app


def _day(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value))


def _username(user: Any) -> str:
    """The Airflow user's name, as the lookup log records the reader."""
    return getattr(user, "username", None) or str(user.get_id())


def _escape(text: str) -> str:
    import html

    return html.escape(text)
