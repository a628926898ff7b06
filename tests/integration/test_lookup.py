"""Look-ups through the real steps and register, on SQLite and PostgreSQL: tokens (created, listed and
revoked by the real command line), what each reader is shown, the log of every read, the subject
access export's "Looked up", retention, and a read that cannot be logged is not served.

Karbon 6.3 and Hexagon 1.2: staff check for an alert before a visit; Dover 6.30: the register is for
those whose duties require it. Karbon 7.1-7.2, Dover 6.31: a contractor is told the action required
for its own areas only; Karbon 7.3: call handlers are told of every flagged individual. UK GDPR
accountability (Article 5(2)): every read is recorded and shown to the person it is about.
Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import create_engine, select, text

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import POOL_RECYCLE_SECONDS, normalise_url
from cautionflow.adapters.register import RegisterError
from cautionflow.cli import main
from cautionflow.profiles import PROFILE_DIR
from cautionflow.services.lookup import TOKEN_CACHE_SECONDS
from cautionflow.steps import lookup as steps
from cautionflow.steps import run_retention
from tests.deployment import SCRIPT_ADDRESS, SOURCE, deployment, prepare, write_config
from tests.support import AS_OF, alert_row, cautionflow

MOMENT = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)  # AS_OF, 09:00 in London
STAFF = steps.staff_reader("ops.officer")


def table(config, name: str, **where) -> list[dict]:
    engine = create_engine(normalise_url(config.register_url))
    t = schema.metadata.tables[name]
    try:
        with engine.connect() as conn:
            return [dict(r._mapping) for r in conn.execute(select(t).where(*(t.c[k] == v for k, v in where.items()))
                                                            .order_by(*t.primary_key.columns or t.c))]
    finally:
        engine.dispose()


@pytest.fixture
def config(databases, tmp_path):
    config = deployment(databases, tmp_path, 25)  # no mail is sent here: any port
    prepare(databases, config)
    return config


def token_for(config, recipient: str, *, expires: dt.date | None = None) -> tuple[str, steps.Reader]:
    token, _ = steps.create_token(config, recipient, expires=expires, now=MOMENT)
    reader = steps.authenticate_token(config, token, now=MOMENT)
    assert reader is not None and reader.name == recipient
    return token, reader


def test_tokens_are_created_listed_and_revoked_by_the_command_line(config, tmp_path):
    path = write_config(config, tmp_path)
    created = cautionflow("tokens", "create", "--config", path, "--recipient", "Night Desk", "--expires", "2999-12-31",
                          cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    lines = created.stdout.splitlines()
    token, summary = lines[0], json.loads(lines[-1])
    assert token.startswith("cf_") and len(token) > 40
    assert "cannot be shown again" in created.stdout
    assert token not in lines[-1] and summary["prefix"] == token[:8] and summary["role"] == "out_of_hours"
    assert steps.authenticate_token(config, token, now=MOMENT).role == "out_of_hours"

    # Only the hash is stored: the token is nowhere in the register.
    stored = table(config, "api_tokens")
    assert len(stored) == 1 and token not in repr(stored) and stored[0]["prefix"] == token[:8]

    listed = cautionflow("tokens", "list", "--config", path, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert token not in listed.stdout and token[:8] in listed.stdout and "Night Desk" in listed.stdout
    assert [t["prefix"] for t in json.loads(listed.stdout.splitlines()[-1])["tokens"]] == [token[:8]]

    revoked = cautionflow("tokens", "revoke", "--config", path, token[:8], cwd=tmp_path)
    assert revoked.returncode == 0, revoked.stderr
    assert json.loads(revoked.stdout.splitlines()[-1])["revoked_at"]
    # Revoked by another process: this one (an api-server worker) read the token at MOMENT and keeps
    # its row TOKEN_CACHE_SECONDS by the clock it is given, the documented bound; no longer.
    bound = dt.timedelta(seconds=TOKEN_CACHE_SECONDS)
    assert steps.authenticate_token(config, token, now=MOMENT + bound - dt.timedelta(seconds=1)) is not None
    assert steps.authenticate_token(config, token, now=MOMENT + bound) is None

    officer = cautionflow("tokens", "create", "--config", path, "--recipient", "Housing Officers", cwd=tmp_path)
    assert officer.returncode == 2 and "contractor and out_of_hours" in officer.stderr
    unknown = cautionflow("tokens", "revoke", "--config", path, "cf_nope", cwd=tmp_path)
    assert unknown.returncode == 2 and "no token" in unknown.stderr


def test_revoked_expired_unknown_and_orphaned_tokens_authenticate_to_nothing(config, databases, tmp_path):
    token, _ = token_for(config, "Acme Repairs", expires=dt.date(2026, 11, 30))
    late_on_the_last_day = dt.datetime(2026, 11, 30, 23, 30, tzinfo=dt.UTC)  # 23:30 GMT: still 30 November
    assert steps.authenticate_token(config, token, now=late_on_the_last_day) is not None
    assert steps.authenticate_token(config, token, now=dt.datetime(2026, 12, 1, 0, 1, tzinfo=dt.UTC)) is None

    assert steps.authenticate_token(config, token[:-1] + ("A" if token[-1] != "A" else "B"), now=MOMENT) is None
    assert steps.authenticate_token(config, "", now=MOMENT) is None

    # The recipient left the config: its token reads as nobody.
    without_acme = deployment(databases, tmp_path, 25, recipients=[
        {"name": "Night Desk", "email": "ooh@callcentre.example", "role": "out_of_hours"}])
    assert steps.authenticate_token(without_acme, token, now=MOMENT) is None

    assert steps.authenticate_token_cached(config, token, now=MOMENT)[1] is not None  # cached, as the API has it
    steps.revoke_token(config, token[:8], now=MOMENT)  # in this process: its cached row is dropped at once
    assert steps.authenticate_token_cached(config, token, now=MOMENT) == (False, None)  # so the register decides
    assert steps.authenticate_token(config, token, now=MOMENT) is None
    assert steps.authenticate_token_cached(config, token, now=MOMENT) == (True, None)  # and its revoked row is kept


def test_last_use_is_recorded_at_most_once_a_minute(config):
    token, _ = token_for(config, "Acme Repairs")
    assert table(config, "api_tokens")[0]["last_used_at"] is not None
    first = steps.list_tokens(config)[0]["last_used_at"]
    steps.authenticate_token(config, token, now=MOMENT + dt.timedelta(seconds=30))
    assert steps.list_tokens(config)[0]["last_used_at"] == first
    steps.authenticate_token(config, token, now=MOMENT + dt.timedelta(seconds=61))
    assert steps.list_tokens(config)[0]["last_used_at"] == (MOMENT + dt.timedelta(seconds=61)).isoformat()


def test_an_out_of_area_token_asking_by_exact_address_gets_nothing_and_the_log_says_so(config):
    """Karbon 7.2, Dover 6.31: a contractor is told of its own areas only; no existence oracle."""
    _, southside = token_for(config, "Southside Gas")  # SOUTH and EAST; N1 is in NORTH
    found = steps.search_alerts(config, southside, q="1 Larkspur Close, Eastwick", now=MOMENT)
    assert found["items"] == [] and found["total"] == 0
    assert steps.get_alert(config, southside, "N1", now=MOMENT) is None
    assert steps.get_alert(config, southside, "NO-SUCH-ALERT", now=MOMENT) is None

    log = table(config, "lookups")
    assert [(r["reader_kind"], r["reader"], r["outcome"], r["result_count"]) for r in log] == [
        ("token", "Southside Gas", "not_found", 0)] * 3
    assert json.loads(log[0]["query"])["q"] == "1 Larkspur Close, Eastwick"
    assert {r["token_id"] for r in log} == {southside.token_id}
    assert [json.loads(r["query"]) for r in log[1:]] == [{"alert_id": "N1"}, {"alert_id": "NO-SUCH-ALERT"}]
    assert table(config, "lookup_results") == []

    # The same address for its own contractor: found, with the action, never the name or the note.
    _, acme = token_for(config, "Acme Repairs")
    found = steps.search_alerts(config, acme, q="1 larkspur close", now=MOMENT)
    assert [i["alert_id"] for i in found["items"]] == ["N1"]
    assert "Alex Example" not in repr(found) and "NOTE-SECRET" not in repr(found)
    assert found["items"][0]["required_action"].startswith("Visit in pairs")


def test_a_postcode_in_lower_case_without_a_space_finds_the_alerts_in_scope(config):
    _, acme = token_for(config, "Acme Repairs")
    found = steps.search_alerts(config, acme, postcode="ew12ab", now=MOMENT)
    # N1 and N2 are active in NORTH at EW1 2AB; X1 there has ended; E1 is in EAST.
    assert sorted(i["alert_id"] for i in found["items"]) == ["N1", "N2"]
    assert [c["key"] for c in found["columns"]][:2] == ["address", "postcode"]
    _, night = token_for(config, "Night Desk")
    found = steps.search_alerts(config, night, postcode="EW1 2AB", now=MOMENT)
    assert sorted(i["alert_id"] for i in found["items"]) == ["N1", "N2"]  # active only, every area
    assert found["items"][0]["person_name"] == "Alex Example" and "NOTE-SECRET" not in repr(found)
    assert steps.search_alerts(config, night, asset_ref="H0001", page_size=2, page=2, now=MOMENT)["page"] == 2


def test_a_token_is_refused_a_broad_search_and_the_refusal_is_logged(config):
    _, night = token_for(config, "Night Desk")
    with pytest.raises(steps.QueryRefused, match="house number"):
        steps.search_alerts(config, night, q="Example", now=MOMENT)
    with pytest.raises(steps.QueryRefused, match="full UK postcode"):
        steps.search_alerts(config, night, postcode="EW1", now=MOMENT)
    assert [(r["outcome"], r["result_count"]) for r in table(config, "lookups")] == [("refused", 0)] * 2


def test_staff_search_by_name_and_see_the_registers_view_without_the_note(config):
    found = steps.search_alerts(config, STAFF, q="sam", now=MOMENT)
    assert [i["alert_id"] for i in found["items"]] == ["S1"]
    item = found["items"][0]
    assert item["person_name"] == "Sam Sample" and item["alert_code"] == "NFO" and "note" not in item
    flagged = steps.search_alerts(config, STAFF, q="P0003", now=MOMENT)["items"][0]
    assert flagged["alert_id"] == "E1" and flagged["dq_flags"]  # the data-quality problems, for staff
    ended = steps.search_alerts(config, STAFF, postcode="EW1", now=MOMENT)["items"]
    assert [i["register_state"] for i in ended] == ["active", "active", "ended"]  # active first
    assert "NOTE-SECRET" not in repr(ended)


def test_the_alert_page_shows_history_letters_disclosures_and_reads_never_the_note(config, databases):
    _, acme = token_for(config, "Acme Repairs")
    steps.search_alerts(config, acme, postcode="EW1 2AB", now=MOMENT)
    changed = [dict(r, note="NOTE-SECRET-N1 changed") if r["alert_id"] == "N1" else r for r in SOURCE]
    prepare(databases, config, rows=changed, as_of=AS_OF + dt.timedelta(days=1))

    record = steps.alert_record(config, "N1", reader=STAFF, now=MOMENT + dt.timedelta(days=1))
    assert record["alert"]["person_name"] == "Alex Example" and "note" not in record["alert"]
    assert record["deadlines"]["review_due"]
    assert [h["change"] for h in record["history"]] == ["inserted", "updated"]
    assert record["history"][1]["changed_fields"]["note"] == ["(not shown)", "(not shown)"]
    assert "NOTE-SECRET" not in json.dumps(record)
    assert [(r["reader_kind"], r["reader"], r["query"]) for r in record["reads"]] == [
        ("token", "Acme Repairs", {"page": 1, "page_size": 20, "postcode": "EW1 2AB"})]
    assert steps.alert_record(config, "NO-SUCH", reader=STAFF, now=MOMENT) is None
    with pytest.raises(steps.QueryRefused):
        steps.alert_record(config, "N1", reader=acme, now=MOMENT)
    assert [r["outcome"] for r in table(config, "lookups", reader="ops.officer")] == ["ok", "not_found"]


def test_reads_are_counted_per_reader_per_day_in_the_landlords_time_zone(config):
    _, acme = token_for(config, "Acme Repairs")
    steps.search_alerts(config, acme, postcode="EW1 2AB", now=MOMENT)  # 2 alerts
    steps.get_alert(config, acme, "N1", now=MOMENT)
    # 23:30 UTC on 23 November is 23:30 GMT; in June it would be the next day in London (BST).
    steps.search_alerts(config, STAFF, q="sam", now=dt.datetime(2026, 11, 23, 23, 30, tzinfo=dt.UTC))
    steps.search_alerts(config, STAFF, q="sam", now=dt.datetime(2026, 11, 24, 0, 30, tzinfo=dt.UTC))
    assert steps.reads_by_recipient_day(config, since=AS_OF) == [
        {"day": "2026-11-24", "reader_kind": "user", "reader": "ops.officer", "lookups": 1, "alerts_returned": 1},
        {"day": "2026-11-23", "reader_kind": "token", "reader": "Acme Repairs", "lookups": 2, "alerts_returned": 3},
        {"day": "2026-11-23", "reader_kind": "user", "reader": "ops.officer", "lookups": 1, "alerts_returned": 1},
    ]
    assert steps.reads_by_recipient_day(config, since=AS_OF + dt.timedelta(days=1))[0]["day"] == "2026-11-24"


def test_a_token_read_appears_in_that_persons_subject_access_export(config, tmp_path, capsys):
    """Accountability: the resident sees who looked their alert up, never other residents' data."""
    _, acme = token_for(config, "Acme Repairs")
    steps.search_alerts(config, acme, postcode="ew1 2ab", now=MOMENT)  # returns N1 (P0001) and N2 (an address)
    steps.search_alerts(config, STAFF, q="Larkspur", now=MOMENT + dt.timedelta(hours=1))
    out = tmp_path / "dsar.json"
    code = main(["dsar", "--config", write_config(config, tmp_path), "--person-ref", "P0001",
                 "--as-of", AS_OF.isoformat(), "--output", str(out)])
    assert code == 0, capsys.readouterr().err
    export = json.loads(out.read_text())
    assert export["counts"]["lookups"] == 2
    n1 = next(a for a in export["alerts"] if a["alert_id"] == "N1")
    assert n1["looked_up"] == [
        {"at": "2026-11-23T09:00:00+00:00", "reader_kind": "token", "reader": "Acme Repairs", "asked_by": ["postcode"]},
        {"at": "2026-11-23T10:00:00+00:00", "reader_kind": "user", "reader": "ops.officer",
         "asked_by": ["address, name or reference search"]},
    ]
    text = out.read_text()
    assert '"N2"' not in text and SCRIPT_ADDRESS not in text and "<script>" not in text  # N2: another alert the read returned
    html = tmp_path / "dsar.html"
    assert main(["dsar", "--config", write_config(config, tmp_path), "--person-ref", "P0001", "--format", "html",
                 "--as-of", AS_OF.isoformat(), "--output", str(html)]) == 0
    assert "Acme Repairs&#39;s system" in html.read_text() or "Acme Repairs's system" in html.read_text()


