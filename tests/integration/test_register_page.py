"""The register page (issue 6): its figures against the register, and that every route needs an
Airflow login.

The content tests drive the page's FastAPI app with a TestClient against a register built by the
real pipeline steps on the synthetic demo data, authenticated exactly as in the api-server: Airflow's
own SimpleAuthManager, initialised in this process, signs the JWTs. The last test does the same
against the real `airflow api-server` with this repository's plugin mounted
(`tests/integration/conftest.py`)."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from pathlib import Path
from urllib.parse import quote

import pytest
import yaml

from tests.integration.conftest import REFUSING, airflow_metadata, http_get
from tests.support import AS_OF, REPO

JWT_SECRET = "cautionflow-test-jwt-secret-" + "y" * 40


@pytest.fixture(scope="module")
def auth_manager(tmp_path_factory, airflow_demo):
    """Airflow's SimpleAuthManager, initialised as the api-server initialises it."""
    from airflow.api_fastapi.app import init_auth_manager, purge_cached_app

    mp = pytest.MonkeyPatch()
    folder = tmp_path_factory.mktemp("auth")
    mp.setenv("AIRFLOW__CORE__AUTH_MANAGER",
              "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "ops:viewer")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(folder / "passwords.json"))
    mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", JWT_SECRET)
    purge_cached_app()
    with airflow_metadata(airflow_demo.env):  # token revocation is checked in Airflow's database
        yield init_auth_manager()
    purge_cached_app()
    mp.undo()


def token(manager, role: str | None = "viewer", username: str = "ops") -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))


@pytest.fixture
def demo(airflow_demo):
    return airflow_demo.config, airflow_demo.register


@pytest.fixture
def client(demo, auth_manager, monkeypatch):
    from fastapi.testclient import TestClient

    from cautionflow.web.register_page import create_app

    config, _ = demo
    monkeypatch.setenv("CAUTIONFLOW_CONFIG", str(config))
    monkeypatch.setenv("CAUTIONFLOW_HOME", str(config.parent))
    monkeypatch.delenv("AIRFLOW_CONN_CAUTIONFLOW_REGISTER", raising=False)
    app = create_app()  # the real readers: the register, and the DAG runs in Airflow's database
    # Mounted as the api-server mounts it, so links carry the prefix.
    from fastapi import FastAPI

    root = FastAPI()
    root.mount("/cautionflow", app)
    with TestClient(root, base_url="http://airflow.test") as c:
        yield c


def figure(html: str, element_id: str) -> int:
    match = re.search(rf'id="{element_id}">(\d+)<', html)
    assert match, f"no #{element_id} on the page"
    return int(match.group(1))


def airflow_demo_db(demo) -> str:
    config, _ = demo
    return str(config.parent / "airflow" / "airflow.db")


def query(db: Path, sql: str, *params) -> list[tuple]:
    with sqlite3.connect(db) as conn:
        return conn.execute(sql, params).fetchall()


# --- authentication --------------------------------------------------------------------------------


ROUTES = (
    "/cautionflow/", "/cautionflow/reviews/overdue", "/cautionflow/reviews/due?area=NORTH",
    f"/cautionflow/reports/all-alerts-{AS_OF.isoformat()}.html", f"/cautionflow/reports/all-alerts-{AS_OF.isoformat()}.csv",
    "/cautionflow/reports/no-such-report.csv", "/cautionflow/letters/1.pdf",
)


@pytest.mark.parametrize("path", ROUTES)
def test_an_anonymous_request_is_refused_on_every_route(client, path):
    response = client.get(path, follow_redirects=False)
    assert response.status_code == 401
    assert "Caution register" not in response.text and "overdue-count" not in response.text


