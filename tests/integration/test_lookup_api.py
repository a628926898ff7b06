"""The lookup API and the staff look-up pages (issue 16), in-process: the register page's app (with
the API mounted at /api/v1) under a FastAPI TestClient, mounted at /cautionflow as the api-server
mounts it, over a register synced by the real steps on SQLite and on PostgreSQL (`databases`).
Tokens are made by the real step (`steps.lookup.create_token`); Airflow users are authenticated by
Airflow's own SimpleAuthManager initialised in this process over a migrated metadata database, as in
tests/integration/test_register_page.py. Time is a FixedClock. Synthetic data only.

Karbon 6.3 and Hexagon 1.2: staff check for an alert before a visit, so the lookup answers at the
moment of the visit. Karbon 7.1-7.2 and Dover 6.31: a contractor is told what it must do where it
works, no more (its areas, its digest's fields, never the note or a name). Karbon 7.3: out-of-hours
call handlers see all flagged individuals and the required actions, never the note. Accountability
(UK GDPR 5(2)): every read is in the lookup log.
"""

from __future__ import annotations

import datetime as dt
import json

import pytest
from sqlalchemy import create_engine, inspect, text

from cautionflow.adapters.database import normalise_url
from cautionflow.clock import FixedClock
from tests.deployment import SOURCE, deployment, prepare
from tests.support import alert_row

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)  # the morning of AS_OF
API = "/cautionflow/api/v1"
JWT_SECRET = "cautionflow-lookup-test-jwt-secret-" + "z" * 40
SECRETS = ("NOTE-SECRET", "Alex Example", "Sam Sample", "Eve Example", "Olly Ended")

# 23 active alerts at one southern postcode, for the pages; each resident and home its own.
YEW_COURT = [
    alert_row(alert_id=f"Y{i:02d}", area="SOUTH", person_ref=f"P1{i:02d}", person_name=f"Yew Resident {i}",
              tenancy_ref=f"T1{i:02d}", asset_ref=f"H1{i:02d}", address=f"{i} Yew Court, Southwick",
              postcode="EW9 9ZZ", note=f"NOTE-SECRET-Y{i:02d}")
    for i in range(1, 24)
]
ROWS = [*SOURCE, *YEW_COURT]


# --- the deployment and the app ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def auth_manager(tmp_path_factory):
    """Airflow's SimpleAuthManager, as the api-server initialises it (user "ops", a viewer)."""
    from tests.support import simple_auth_manager

    with simple_auth_manager(tmp_path_factory.mktemp("lookup_airflow"), JWT_SECRET) as manager:
        yield manager


def jwt_for(manager, role: str | None = "viewer", username: str = "ops") -> str:
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return manager.generate_jwt(SimpleAuthManagerUser(username=username, role=role))


@pytest.fixture
def config(databases, tmp_path):
    config = deployment(databases, tmp_path, port=9)  # no mail is sent here
    prepare(databases, config, rows=ROWS)
    return config


@pytest.fixture
def clock():
    return FixedClock(NOW)


def make_client(config, clock, *, rate_limit: int | None = 1000):
    """`rate_limit` overrides the config's `lookup.rate_limit_per_minute` (None: the config's)."""
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from cautionflow.web.register_page import create_app

    root = FastAPI()
    root.mount("/cautionflow", create_app(config_loader=lambda: config, dag_runs=list, clock=clock,
                                          token_rate_limit=rate_limit))
    return TestClient(root, base_url="http://airflow.test")


@pytest.fixture
def client(config, clock, auth_manager):  # Airflow's auth manager answers every request without a token
    with make_client(config, clock) as c:
        yield c


def new_token(config, recipient: str, *, expires: dt.date | None = None) -> str:
    from cautionflow.steps import lookup

    token, _ = lookup.create_token(config, recipient, expires=expires, now=NOW)
    assert token.startswith("cf_")
    return token


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def lookups(config) -> list[dict]:
    """The lookup log, oldest first, with each row's returned alert ids."""
    engine = create_engine(normalise_url(config.register_url))
    try:
        with engine.connect() as conn:
            rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM lookups ORDER BY id"))]
            results = conn.execute(text("SELECT lookup_id, alert_id FROM lookup_results")).fetchall()
    finally:
        engine.dispose()
    for row in rows:
        row["alert_ids"] = sorted(a for lookup_id, a in results if lookup_id == row["id"])
    return rows