def test_retention_clears_the_query_text_of_lookups_that_returned_an_anonymised_alert(databases, tmp_path):
    profile = yaml.safe_load((PROFILE_DIR / "dover.yaml").read_text())
    profile["retention_months_after_end"] = 1
    (tmp_path / "dover-retention.yaml").write_text(yaml.safe_dump(profile))
    config = deployment(databases, tmp_path, 25, policy=str(tmp_path / "dover-retention.yaml"))
    ended = alert_row(alert_id="X9", status="ended", effective_from="2025-09-01", ends_on="2026-01-31",
                      person_ref="P0009", person_name="Olly Ended", address="7 Ended Row", postcode="EW7 7ZZ",
                      asset_ref="H0007", note="NOTE-X9")
    prepare(databases, config, rows=[*SOURCE, ended])
    steps.search_alerts(config, STAFF, q="7 Ended Row", now=MOMENT)
    steps.search_alerts(config, STAFF, postcode="EW7 7ZZ", now=MOMENT)
    _, acme = token_for(config, "Acme Repairs")
    steps.search_alerts(config, acme, postcode="EW1 2AB", now=MOMENT)  # a live alert's read: kept as asked

    summary = run_retention(config, as_of=AS_OF, run_id="retention-test")
    assert [(a["alert_id"], a["lookups"]) for a in summary["alerts"]] == [("X9", 2)]
    queries = [json.loads(r["query"]) for r in table(config, "lookups")]
    assert queries == [
        {"page": 1, "page_size": 20, "q": "[anonymised]"},
        {"page": 1, "page_size": 20, "postcode": "[anonymised]"},
        {"page": 1, "page_size": 20, "postcode": "EW1 2AB"},
    ]
    assert "7 Ended Row" not in repr(table(config, "lookups"))
    # Who read which alert id, when, stays.
    assert [r["alert_id"] for r in table(config, "lookup_results", alert_id="X9")] == ["X9", "X9"]
    logged = json.loads(table(config, "anonymisation_log")[0]["fields_cleared"])
    assert logged["lookups"] == 2
    assert run_retention(config, as_of=AS_OF, run_id="retention-again")["anonymised"] == 0