def test_an_anonymous_browser_is_sent_to_airflows_login_and_back(client):
    response = client.get("/cautionflow/", headers={"Accept": "text/html"}, follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/auth/login?next=")
    assert "cautionflow" in response.headers["location"]


def test_every_route_of_the_app_depends_on_the_airflow_login():
    from fastapi.routing import APIRoute

    from cautionflow.web.register_page import create_app, require_airflow_user

    app = create_app(dag_runs=list)
    routes = [r for r in app.routes if isinstance(r, APIRoute)]
    assert {r.path for r in routes} == {
        "/", "/reviews/{which}", "/reports/{name}", "/letters/{letter_id}.pdf", "/search", "/alerts/{alert_id}",
    }
    for route in routes:
        assert require_airflow_user in [d.call for d in route.dependant.dependencies], route.path
    assert app.openapi_url is None and app.docs_url is None  # nothing served without a login


def test_a_forged_or_garbled_token_is_refused(client, auth_manager):
    import jwt

    good = jwt.decode(token(auth_manager), options={"verify_signature": False})
    forged = jwt.encode(good, "not-the-secret", algorithm="HS512")
    for bad in (forged, "garbage"):
        response = client.get("/cautionflow/", cookies={"_token": bad}, follow_redirects=False)
        assert response.status_code in (401, 403), bad
        assert "overdue-count" not in response.text


def test_a_user_without_a_role_is_forbidden(client, auth_manager):
    response = client.get("/cautionflow/", headers={"Authorization": f"Bearer {token(auth_manager, role=None)}"})
    assert response.status_code == 403
    assert "overdue-count" not in response.text


# --- content ---------------------------------------------------------------------------------------


def test_the_page_shows_the_registers_figures_to_a_logged_in_user(client, auth_manager, demo):
    from cautionflow.adapters.register import Register
    from cautionflow.services.status import register_status

    _, db = demo
    response = client.get("/cautionflow/", cookies={"_token": token(auth_manager)})
    assert response.status_code == 200, response.text[:500]
    html = response.text

    register = Register(f"sqlite:///{db}")
    try:
        status = register_status(register)
    finally:
        register.dispose()
    assert figure(html, "active-count") == status["active"] > 0
    assert figure(html, "overdue-count") == status["deadlines"]["overdue"] > 0
    assert figure(html, "quarantine-count") == sum(status["quarantine_open"].values()) > 0
    assert figure(html, "flagged-count") == status["active_flagged"] > 0
    [(due_soon,)] = query(
        db, "SELECT COUNT(*) FROM alert_deadlines WHERE overdue = 0 AND review_due BETWEEN ? AND ?",
        AS_OF.isoformat(), (AS_OF + dt.timedelta(days=30)).isoformat(),
    )
    assert figure(html, "due-count") == due_soon
    assert "23 November 2026" in html  # as of the latest run

    for reason in status["quarantine_open"]:
        assert reason in html
    # Active alerts by code and area: the cross-table's totals.
    for code, count in status["active_by_code"].items():
        assert re.search(rf'<th scope="row">{code}</th>.*?<td class="n">{count}</td></tr>', html, re.S), code
    # Digest delivery per recipient: the refused contractor shows its failure and the server's reply.
    assert "Acme Repairs" in html and REFUSING in html and "550 5.1.1 no such mailbox" in html
    # The letters queue by status, with the held letters and why.
    held = query(db, "SELECT hold_reason FROM letters WHERE status = 'held'")
    assert held, "the demo data holds some letters"
    for (reason,) in held:
        assert reason in html
    # The last DAG runs (the sync ran through `airflow dags test`), linked into the Airflow UI.
    [(run_id,)] = query(Path(airflow_demo_db(demo)), "SELECT run_id FROM dag_run WHERE dag_id = 'cautionflow_sync'")
    assert re.search(r'cautionflow_sync</a></td>\s*<td class="state-success">success</td>', html)
    assert f'href="/dags/cautionflow_sync/runs/{quote(run_id, safe="")}" target="_top"' in html
    assert re.search(r'cautionflow_digests</a></td>\s*<td class="none" colspan="4">no run yet', html)
    # The chart: one bar per week, inline SVG, no script.
    assert html.count("<rect ") == 12 and "<script" not in html
    # Links to the filtered lists, pages of the same app.
    assert 'href="http://airflow.test/cautionflow/reviews/overdue"' in html


def test_the_overdue_list_and_its_filters_match_the_register(client, auth_manager, demo):
    _, db = demo
    headers = {"Authorization": f"Bearer {token(auth_manager)}"}
    html = client.get("/cautionflow/reviews/overdue", headers=headers).text
    [(overdue,)] = query(db, "SELECT SUM(overdue) FROM alert_deadlines")
    assert figure(html, "row-count") == overdue

    [(area, in_area)] = query(
        db, "SELECT a.area, COUNT(*) FROM alert_deadlines d JOIN alerts a USING (alert_id) "
        "WHERE d.overdue = 1 AND a.area IS NOT NULL GROUP BY a.area ORDER BY 2 DESC LIMIT 1",
    )
    filtered = client.get("/cautionflow/reviews/overdue", params={"area": area}, headers=headers).text
    assert figure(filtered, "row-count") == in_area < overdue
    assert f"area {area}" in filtered

    due = client.get("/cautionflow/reviews/due", headers=headers).text
    page = client.get("/cautionflow/", headers=headers).text
    assert figure(due, "row-count") == figure(page, "due-count")
    assert client.get("/cautionflow/reviews/everything", headers=headers).status_code == 404


def test_personal_data_is_escaped(client, auth_manager, demo):
    _, db = demo
    [(alert_id,)] = query(db, "SELECT d.alert_id FROM alert_deadlines d JOIN alerts a USING (alert_id) "
                              "WHERE d.overdue = 1 AND a.person_name IS NOT NULL LIMIT 1")
    with sqlite3.connect(db) as conn:
        conn.execute("UPDATE alerts SET person_name = ? WHERE alert_id = ?", ("<script>alert(1)</script>", alert_id))
    html = client.get("/cautionflow/reviews/overdue", headers={"Authorization": f"Bearer {token(auth_manager)}"}).text
    assert "<script>" not in html and "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_an_unreadable_config_is_one_line_not_a_traceback(client, auth_manager, monkeypatch, tmp_path):
    monkeypatch.setenv("CAUTIONFLOW_CONFIG", str(tmp_path / "missing.yaml"))
    response = client.get("/cautionflow/", cookies={"_token": token(auth_manager)})
    assert response.status_code == 503
    assert "cannot read config" in response.text and "Traceback" not in response.text


def config_with_register(demo, folder: Path, register_url: str) -> Path:
    """The demo's config pointing at another register."""
    config_path, _ = demo
    data = yaml.safe_load(config_path.read_text())
    data["register_url"] = register_url
    path = folder / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


PAGES = ("/cautionflow/", "/cautionflow/reviews/overdue")


def test_a_missing_register_is_503_and_is_not_created(client, auth_manager, demo, monkeypatch, tmp_path):
    """Issue 18: the page once created an empty SQLite file for a mistyped register_url (and showed
    an empty register); only the sync creates a register."""
    missing = tmp_path / "var" / "regsiter.db"
    monkeypatch.setenv("CAUTIONFLOW_CONFIG", str(config_with_register(demo, tmp_path, f"sqlite:///{missing}")))
    for page in PAGES:
        response = client.get(page, cookies={"_token": token(auth_manager)})
        assert response.status_code == 503, page
        assert f"register not found: {missing} (run the sync first, or check register_url)" in response.text
        assert "Traceback" not in response.text and "active-count" not in response.text
    assert not missing.exists() and not missing.parent.exists()


def test_a_postgresql_register_that_is_down_or_missing_is_503(client, auth_manager, demo, monkeypatch, tmp_path):
    """Issue 18: PostgreSQL down answered 500; now a plain 503, as does a database the sync never made
    a register (no tables), which is left without tables."""
    from sqlalchemy import create_engine, inspect

    from tests.conftest import require_postgres
    from tests.smtp_server import free_port
    from tests.support import temporary_postgres_database

    down = f"postgresql://cautionflow@127.0.0.1:{free_port()}/register"  # nothing listens there
    monkeypatch.setenv("CAUTIONFLOW_CONFIG", str(config_with_register(demo, tmp_path, down)))
    for page in PAGES:
        response = client.get(page, cookies={"_token": token(auth_manager)})
        assert response.status_code == 503, page
        assert "The register cannot be read: register postgresql://cautionflow@127.0.0.1:" in response.text
        assert "Connection refused" in response.text
        assert "Traceback" not in response.text

    require_postgres()
    with temporary_postgres_database("cf_page") as url:
        monkeypatch.setenv("CAUTIONFLOW_CONFIG", str(config_with_register(demo, tmp_path, url)))
        response = client.get("/cautionflow/", cookies={"_token": token(auth_manager)})
        assert response.status_code == 503
        assert "register not found: " in response.text and "run the sync first" in response.text
        engine = create_engine(url.replace("postgresql://", "postgresql+psycopg://", 1))
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        engine.dispose()


# --- reports ----------------------------------------------------------------------------------------


@pytest.fixture
def reports_folder(demo, monkeypatch, tmp_path):
    """The demo's config with its own output folder (so the shared demo's stays as the deadlines
    step left it) and an equality section: the deadlines step's reports copied in, an older All
    Alerts report beside them, and every governance report written by `write_governance_reports`."""
    import shutil

    from cautionflow.adapters.register import Register
    from cautionflow.config import load_config
    from tests.deployment import write_governance_reports

    config_path, db = demo
    folder = tmp_path / "reports"
    folder.mkdir()
    for report in (config_path.parent / "reports").iterdir():
        shutil.copy(report, folder / report.name)
    (folder / "all-alerts-2026-11-16.csv").write_text("an older report\n", encoding="utf-8")
    data = yaml.safe_load(config_path.read_text())
    data.update(
        register_url=f"sqlite:///{db}", output_dir=str(folder),
        equality={"query": str(REPO / "include/sql/equality_counts.sql")},
    )
    path = tmp_path / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(data))
    config = load_config(path, home=config_path.parent)
    register = Register(config.register_url)
    try:
        paths = write_governance_reports(config, register, AS_OF)
    finally:
        register.dispose()
    monkeypatch.setenv("CAUTIONFLOW_CONFIG", str(path))
    return folder, paths


