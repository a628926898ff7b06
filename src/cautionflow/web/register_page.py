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

Read-only: it reads the register through the step layer (`cautionflow.steps.reads`; its URL from
the config, overridden by the Connection `cautionflow_register`) and the latest DAG runs from
Airflow's metadata database through the api-server's own ORM session
(`cautionflow.integrations.airflow.metadata`).

**Reports.** The page lists the latest report files in the config's `output_dir` (All Alerts,
reviews overdue, and the governance reports) and serves them at `/reports/{name}`: HTML inline,
CSV as a download, behind the same login. Only a file directly in that folder whose name matches a
known report is served (`cautionflow.steps.reads.report_file`: the name is matched, then the path
resolved and its parent checked); anything else is 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig
    from cautionflow.integrations.airflow.metadata import DagRunState

log = logging.getLogger(__name__)

URL_PREFIX = "/cautionflow"
NAV_ROUTE = "caution-register"
RESOURCE_NAME = "Caution register"


class NotPermitted(Exception):
    """A logged-in user whose role may not see the register page."""


# --- authentication ------------------------------------------------------------------------------


async def require_airflow_user(request: Request) -> Any:
    """The logged-in Airflow user, as Airflow's API authenticates one; 401 (or 403 for a bad token)
    without a valid login, NotPermitted (403) when the auth manager denies this view."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.core_api.security import bearer_scheme, get_user

    credentials = await bearer_scheme(request)
    user = await get_user(request, None, credentials)
    if not get_auth_manager().is_authorized_custom_view(method="GET", resource_name=RESOURCE_NAME, user=user):
        raise NotPermitted(getattr(user, "username", "user"))
    return user


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
) -> FastAPI:
    """The register page's app; every route requires an Airflow login (see the module's doc). By
    default the config and the DAG runs are read as the api-server reads them (the plugin's case);
    a test passes its own readers."""
    if config_loader is None:
        from cautionflow.integrations.airflow.settings import config_for_api_server as config_loader
    if dag_runs is None:
        from cautionflow.integrations.airflow.metadata import airflow_dag_runs as dag_runs

    load_config = config_loader
    read_dag_runs = dag_runs
    app = FastAPI(
        title="cautionflow register page",
        dependencies=[Depends(require_airflow_user)],
        docs_url=None, redoc_url=None, openapi_url=None,
    )
    app.add_exception_handler(HTTPException, _not_logged_in)
    app.add_exception_handler(NotPermitted, _not_permitted)

    def context(request: Request) -> tuple[CautionflowConfig, Callable[..., str], dict[str, str]]:
        from cautionflow.steps.wiring import renderer

        config = load_config()
        root = request.scope.get("root_path", "")
        links = {
            "page": str(request.url_for("register_page")),
            "overdue": str(request.url_for("review_list", which="overdue")),
            "due": str(request.url_for("review_list", which="due")),
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
        from cautionflow.steps import reads, step_errors

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
        folder = config.path(config.output_dir)
        try:
            reports, reports_error = reads.report_files(config), None
        except OSError as exc:  # the rest of the page still shows
            log.warning("cannot list the reports in %s: %s", folder, exc)
            reports, reports_error = [], exc.strerror or type(exc).__name__
        report_links = {
            f.name: str(request.url_for("report_file", name=f.name)) for group in reports for f in group.files
        }
        letter_links = {x.id: str(request.url_for("letter_pdf", letter_id=x.id)) for x in page.letters_waiting}
        html = render(
            "web/register_page.html", organisation=config.organisation, page=page, links=links,
            runs=runs, runs_error=runs_error, chart=week_chart(page.due_by_week), horizon=reads.HORIZON_DAYS,
            reports=reports, reports_error=reports_error, report_links=report_links, letter_links=letter_links,
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

    return app


def _escape(text: str) -> str:
    import html

    return html.escape(text)