def test_a_read_that_cannot_be_logged_is_not_served(config):
    """A read that is not logged is not served: the search and its log are one transaction."""
    engine = create_engine(normalise_url(config.register_url))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE lookup_results"))
    engine.dispose()
    with pytest.raises(RegisterError):
        steps.search_alerts(config, STAFF, q="sam", now=MOMENT)
    _, acme = token_for(config, "Acme Repairs")
    with pytest.raises(RegisterError):
        steps.get_alert(config, acme, "N1", now=MOMENT)
    assert table(config, "lookups") == []  # the lookups rows written before the failure were rolled back


def register_backends(config) -> set[int]:
    """The register database's server processes, but the one asking."""
    engine = create_engine(normalise_url(config.register_url))
    try:
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(text(
                "SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"))}
    finally:
        engine.dispose()


def test_the_look_ups_keep_their_postgresql_connections_between_reads(config, databases):
    """The api-server serves many short reads: the look-ups keep one pooled engine per process and
    register, so reads after the first open no PostgreSQL connection (opening them once cost more
    than the look-up). SQLite stays unpooled (opening its file is cheap)."""
    from sqlalchemy.pool import NullPool, QueuePool

    from cautionflow.adapters.database import create_database_engine

    pooled = create_database_engine(config.register_url, pooled=True, create=False)
    plain = create_database_engine(config.register_url, create=False)
    try:
        if databases.backend == "sqlite":
            assert isinstance(pooled.pool, NullPool) and isinstance(plain.pool, NullPool)
            return
        assert isinstance(pooled.pool, QueuePool) and pooled.pool.size() == 5 and pooled.pool._max_overflow == 10
        assert isinstance(plain.pool, NullPool)  # the pipeline's steps: unpooled
        # No ping before each use (a round trip a look-up): a closed connection is refused at checkout.
        assert not pooled.pool._pre_ping and pooled.pool._recycle == POOL_RECYCLE_SECONDS
    finally:
        pooled.dispose()
        plain.dispose()

    def backends() -> set[int]:
        return register_backends(config)

    token, acme = token_for(config, "Acme Repairs")
    steps.search_alerts(config, acme, postcode="ew12ab", now=MOMENT)
    kept = backends()
    assert kept  # still open after the reads: pooled
    for _ in range(10):
        reader = steps.authenticate_token(config, token, now=MOMENT)
        assert steps.search_alerts(config, reader, postcode="EW1 2AB", now=MOMENT)["total"] >= 1
        steps.get_alert(config, reader, "N1", now=MOMENT)
    assert backends() == kept  # the same connections served them all