def report_links(html: str) -> dict[str, str]:
    """The Reports panel's links: file name -> href."""
    panel = html[html.index('id="reports"'):html.index('id="coming-due"')]
    return {name: href for href, name in re.findall(r'<a href="([^"]+)"[^>]*>([^<]+)</a>', panel)}


def test_the_reports_panel_links_the_latest_of_each_report(client, auth_manager, reports_folder):
    folder, paths = reports_folder
    html = client.get("/cautionflow/", cookies={"_token": token(auth_manager)}).text
    links = report_links(html)
    day = AS_OF.isoformat()
    expected = {
        f"all-alerts-{day}.html", f"all-alerts-{day}.csv", f"overdue-reviews-{day}.csv",
        "equality-2026-Q4.html", "equality-2026-Q4.csv",
        *(f"{stem}-{day}.{ext}" for stem in ("survey-exclusions", "non-notification", "stale-alerts")
          for ext in ("csv", "html")),
    }
    assert set(links) == expected  # the older All Alerts report is not linked, only counted
    assert {p.name for p in paths.values()} <= expected and len(paths) == 8
    for name, href in links.items():
        assert href == f"http://airflow.test/cautionflow/reports/{name}"
    assert re.search(r'id="report-all-alerts">.*?23 November 2026 <span class="none">\(1 earlier', html, re.S)
    assert re.search(r'id="report-equality">.*?<td>2026-Q4</td>', html, re.S)
    assert "none yet" not in html


