"""The lookup API against its own OpenAPI document (issue 16): schemathesis (from PyPI) loads the
document through the ASGI app with a valid token, as a contractor's job system would, then sends
requests generated from it, well formed and malformed, to the app over a real register (SQLite and
PostgreSQL, `databases`). No request may get a 500, and every response must match what the document
says of it (status code, content type, headers, body schema). Synthetic data only.

One of schemathesis's default checks is left out, for a reason: `positive_data_acceptance` expects
every schema-valid query to succeed, but the lookup rules refuse, by design and with a documented
422, queries a schema cannot describe (a token's `q` must name a house number and street; no
search may return the whole register to a token: Karbon 7.1-7.2, Dover 6.31).
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings

from cautionflow.clock import FixedClock
from tests.deployment import SOURCE, deployment, prepare

NOW = dt.datetime(2026, 11, 23, 9, 30, tzinfo=dt.UTC)
API = "/cautionflow/api/v1"
EXAMPLES = 100  # per operation and mode: about 20 s a backend on this machine


@pytest.fixture(scope="module")
def auth_manager(tmp_path_factory):
    """Airflow's SimpleAuthManager, as in the api-server: the requests schemathesis sends without a
    token, or with another kind of credential, are Airflow's to judge."""
    from tests.support import simple_auth_manager

    with simple_auth_manager(tmp_path_factory.mktemp("schemathesis_airflow"), "cautionflow-st-" + "j" * 40) as manager:
        yield manager


@pytest.fixture
def lookup_app(databases, tmp_path, auth_manager):
    """The register page's app mounted as the api-server mounts it, over a synced register, and a
    contractor's token for it."""
    from fastapi import FastAPI

    from cautionflow.steps import lookup
    from cautionflow.web.register_page import create_app

    config = deployment(databases, tmp_path, port=9)
    prepare(databases, config, rows=SOURCE)
    token, _ = lookup.create_token(config, "Acme Repairs", expires=None, now=NOW)
    root = FastAPI()
    # No rate limit to speak of: the generated requests come far faster than a job system's.
    root.mount("/cautionflow", create_app(config_loader=lambda: config, dag_runs=list, clock=FixedClock(NOW),
                                          token_rate_limit=1_000_000))
    return root, token


def test_no_generated_request_gets_a_500_or_breaks_the_document(lookup_app):
    import schemathesis
    from schemathesis.generation import GenerationMode
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    app, token = lookup_app
    headers = {"Authorization": f"Bearer {token}"}
    schema = schemathesis.openapi.from_asgi(f"{API}/openapi.json", app, headers=headers)
    # The token is every request's (`headers`): a generated Authorization header, malformed in the
    # negative mode, would be replaced by it, and schemathesis would then call the request malformed
    # while only its other, now well-formed, part reached the app ("schema-violating request accepted").
    schema.config.generation.update(with_security_parameters=False)
    operations = [result.ok() for result in schema.get_all_operations()]
    assert sorted(op.label for op in operations) == ["GET /alerts", "GET /alerts/{alert_id}"]
    calls: dict[int, int] = {}
    for operation in operations:
        # The document's own examples (a postcode, an asset, an address, an alert id), then generated
        # requests: well formed, and malformed.
        strategies = [*operation.get_strategies_from_examples(),
                      *(operation.as_strategy(generation_mode=mode)
                        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE))]
        for strategy in strategies:

            @given(case=strategy)
            @settings(max_examples=EXAMPLES, deadline=None, database=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
            def check(case):
                response = case.call_and_validate(headers=headers, excluded_checks=[positive_data_acceptance])
                calls[response.status_code] = calls.get(response.status_code, 0) + 1

            check()
    assert 500 not in calls
    assert calls.get(200, 0) > 0 and calls.get(422, 0) > 0, calls  # it reached both the reads and the refusals