def test_a_postcode_lookup_uses_the_postcode_index(config):
    """At 100,000 alerts a look-up by postcode must not scan the register."""
    from cautionflow.domain.lookup import LookupQuery

    engine = create_engine(normalise_url(config.register_url))
    statement = select(schema.alerts.c.alert_id).where(schema.POSTCODE_KEY == LookupQuery(postcode_key="EW12AB").postcode_key)
    sql = str(statement.compile(engine, compile_kwargs={"literal_binds": True}))
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SET LOCAL enable_seqscan = off"))  # a five-row table would be scanned anyway
            plan = " ".join(r[0] for r in conn.execute(text("EXPLAIN " + sql)))
        else:
            plan = " ".join(str(r[-1]) for r in conn.execute(text("EXPLAIN QUERY PLAN " + sql)))
    engine.dispose()
    assert "ix_alerts_postcode_key" in plan, plan


# --- the property, through the real service -------------------------------------------------------

AREAS = ("NORTH", "SOUTH", "EAST", "")


@st.composite
def registers(draw):
    rows = []
    for n in range(draw(st.integers(0, 12))):
        number = draw(st.integers(1, 9))
        rows.append(alert_row(
            alert_id=f"R{n}", area=draw(st.sampled_from(AREAS)) or None,
            person_name=f"NAMEMARK{draw(st.text(alphabet='abc', max_size=4))}",
            note=f"NOTEMARK{draw(st.text(alphabet='xyz', max_size=4))}",
            address=f"{number} Yew Court, Eastwick", postcode=draw(st.sampled_from(("EW1 2AB", "ew1 2ab", "EW3 1CD"))),
            asset_ref=f"H{number}", status=draw(st.sampled_from(("active", "active", "ended"))),
        ))
    return rows


