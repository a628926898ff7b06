"""The lookup API's ConnectionRecycler: a keep-alive connection is closed after CONNECTION_REQUESTS
answers, and sooner (after SHED_AFTER) while look-ups queue on the worker, so the api-server's
workers share the connections evenly (the look-ups' p99, bench.lookup)."""

from __future__ import annotations

from starlette.requests import Request

from cautionflow.web.lookup_api import (
    CONNECTION_REQUESTS,
    NO_STORE,
    SHED_AFTER,
    SHED_QUEUED,
    ConnectionRecycler,
)


def request(port: int) -> Request:
    return Request({"type": "http", "method": "GET", "path": "/", "headers": [], "client": ("127.0.0.1", port)})


def answers_until_closed(recycler: ConnectionRecycler, port: int, queued: int) -> int:
    for n in range(1, 10 * CONNECTION_REQUESTS):
        headers = recycler.headers(request(port), queued)
        assert headers["Cache-Control"] == NO_STORE["Cache-Control"]
        if headers.get("Connection") == "close":
            return n
    raise AssertionError("never closed")


def test_an_idle_worker_closes_a_connection_after_its_share_of_answers():
    recycler = ConnectionRecycler()
    assert answers_until_closed(recycler, 1000, queued=0) == CONNECTION_REQUESTS
    assert answers_until_closed(recycler, 1000, queued=SHED_QUEUED - 1) == CONNECTION_REQUESTS  # counted anew


def test_a_worker_with_look_ups_queued_sheds_its_connections_sooner():
    recycler = ConnectionRecycler()
    assert answers_until_closed(recycler, 2000, queued=SHED_QUEUED) == SHED_AFTER
    assert answers_until_closed(recycler, 2000, queued=SHED_QUEUED + 10) == SHED_AFTER
    # A queue that forms later sheds a connection that has had its first answers already.
    for _ in range(SHED_AFTER + 2):
        assert "Connection" not in recycler.headers(request(3000), 0)
    assert recycler.headers(request(3000), SHED_QUEUED)["Connection"] == "close"


def test_an_answer_with_no_client_address_is_never_closed():
    recycler = ConnectionRecycler()
    bare = Request({"type": "http", "method": "GET", "path": "/", "headers": [], "client": None})
    assert all(recycler.headers(bare, SHED_QUEUED) == NO_STORE for _ in range(2 * CONNECTION_REQUESTS))