def test_a_report_is_served_as_written(client, auth_manager, reports_folder):
    folder, paths = reports_folder
    cookies = {"_token": token(auth_manager)}
    for key in ("stale_html", "survey_exclusions_csv", "equality_html", "non_notification_csv"):
        path = paths[key]
        response = client.get(f"/cautionflow/reports/{path.name}", cookies=cookies)
        assert response.status_code == 200, (key, response.text[:300])
        assert response.content == path.read_bytes() and response.content
        assert response.headers["cache-control"] == "no-store"
        if path.suffix == ".html":
            assert response.headers["content-type"] == "text/html; charset=utf-8"
            assert response.headers["content-disposition"].startswith("inline")
            assert "default-src 'none'" in response.headers["content-security-policy"]
        else:
            assert response.headers["content-type"] == "text/csv; charset=utf-8"
            assert response.headers["content-disposition"] == f'attachment; filename="{path.name}"'
    older = client.get("/cautionflow/reports/all-alerts-2026-11-16.csv", cookies=cookies)  # not the latest, still served
    assert older.status_code == 200 and older.content == b"an older report\n"


def test_only_known_reports_in_the_output_folder_are_served(client, auth_manager, reports_folder, demo):
    folder, _ = reports_folder
    config_path, _ = demo
    cookies = {"_token": token(auth_manager)}
    # Files in the folder that are not reports, and a report's name whose file is outside the folder.
    (folder / "notes.txt").write_text("not a report", encoding="utf-8")
    (folder / ".stale-alerts-2026-11-23.csv.partial").write_text("half a report", encoding="utf-8")
    (folder / "dsar").mkdir()
    (folder / "dsar" / "all-alerts-2026-11-30.csv").write_text("in a subfolder", encoding="utf-8")
    (folder / "all-alerts-2026-12-01.csv").symlink_to(config_path)
    (folder.parent / "all-alerts-2026-12-02.csv").write_text("beside the folder", encoding="utf-8")
    for path in (
        "notes.txt", ".stale-alerts-2026-11-23.csv.partial", "all-alerts-2026-12-01.csv",  # the symlink
        "all-alerts-2026-11-30.csv", "dsar%2Fall-alerts-2026-11-30.csv", "dsar/all-alerts-2026-11-30.csv",
        "..%2Fall-alerts-2026-12-02.csv", "..%2F..%2Fcautionflow.yaml", "%2E%2E%2Fcautionflow.yaml",
        "all-alerts-2026-02-31.csv", "all-alerts-2026-11-23.pdf", "overdue-reviews-2026-11-23.html",
        "equality-2026-Q5.csv", "cautionflow.yaml", "",
    ):
        response = client.get(f"/cautionflow/reports/{path}", cookies=cookies)
        assert response.status_code == 404, (path, response.status_code)
        assert "not a report" not in response.text and "organisation" not in response.text
    # Nor are they listed; the latest All Alerts report is still 23 November's.
    html = client.get("/cautionflow/", cookies=cookies).text
    links = report_links(html)
    assert f"all-alerts-{AS_OF.isoformat()}.csv" in links
    assert not {"notes.txt", "all-alerts-2026-12-01.csv", "all-alerts-2026-11-30.csv"} & set(links)