@settings(max_examples=12, deadline=None)
@given(register=registers(), areas=st.sets(st.sampled_from(AREAS[:3]), min_size=1),
       asked=st.sampled_from([{"postcode": "EW1 2AB"}, {"postcode": "ew12ab"}, {"q": "1 Yew Court"},
                              {"q": "3 yew court, eastwick"}, {"asset_ref": "H2"}, {"postcode": "EW3 1CD"}]))
def test_property_tokens_never_get_a_note_nor_contractors_a_name_or_another_area(register, areas, asked):
    """The unit property (tests/unit/test_lookup_property.py) again, through the real steps, service and
    SQL on SQLite: fewer examples, each a fresh register holding random alerts."""
    import tempfile
    from types import SimpleNamespace

    from cautionflow.adapters.register import Register

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{Path(folder) / 'register.db'}"
        with Register(url) as created:
            created.migrate(create=True)
            if register:
                with created.engine.begin() as conn:
                    conn.execute(schema.alerts.insert(), [
                        {**{k: v for k, v in r.items() if k in schema.alerts.c and k not in ("effective_from", "updated_at")},
                         "row_hash": n, "register_state": r["status"], "first_seen_run": "t", "first_seen_on": AS_OF,
                         "last_changed_run": "t", "last_changed_on": AS_OF}
                        for n, r in enumerate(register)
                    ])
        recipients = [
            {"name": "Contractor", "email": "c@contractor.example", "role": "contractor", "areas": sorted(areas)},
            {"name": "Night Desk", "email": "ooh@callcentre.example", "role": "out_of_hours"},
        ]
        config = deployment(SimpleNamespace(register_url=url, source_url=url), Path(folder), 25, recipients=recipients)
        by_id = {r["alert_id"]: r for r in register}
        for name in ("Contractor", "Night Desk"):
            token, _ = steps.create_token(config, name, expires=None, now=MOMENT)
            reader = steps.authenticate_token(config, token, now=MOMENT)
            found = steps.search_alerts(config, reader, now=MOMENT, **asked)
            shown = json.dumps(found)
            assert "NOTEMARK" not in shown
            for item in found["items"]:
                alert = by_id[item["alert_id"]]
                assert alert["status"] == "active"
                if reader.role == "contractor":
                    assert "NAMEMARK" not in shown and alert["area"] in areas