def ids(response) -> list[str]:
    return sorted(item["alert_id"] for item in response.json()["items"])


# --- authentication ---------------------------------------------------------------------------------


def test_no_credentials_or_a_bad_token_is_401_and_reads_nothing(client, config):
    for headers in ({}, bearer("cf_not-a-token-anyone-was-given"), bearer("garbage"), {"Authorization": "Basic eA=="}):
        for path in (f"{API}/alerts?postcode=EW1%202AB", f"{API}/alerts/N1", f"{API}/openapi.json"):
            response = client.get(path, headers=headers)
            assert response.status_code == 401, (headers, path, response.text)
            assert response.headers["www-authenticate"] == "Bearer"
            assert set(response.json()) == {"detail"} and "N1" not in response.text
    assert lookups(config) == []  # nothing was read


def test_a_revoked_or_expired_token_is_401(client, config, clock):
    from cautionflow.steps import lookup

    revoked, expired = new_token(config, "Acme Repairs"), new_token(config, "Southside Gas", expires=NOW.date())
    assert client.get(f"{API}/alerts/N1", headers=bearer(revoked)).status_code == 200
    assert client.get(f"{API}/alerts/S1", headers=bearer(expired)).status_code == 200  # its last day
    lookup.revoke_token(config, revoked[:8], now=NOW)
    # Revoked in this process (as the worker's own): at once, though the worker had just read it.
    assert client.get(f"{API}/alerts/N1", headers=bearer(revoked)).status_code == 401
    clock.advance(days=1)  # the day after `expires`
    for token, alert in ((revoked, "N1"), (expired, "S1")):
        response = client.get(f"{API}/alerts/{alert}", headers=bearer(token))
        assert response.status_code == 401 and response.headers["www-authenticate"] == "Bearer"
        assert alert not in response.text
    assert len(lookups(config)) == 2  # only the two reads before


def test_a_token_is_403_on_the_staff_pages(client, config):
    token = new_token(config, "Night Desk")
    for path in ("/cautionflow/", "/cautionflow/search?q=EW12AB", "/cautionflow/alerts/N1",
                 "/cautionflow/reviews/overdue"):
        response = client.get(path, headers=bearer(token), follow_redirects=False)
        assert response.status_code == 403, (path, response.status_code)
        assert not any(s in response.text for s in SECRETS) and "N1" not in response.text
    assert lookups(config) == []


def test_every_route_has_its_authentication():
    """The pages depend on the Airflow login; the API, a mounted app that inherits none of the
    pages' dependencies, on its own `reader` (a token or that login) on every route."""
    from fastapi.routing import APIRoute
    from starlette.routing import Mount

    from cautionflow.web import lookup_api
    from cautionflow.web.register_page import create_app, require_airflow_user

    app = create_app(config_loader=lambda: None, dag_runs=list)
    pages = [r for r in app.routes if isinstance(r, APIRoute)]
    assert {"/search", "/alerts/{alert_id}"} <= {r.path for r in pages}
    for route in pages:
        assert require_airflow_user in [d.call for d in route.dependant.dependencies], route.path
    [mount] = [r for r in app.routes if isinstance(r, Mount)]
    assert mount.path == lookup_api.API_PREFIX
    api_routes = [r for r in mount.app.routes if isinstance(r, APIRoute)]
    assert {r.path for r in api_routes} == {"/alerts", "/alerts/{alert_id}", "/openapi.json"}
    for route in api_routes:
        assert lookup_api.reader in [d.call for d in route.dependant.dependencies], route.path
    assert mount.app.openapi_url is None and mount.app.docs_url is None and mount.app.redoc_url is None


def test_the_openapi_document_is_served_to_a_token_and_describes_the_api(client, config):
    response = client.get(f"{API}/openapi.json", headers=bearer(new_token(config, "Acme Repairs")))
    assert response.status_code == 200
    document = response.json()
    assert set(document["paths"]) == {"/alerts", "/alerts/{alert_id}"}
    assert document["servers"] == [{"url": API}]
    assert {"AlertPage", "AlertItem", "Problem"} <= set(document["components"]["schemas"])
    assert {"401", "422", "429"} <= set(document["paths"]["/alerts"]["get"]["responses"])
    assert "404" in document["paths"]["/alerts/{alert_id}"]["get"]["responses"]
    assert client.get("/cautionflow/docs").status_code in (401, 404)