def test_an_empty_output_folder_says_how_to_produce_each_report(client, auth_manager, demo, monkeypatch, tmp_path):
    config_path, db = demo
    data = yaml.safe_load(config_path.read_text())
    data.update(register_url=f"sqlite:///{db}", output_dir=str(tmp_path / "never-written"))
    data.pop("equality", None)
    path = tmp_path / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(data))
    monkeypatch.setenv("CAUTIONFLOW_CONFIG", str(path))
    html = client.get("/cautionflow/", headers={"Authorization": f"Bearer {token(auth_manager)}"}).text
    assert report_links(html) == {}
    assert re.search(r'id="report-all-alerts">.*?none yet: .*?cautionflow run deadlines --config FILE', html, re.S)
    assert re.search(
        r'id="report-stale-alerts">.*?none yet: runs weekly in cautionflow_housekeeping; by hand: '
        r"cautionflow governance --config FILE --report stale", html, re.S,
    )
    assert re.search(r'id="report-equality">.*?none yet: not configured', html, re.S)


# --- the real api-server, with this repository's plugin -------------------------------------------


@pytest.mark.airflow
def test_the_letters_waiting_for_an_officer_link_to_their_pdf(client, auth_manager, demo):
    # Issue 14, "preview before approval": the page lists the queue with a link to each letter's PDF,
    # behind the same login; only letters not dispatched yet, only the file the queue records.
    import io

    from pypdf import PdfReader

    _, register = demo
    waiting = query(register, "SELECT id, alert_id, person_name, status FROM letters "
                              "WHERE status IN ('held', 'queued', 'approved') ORDER BY id")
    assert waiting, "the demo deployment queues letters"
    html = client.get("/cautionflow/", cookies={"_token": token(auth_manager)}).text
    letter_id, alert_id, name, status = waiting[0]
    link = f'href="http://airflow.test/cautionflow/letters/{letter_id}.pdf"'
    assert link in html and alert_id in html
    response = client.get(f"/cautionflow/letters/{letter_id}.pdf", cookies={"_token": token(auth_manager)})
    assert response.status_code == 200 and response.headers["content-type"] == "application/pdf"
    assert response.headers["cache-control"] == "no-store"
    text = " ".join(page.extract_text() for page in PdfReader(io.BytesIO(response.content)).pages)
    assert name.split()[0] in text  # the resident's letter, as it will be printed
    assert client.get("/cautionflow/letters/999999.pdf", cookies={"_token": token(auth_manager)}).status_code == 404
    assert client.get(f"/cautionflow/letters/{letter_id}.pdf").status_code == 401  # no login, no letter