def test_a_look_up_succeeds_after_postgresql_terminates_its_pooled_connection(config, databases):
    """The pooled engine pings no connection before use (a round trip on every look-up): one the server
    has closed (a restart, an administrator, an idle timeout) is refused at checkout, so the next
    look-up opens a new connection and is served and logged, not a 503."""
    if databases.backend == "sqlite":
        pytest.skip("SQLite's engine is not pooled")
    _, acme = token_for(config, "Acme Repairs")
    assert steps.search_alerts(config, acme, postcode="EW1 2AB", now=MOMENT)["total"] >= 1
    pooled = register_backends(config)
    assert pooled  # kept open between look-ups
    engine = create_engine(normalise_url(config.register_url))
    try:
        with engine.connect() as conn:
            for pid in pooled:  # and wait (5 s at most) until each has gone
                assert conn.execute(text("SELECT pg_terminate_backend(:pid, 5000)"), {"pid": pid}).scalar_one()
    finally:
        engine.dispose()

    for _ in range(3):
        assert steps.search_alerts(config, acme, postcode="ew12ab", now=MOMENT + dt.timedelta(seconds=1))["total"] >= 1
    assert register_backends(config).isdisjoint(pooled)  # served by a new connection
    logged = [row for row in table(config, "lookups") if row["reader"] == "Acme Repairs"]
    assert [row["outcome"] for row in logged] == ["ok"] * 4