# --- what a token sees ------------------------------------------------------------------------------


def test_no_such_alert_and_not_yours_are_the_same_404(client, config):
    token = new_token(config, "Acme Repairs")  # a contractor in NORTH
    mine = client.get(f"{API}/alerts/N1", headers=bearer(token))
    assert mine.status_code == 200 and mine.json()["alert_id"] == "N1"
    assert mine.headers["cache-control"] == "no-store"
    elsewhere = client.get(f"{API}/alerts/S1", headers=bearer(token))  # exists, in SOUTH
    nowhere = client.get(f"{API}/alerts/NO-SUCH", headers=bearer(token))
    ended = client.get(f"{API}/alerts/X1", headers=bearer(token))  # in NORTH, but ended
    for response in (elsewhere, nowhere, ended):
        assert response.status_code == 404
        assert response.content == nowhere.content and dict(response.headers) == dict(nowhere.headers)
    log = lookups(config)
    assert [(r["outcome"], r["result_count"], r["alert_ids"]) for r in log] == [
        ("ok", 1, ["N1"]), ("not_found", 0, []), ("not_found", 0, []), ("not_found", 0, [])]


def test_a_contractor_token_never_sees_names_notes_or_other_areas(client, config):
    token = new_token(config, "Acme Repairs")  # NORTH
    by_postcode = client.get(f"{API}/alerts", params={"postcode": "ew1 2ab"}, headers=bearer(token))
    assert by_postcode.status_code == 200
    assert ids(by_postcode) == ["N1", "N2"]  # X1 there too, but ended
    by_address = client.get(f"{API}/alerts", params={"q": "1 Larkspur Close"}, headers=bearer(token))
    assert ids(by_address) == ["N1"]
    # Southern alerts, asked for exactly: nothing, and the log says so.
    for params in ({"postcode": "EW3 1CD"}, {"q": "5 Mill Lane"}, {"asset_ref": "H105"}, {"postcode": "EW99ZZ"}):
        response = client.get(f"{API}/alerts", params=params, headers=bearer(token))
        assert response.status_code == 200 and response.json()["total"] == 0 and response.json()["items"] == []
    item = client.get(f"{API}/alerts/N1", headers=bearer(token))
    for response in (by_postcode, by_address, item):
        assert not any(s in response.text for s in SECRETS), response.text
    from cautionflow.domain.digests import columns_for

    allowed = {c.key for c in columns_for("contractor", instructions=True)} | {"alert_id"}
    assert set(item.json()) <= allowed
    assert all(set(i) <= allowed for i in by_postcode.json()["items"])
    log = lookups(config)
    assert [r["result_count"] for r in log] == [2, 1, 0, 0, 0, 0, 1]
    assert {r["reader_kind"] for r in log} == {"token"} and {r["reader"] for r in log} == {"Acme Repairs"}


def test_an_out_of_hours_token_sees_names_never_notes(client, config):
    token = new_token(config, "Night Desk")
    response = client.get(f"{API}/alerts", params={"postcode": "EW31CD"}, headers=bearer(token))
    assert response.status_code == 200 and ids(response) == ["S1"]
    assert "Sam Sample" in response.text and "NOTE-SECRET" not in response.text
    east = client.get(f"{API}/alerts/E1", headers=bearer(token))  # every area: Karbon 7.3
    assert east.status_code == 200 and "Eve Example" in east.text and "NOTE-SECRET" not in east.text


def test_a_query_too_broad_for_a_token_is_422_with_its_reason(client, config):
    token = new_token(config, "Night Desk")
    for params in ({}, {"q": "Larkspur"}, {"q": "1 L"}, {"postcode": "EW1"}, {"q": "%"}, {"q": "Sam Sample"}):
        response = client.get(f"{API}/alerts", params=params, headers=bearer(token))
        assert response.status_code == 422, (params, response.text)
        detail = response.json()["detail"]
        assert isinstance(detail, str) and detail and "\n" not in detail
        assert "items" not in response.json()
    assert client.get(f"{API}/alerts", params={"postcode": "EW1 2AB", "page_size": 51},
                      headers=bearer(token)).status_code == 422  # at most 50 a page
    refused = [r for r in lookups(config) if r["outcome"] == "refused"]
    assert len(refused) == 6 and all(r["result_count"] == 0 for r in refused)