def test_the_real_api_server_mounts_the_page_behind_airflows_login(api_server):
    page = f"{api_server.url}/cautionflow/"
    status, headers, body = http_get(page)
    assert status == 401 and "overdue-count" not in body
    status, headers, body = http_get(page, {"Accept": "text/html"})
    assert status == 303 and headers["location"].startswith("/auth/login?next=")
    for path in ("/cautionflow/reviews/overdue", f"/cautionflow/reports/all-alerts-{AS_OF.isoformat()}.csv",
                 "/cautionflow/docs", "/cautionflow/openapi.json"):
        assert http_get(api_server.url + path)[0] in (401, 404), path

    token = api_server.token()
    status, _, body = http_get(page, {"Cookie": f"_token={token}"})
    assert status == 200, body[:2000]
    [(overdue,)] = query(api_server.demo.register, "SELECT SUM(overdue) FROM alert_deadlines")
    assert figure(body, "overdue-count") == overdue
    assert re.search(r'cautionflow_sync</a></td>\s*<td class="state-success">success</td>', body)

    # The navigation entry: an external view of the plugin, framing the page.
    status, _, plugins = http_get(f"{api_server.url}/api/v2/plugins", {"Authorization": f"Bearer {token}"})
    assert status == 200
    [plugin] = [p for p in json.loads(plugins)["plugins"] if p["name"] == "cautionflow_register_page"]
    [view] = plugin["external_views"]
    assert view["name"] == "Caution register" and view["href"] == "cautionflow/" and view["destination"] == "nav"


# --- the figures on both backends ------------------------------------------------------------------


def test_the_figures_read_the_same_on_sqlite_and_postgresql(databases, tmp_path, mail_server):
    from cautionflow.adapters.register import Register
    from cautionflow.services.register_page import register_page, review_list
    from cautionflow.services.status import register_status
    from cautionflow.steps import run_digests
    from tests.deployment import FAST, deployment, prepare

    config = deployment(databases, tmp_path, mail_server.port)
    prepare(databases, config)
    mail_server.handler.refuse["rota@acme.example"] = "550 5.1.1 no such mailbox"
    run_digests(config, as_of=AS_OF, run_id="digests", retry=FAST)
    register = Register(config.register_url)
    try:
        page = register_page(register)
        status = register_status(register)
        as_of, overdue = review_list(register, "overdue")
    finally:
        register.dispose()
    assert page.as_of == as_of == AS_OF
    assert page.active == status["active"] and page.flagged == status["active_flagged"]
    assert page.overdue == len(overdue) == status["deadlines"]["overdue"]
    assert {(d.recipient_email, d.sent, d.failed) for d in page.deliveries if d.kind == "digest"} >= {
        ("rota@acme.example", 0, 1)}
    assert len(page.due_by_week) == 12 and sum(b.count for b in page.due_by_week) >= page.due_soon