def test_the_log_lists_exactly_the_alerts_shown_even_when_the_sql_found_more(config, monkeypatch):
    """On PostgreSQL a search logs what its SQL found, in the same statement; the domain's rules are
    applied again to what comes back, and should they hide an alert the SQL found (a scope the two
    disagree on), the log is amended before the answer goes out: it lists exactly what was shown."""
    from cautionflow.domain import lookup as domain

    _, acme = token_for(config, "Acme Repairs")
    may_see = domain.may_see
    monkeypatch.setattr(domain, "may_see", lambda reader, row: row["alert_id"] != "N2" and may_see(reader, row))
    found = steps.search_alerts(config, acme, postcode="EW1 2AB", now=MOMENT)
    assert [item["alert_id"] for item in found["items"]] == ["N1"]
    monkeypatch.setattr(domain, "may_see", lambda reader, row: False)
    assert steps.search_alerts(config, acme, postcode="EW1 2AB", now=MOMENT)["items"] == []

    first, second = table(config, "lookups")
    assert (first["outcome"], first["result_count"]) == ("ok", 1)
    assert [r["alert_id"] for r in table(config, "lookup_results", lookup_id=first["id"])] == ["N1"]
    assert (second["outcome"], second["result_count"]) == ("not_found", 0)
    assert table(config, "lookup_results", lookup_id=second["id"]) == []