def test_pages_of_a_search_follow_next_until_the_last(client, config):
    token = new_token(config, "Southside Gas")  # SOUTH and EAST
    url, seen, sizes = f"{API}/alerts?postcode=ew99zz&page_size=10", [], []
    while url:
        response = client.get(url, headers=bearer(token))
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["total"] == 23 and body["page_size"] == 10
        sizes.append(len(body["items"]))
        seen += [i["alert_id"] for i in body["items"]]
        url = body["next"]
        if url:
            assert url.startswith("http://airflow.test/cautionflow/api/v1/alerts?") and f"page={body['page'] + 1}" in url
    assert sizes == [10, 10, 3]
    assert sorted(seen) == [f"Y{i:02d}" for i in range(1, 24)]
    assert [r["result_count"] for r in lookups(config)] == [10, 10, 3]
    beyond = client.get(f"{API}/alerts?postcode=EW9 9ZZ&page_size=10&page=4", headers=bearer(token)).json()
    assert beyond["items"] == [] and beyond["next"] is None and beyond["total"] == 23


def test_a_token_beyond_its_rate_limit_is_429_until_the_window_moves(config, clock, auth_manager):
    acme, night = new_token(config, "Acme Repairs"), new_token(config, "Night Desk")
    with make_client(config, clock, rate_limit=3) as client:
        for _ in range(3):
            assert client.get(f"{API}/alerts/N1", headers=bearer(acme)).status_code == 200
            clock.advance(seconds=10)
        refused = client.get(f"{API}/alerts/N1", headers=bearer(acme))  # 30 s after the first
        assert refused.status_code == 429 and refused.headers["retry-after"] == "30"
        assert "N1" not in refused.text
        assert client.get(f"{API}/alerts/N1", headers=bearer(night)).status_code == 200  # its own window
        clock.advance(seconds=29)
        assert client.get(f"{API}/alerts/N1", headers=bearer(acme)).headers["retry-after"] == "1"
        clock.advance(seconds=1)  # the first request has left the window
        assert client.get(f"{API}/alerts/N1", headers=bearer(acme)).status_code == 200
    assert [r["reader"] for r in lookups(config)] == ["Acme Repairs"] * 3 + ["Night Desk", "Acme Repairs"]


def test_the_rate_limit_is_the_configs(databases, config, clock, tmp_path, auth_manager):
    """`lookup.rate_limit_per_minute` in the config file sets each token's limit (the app is built
    before any config is read, so the limit is read with the config, per request)."""
    from tests.deployment import deployment

    strict = deployment(databases, tmp_path, port=9, lookup={"rate_limit_per_minute": 2})  # the same register
    acme = new_token(strict, "Acme Repairs")
    with make_client(strict, clock, rate_limit=None) as client:
        assert [client.get(f"{API}/alerts/N1", headers=bearer(acme)).status_code for _ in range(3)] == [200, 200, 429]
    assert config.lookup.rate_limit_per_minute == 60  # the default, when the file says nothing
    with make_client(config, clock, rate_limit=None) as client:
        assert {client.get(f"{API}/alerts/N1", headers=bearer(acme)).status_code for _ in range(5)} == {200}


def test_a_register_behind_its_migrations_is_503_and_is_never_migrated_by_the_web(databases, config, clock,
                                                                                  auth_manager):
    """The api-server never migrates the production register (only the pipeline does): a register at
    revision 0009 (before the lookup tables) is refused, every read, with one line saying what to do;
    once the pipeline has migrated it, the same process serves it."""
    from importlib import resources

    from alembic import command
    from alembic.config import Config

    from cautionflow.adapters.register import Register
    from cautionflow.steps import lookup

    def revision() -> list[str]:
        engine = create_engine(normalise_url(config.register_url))
        try:
            with engine.connect() as conn:
                return [r[0] for r in conn.execute(text("SELECT version_num FROM cautionflow_schema_version"))]
        finally:
            engine.dispose()

    alembic = Config()
    alembic.set_main_option("script_location", str(resources.files("cautionflow") / "migrations"))
    engine = create_engine(normalise_url(config.register_url))
    try:
        with engine.begin() as conn:
            alembic.attributes["connection"] = conn
            command.downgrade(alembic, "0009")
    finally:
        engine.dispose()
    assert revision() == ["0009"]

    with make_client(config, clock) as client:
        asked = [
            client.get(f"{API}/alerts?postcode=EW12AB", headers=bearer("cf_" + "x" * 43)),
            client.get(f"{API}/alerts/N1", cookies={"_token": jwt_for(auth_manager)}),
        ]
        for response in asked:
            assert response.status_code == 503, response.text
            assert response.json() == {"detail": lookup.NEEDS_MIGRATIONS}
        assert lookup.NEEDS_MIGRATIONS == (
            "the register needs its migrations: run `cautionflow run sync` or the sync DAG once")
        page = client.get("/cautionflow/search?q=EW12AB", cookies={"_token": jwt_for(auth_manager)})
        assert page.status_code == 503 and "the register needs its migrations" in page.text
        assert revision() == ["0009"]  # nothing migrated
        engine = create_engine(normalise_url(config.register_url))
        try:
            with engine.connect() as conn:
                assert not inspect(conn).has_table("lookups")
        finally:
            engine.dispose()

        with Register(config.register_url) as register:  # the pipeline's migration (any step's)
            register.migrate()
        token = new_token(config, "Acme Repairs")
        assert client.get(f"{API}/alerts/N1", headers=bearer(token)).status_code == 200


def test_every_read_leaves_a_lookup_log_row(client, config):
    token = new_token(config, "Night Desk")
    asked = [
        ({"postcode": "ew1 2ab"}, "ok", 2), ({"asset_ref": "H105"}, "ok", 1), ({"q": "9 Quay Street"}, "ok", 1),
        ({"q": "Quay"}, "refused", 0), ({"postcode": "ZZ9 9ZZ"}, "not_found", 0),
    ]
    for params, _, _ in asked:
        client.get(f"{API}/alerts", params=params, headers=bearer(token))
    client.get(f"{API}/alerts/S1", headers=bearer(token))
    log = lookups(config)
    assert [(r["outcome"], r["result_count"]) for r in log] == [(o, n) for _, o, n in asked] + [("ok", 1)]
    first = log[0]
    assert first["reader_kind"] == "token" and first["reader"] == "Night Desk" and first["token_id"] is not None
    assert json.loads(first["query"])["postcode"] in ("ew1 2ab", "EW12AB", "EW1 2AB")
    assert first["alert_ids"] == ["N1", "N2"] and log[1]["alert_ids"] == ["Y05"] and log[-1]["alert_ids"] == ["S1"]
    at = first["at"] if isinstance(first["at"], dt.datetime) else dt.datetime.fromisoformat(str(first["at"]))
    assert at.replace(tzinfo=at.tzinfo or dt.UTC) == NOW  # the injected clock, not the wall's


def test_a_keep_alive_connection_is_closed_after_its_share_of_answers(client, config):
    """The api-server's workers share the listening socket: a client's connection is closed after
    CONNECTION_REQUESTS answers, so a reconnection can go to another worker (the look-ups' p99)."""
    from cautionflow.web.lookup_api import CONNECTION_REQUESTS

    token = new_token(config, "Night Desk")
    answers = [client.get(f"{API}/alerts/S1", headers=bearer(token)) for _ in range(CONNECTION_REQUESTS + 1)]
    assert all(a.status_code == 200 and a.headers["cache-control"] == "no-store" for a in answers)
    closing = [n for n, a in enumerate(answers, 1) if a.headers.get("connection") == "close"]
    assert closing == [CONNECTION_REQUESTS]  # the client's connection, as TestClient's address names it
    assert len(lookups(config)) == CONNECTION_REQUESTS + 1  # each one read and logged all the same


# --- Airflow users: the API, the search page, the alert page ------------------------------------------


def test_a_logged_in_user_reads_the_api_as_staff(client, config, auth_manager):
    jwt = jwt_for(auth_manager)
    by_name = client.get(f"{API}/alerts", params={"q": "Sam"}, headers=bearer(jwt))  # staff may ask by name
    assert by_name.status_code == 200 and ids(by_name) == ["S1"]
    assert "Sam Sample" in by_name.text and "NOTE-SECRET" not in by_name.text
    cookie = client.get(f"{API}/alerts/E1", cookies={"_token": jwt})
    assert cookie.status_code == 200 and "Eve Example" in cookie.text and "NOTE-SECRET" not in cookie.text
    assert client.get(f"{API}/openapi.json", headers=bearer(jwt)).status_code == 200
    no_role = client.get(f"{API}/alerts/E1", headers=bearer(jwt_for(auth_manager, role=None)))
    assert no_role.status_code == 403 and "Eve" not in no_role.text
    expired_or_forged = client.get(f"{API}/alerts/E1", headers=bearer(jwt[:-4] + "AAAA"))
    assert expired_or_forged.status_code == 401 and expired_or_forged.headers["www-authenticate"] == "Bearer"
    log = lookups(config)
    assert [(r["reader_kind"], r["reader"], r["token_id"]) for r in log] == [("user", "ops", None)] * 2


def test_the_search_box_finds_a_postcode_typed_any_way_and_links_the_alert_page(client, config, auth_manager):
    cookies = {"_token": jwt_for(auth_manager)}
    page = client.get("/cautionflow/", cookies=cookies)
    assert page.status_code == 200 and 'id="search-box"' in page.text
    assert 'action="http://airflow.test/cautionflow/search"' in page.text
    for box in ("ew31cd", " EW3 1CD ", "Ew3 1cD", "5 mill lane", "sam sample", "P0002"):
        response = client.get("/cautionflow/search", params={"q": box}, cookies=cookies)
        assert response.status_code == 200, (box, response.text[:300])
        assert 'href="http://airflow.test/cautionflow/alerts/S1"' in response.text, box
        assert "NOTE-SECRET" not in response.text
    found = client.get("/cautionflow/search", params={"q": "ew31cd"}, cookies=cookies).text
    assert "Sam Sample" in found and 'id="result-count">1<' in found
    nothing = client.get("/cautionflow/search", params={"q": "ZZ9 9ZZ"}, cookies=cookies).text
    assert 'id="no-results"' in nothing
    escaped = client.get("/cautionflow/search", params={"q": "<script>x</script>"}, cookies=cookies).text
    assert "<script>x" not in escaped


def test_the_alert_page_shows_its_history_and_who_read_it(client, config, auth_manager):
    cookies = {"_token": jwt_for(auth_manager)}
    token = new_token(config, "Night Desk")
    assert client.get(f"{API}/alerts", params={"postcode": "EW3 1CD"}, headers=bearer(token)).status_code == 200
    response = client.get("/cautionflow/alerts/S1", cookies=cookies)
    assert response.status_code == 200, response.text[:500]
    html = response.text
    assert 'id="alert-id">S1<' in html and "Sam Sample" in html and "NOTE-SECRET" not in html
    assert 'id="deadlines-table"' in html  # prepare() computed them
    for section in ("history", "letters", "disclosures", "reads"):
        assert f'id="{section}"' in html
    reads = html[html.index('id="reads"'):]
    assert "Night Desk" in reads  # the token's read of it
    # A page for an alert not in the register: 404, as the API's.
    missing = client.get("/cautionflow/alerts/NO-SUCH", cookies=cookies)
    assert missing.status_code == 404 and "No such alert" in missing.text and "Sam" not in missing.text
    # Each page view is a read too, by the user.
    log = lookups(config)
    assert [(r["reader_kind"], r["reader"]) for r in log] == [("token", "Night Desk"), ("user", "ops"), ("user", "ops")]
    assert log[1]["alert_ids"] == ["S1"] and log[2]["outcome"] == "not_found"


def test_the_register_page_shows_reads_per_reader_per_day(client, config, auth_manager, clock):
    acme, night = new_token(config, "Acme Repairs"), new_token(config, "Night Desk")
    for _ in range(3):
        client.get(f"{API}/alerts", params={"postcode": "EW1 2AB"}, headers=bearer(acme))
    client.get(f"{API}/alerts/S1", headers=bearer(night))
    clock.advance(days=1)
    client.get(f"{API}/alerts/N1", headers=bearer(acme))
    html = client.get("/cautionflow/", cookies={"_token": jwt_for(auth_manager)}).text
    table = html[html.index('id="reads"'):]
    rows = [" ".join(r.split()) for r in table.split("<tr>")[2:]]
    assert any("23 November 2026" in r and "Acme Repairs" in r and ">3<" in r and ">6<" in r for r in rows), rows
    assert any("23 November 2026" in r and "Night Desk" in r and ">1<" in r for r in rows), rows
    assert any("24 November 2026" in r and "Acme Repairs" in r and ">1<" in r for r in rows), rows


def test_nothing_under_the_prefix_answers_without_a_login_or_a_token(client):
    for path in ("/cautionflow/search?q=EW12AB", "/cautionflow/alerts/N1"):
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 401 and response.json() == {"detail": "Not authenticated"}

