"""The synthetic CX-style housing database: shape, realism, faults and determinism.

The demo and the benchmarks stand in for a landlord's real export, so the view must honour the
source contract exactly and the deliberate faults must be there (and counted) for validation to
catch.
"""

from __future__ import annotations

import argparse
import json
import re
import sqlite3
from collections import Counter
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cautionflow.cli import CommandError
from cautionflow.commands import demo_data
from cautionflow.demo.housing import (
    EMAIL_DOMAINS,
    FAULT_KINDS,
    MIN_ALERTS,
    VIEW_NAME,
    DemoSummary,
    build_housing_database,
)
from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.contract import DATE_COLUMNS, ENUMS, FLAG_COLUMNS, SOURCE_COLUMNS

# The day the demo data are built for here: the counts and seeds below are pinned to it.
DEMO_DAY = date(2026, 3, 16)
HOMES = 1_500
ALERTS = 1_200
ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _rows(path: Path) -> list[dict[str, Any]]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute(f"SELECT * FROM {VIEW_NAME}")]
    finally:
        con.close()


def _date_state(value: str | None) -> str:
    """'empty', 'ok', 'impossible' (ISO shape, no such day) or 'unparseable'."""
    if value is None or value == "":
        return "empty"
    if not ISO_DATE.match(value):
        return "unparseable"
    try:
        date.fromisoformat(value)
    except ValueError:
        return "impossible"
    return "ok"


def _d(value: str | None) -> date | None:
    return date.fromisoformat(value) if _date_state(value) == "ok" else None


def _faults(rows: list[dict[str, Any]]) -> Counter[str]:
    """Classify the bad rows independently of the generator."""
    found: Counter[str] = Counter()
    ids = Counter(r["alert_id"] for r in rows if r["alert_id"])
    found["duplicate_alert_id"] = sum(1 for n in ids.values() if n > 1)
    for r in rows:
        if not r["alert_id"]:
            found["missing_alert_id"] += 1
        if not r["asset_ref"] and not r["address"]:
            found["missing_location"] += 1
        if r["alert_code"] not in ALERT_CODES:
            found["unknown_alert_code"] += 1
        states = {_date_state(r[c]) for c in DATE_COLUMNS}
        if "unparseable" in states:
            found["unparseable_date"] += 1
        if "impossible" in states:
            found["impossible_date"] += 1
        start, end = _d(r["effective_from"]), _d(r["ends_on"])
        if start and end and end < start:
            found["ends_before_start"] += 1
    return found


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[DemoSummary, list[dict[str, Any]]]:
    path = tmp_path_factory.mktemp("demo") / "housing.db"
    summary = build_housing_database(path, homes=HOMES, alerts=ALERTS, as_of=DEMO_DAY, seed=11)
    return summary, _rows(path)


def test_view_returns_exactly_the_source_contract_columns(built: tuple[DemoSummary, list]) -> None:
    summary, _ = built
    con = sqlite3.connect(summary.path)
    try:
        cursor = con.execute(f"SELECT * FROM {VIEW_NAME} LIMIT 0")
        assert tuple(d[0] for d in cursor.description) == SOURCE_COLUMNS
        kinds = {r[0]: r[1] for r in con.execute("SELECT name, type FROM sqlite_master")}
    finally:
        con.close()
    assert kinds[VIEW_NAME] == "view"
    assert {"cx_property", "cx_tenancy", "cx_contact", "cx_alert"} <= {k for k, v in kinds.items() if v == "table"}


def test_row_counts_match_the_summary(built: tuple[DemoSummary, list]) -> None:
    summary, rows = built
    assert len(rows) == summary.alerts == ALERTS
    con = sqlite3.connect(summary.path)
    try:
        assert con.execute("SELECT count(*) FROM cx_property").fetchone()[0] == HOMES == summary.homes
        assert con.execute("SELECT count(*) FROM cx_tenancy").fetchone()[0] == summary.tenancies
        assert con.execute("SELECT count(*) FROM cx_contact").fetchone()[0] == summary.people
    finally:
        con.close()
    assert summary.people >= HOMES  # a lead tenant per home, some joint tenants


def test_every_fault_kind_is_present_and_counted(built: tuple[DemoSummary, list]) -> None:
    summary, rows = built
    found = _faults(rows)
    assert set(summary.faults) == set(FAULT_KINDS)
    for kind in FAULT_KINDS:
        assert summary.faults[kind] >= 2, kind
        assert found[kind] == summary.faults[kind], kind
    # Both spellings of a missing id, and the brief's example unknown code.
    assert any(r["alert_id"] is None for r in rows) and any(r["alert_id"] == "" for r in rows)
    assert any(r["alert_code"] == "XXZ" for r in rows)


def test_faults_scale_with_size_but_stay_tiny(tmp_path: Path) -> None:
    summary = build_housing_database(tmp_path / "h.db", homes=300, alerts=5_000, as_of=DEMO_DAY)
    assert all(count == 10 for count in summary.faults.values())
    small = build_housing_database(tmp_path / "s.db", homes=5, alerts=MIN_ALERTS, as_of=DEMO_DAY)
    assert all(count == 2 for count in small.faults.values())
    found = _faults(_rows(small.path))
    assert all(found[kind] == 2 for kind in FAULT_KINDS)


def test_deterministic_for_a_seed(tmp_path: Path) -> None:
    a = build_housing_database(tmp_path / "a.db", homes=400, alerts=300, as_of=DEMO_DAY, seed=3)
    b = build_housing_database(tmp_path / "b.db", homes=400, alerts=300, as_of=DEMO_DAY, seed=3)
    c = build_housing_database(tmp_path / "c.db", homes=400, alerts=300, as_of=DEMO_DAY, seed=4)
    assert _rows(a.path) == _rows(b.path)
    assert _rows(a.path) != _rows(c.path)
    assert a.faults == b.faults


def test_replaces_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "housing.db"
    path.write_text("not a database")
    summary = build_housing_database(path, homes=50, alerts=100, as_of=DEMO_DAY)
    assert len(_rows(path)) == summary.alerts == 100
    assert not list(tmp_path.glob("*.building"))


def test_rejects_sizes_too_small_for_the_faults(tmp_path: Path) -> None:
    with pytest.raises(ValueError):
        build_housing_database(tmp_path / "x.db", homes=10, alerts=MIN_ALERTS - 1, as_of=DEMO_DAY)
    with pytest.raises(ValueError):
        build_housing_database(tmp_path / "x.db", homes=0, alerts=100, as_of=DEMO_DAY)


def test_address_only_alerts_have_no_person(built: tuple[DemoSummary, list]) -> None:
    _, rows = built
    address = [r for r in rows if r["subject_type"] == "address"]
    assert address
    for r in address:
        assert r["person_ref"] is None and r["person_name"] is None and r["tenancy_ref"] is None
        assert r["email"] is None and r["preferred_channel"] is None and r["large_print"] == 0
        assert r["notify_resident"] == 0
    # Some are on a location with no property record (a bin store, a car park), still with an address.
    assert any(r["asset_ref"] is None and r["address"] for r in address)
    people = [r for r in rows if r["subject_type"] in ("person", "household")]
    assert all(r["person_ref"] and r["person_name"] for r in people)


def test_subject_and_code_mix(built: tuple[DemoSummary, list]) -> None:
    _, rows = built
    subjects = Counter(r["subject_type"] for r in rows)
    assert subjects["person"] > subjects["household"] > 0 and subjects["address"] > 0
    codes = Counter(r["alert_code"] for r in rows)
    rare = min(codes[c] for c in ("NMO", "NLM", "NFV", "NMV"))
    assert min(codes["VIP"], codes["DOG"], codes["CM"]) > 3 * rare


def test_emails_only_on_reserved_example_domains(built: tuple[DemoSummary, list]) -> None:
    _, rows = built
    emails = [r["email"] for r in rows if r["email"]]
    assert emails
    assert all(re.fullmatch(r"[a-z]+\.[a-z]+\d+@example\.(org|com|net)", e) for e in emails)
    assert {e.split("@")[1] for e in emails} <= set(EMAIL_DOMAINS)
    assert any(r["preferred_channel"] == "email" and r["email"] for r in rows)


def test_enums_flags_and_formats(built: tuple[DemoSummary, list]) -> None:
    _, rows = built
    for r in rows:
        for column, allowed in ENUMS.items():
            assert r[column] is None or r[column] in allowed, (column, r[column])
        for column in FLAG_COLUMNS:
            assert r[column] in (0, 1)
        assert r["status"] in ("active", "ended")
        if r["postcode"] is not None:  # plausible shape, in the unused "Q" postcode area
            assert re.fullmatch(r"Q[NSEWC]\d{1,2} \d[ABD-HJLNP-UW-Z]{2}", r["postcode"])
        assert r["area"] in (None, "NORTH", "SOUTH", "EAST", "WEST", "CENTRAL")
        if r["address"]:  # "14 Larkspur Close, Eastwick" or "Bin store by Larkspur Close, Eastwick"
            assert re.fullmatch(r"[\w ]+, [\w ]+", r["address"])


def test_dates_are_relative_to_as_of(built: tuple[DemoSummary, list]) -> None:
    _, rows = built
    clean = [r for r in rows if {_date_state(r[c]) for c in DATE_COLUMNS} <= {"ok", "empty"}]
    end_of_day = datetime.combine(DEMO_DAY, datetime.max.time(), tzinfo=UTC)
    for r in clean:
        start = _d(r["effective_from"])
        assert start is not None and DEMO_DAY - timedelta(days=1096) <= start <= DEMO_DAY
        for column in ("last_reviewed_on", "notified_on", "appeal_received_on", "appeal_decided_on"):
            value = _d(r[column])
            assert value is None or start <= value <= DEMO_DAY, (column, r)
        assert datetime.fromisoformat(r["updated_at"]) <= end_of_day
        if r["status"] == "ended":
            assert _d(r["ends_on"]) is not None and _d(r["ends_on"]) <= DEMO_DAY
    year_ago = DEMO_DAY - timedelta(days=365)

    def some(pred: Any) -> bool:
        return sum(1 for r in clean if pred(r)) >= 2

    # Teign 8 / Wandle 3.8: stale alerts, more than a year old and never reviewed.
    assert some(lambda r: _d(r["effective_from"]) < year_ago and r["last_reviewed_on"] is None
                and r["status"] == "active")
    assert some(lambda r: r["review_outcome"] == "retained" and r["last_reviewed_on"])
    assert some(lambda r: r["review_outcome"] == "removed" and r["status"] == "ended")
    recent = [r for r in clean if _d(r["effective_from"]) >= DEMO_DAY - timedelta(days=60)]
    assert any(r["notify_resident"] == 1 and r["notified_on"] is None for r in recent)
    assert any(r["notified_on"] for r in recent)
    # Teign 9: appeals lodged and not yet answered, and appeals decided.
    assert some(lambda r: r["appeal_received_on"] and not r["appeal_decided_on"])
    assert some(lambda r: r["appeal_decided_on"] and r["appeal_outcome"] in ("upheld", "dismissed"))
    assert some(lambda r: r["status"] == "ended")
    assert some(lambda r: r["ends_on"] and _d(r["ends_on"]) and _d(r["ends_on"]) > DEMO_DAY)


def test_notification_and_contact_variety(built: tuple[DemoSummary, list]) -> None:
    _, rows = built
    # Teign 4, 7: no letter where agencies supplied the information; the reason is usually recorded.
    assert any(r["notify_resident"] == 0 and r["no_notify_reason"] for r in rows)
    assert any(r["notify_resident"] == 0 and not r["no_notify_reason"] for r in rows)
    assert all(r["no_notify_reason"] is None for r in rows if r["notify_resident"] == 1)
    assert {"police", "local_authority", "social_services"} <= {r["source"] for r in rows}
    assert {"pl", "ur", "cy"} & {r["language"] for r in rows}
    assert any(r["large_print"] == 1 for r in rows)
    assert any(r["note"] for r in rows)


def test_most_alerts_that_defer_to_an_arrangement_say_who_to_contact(built: tuple[DemoSummary, list]) -> None:
    """Issue 15: SPOC, CM and DNV alerts mostly carry a contact instruction naming someone to call,
    and a share are left without (the flag shows in the demo); a few other alerts carry one too."""
    from cautionflow.domain.contract import FREE_TEXT_CAPS

    _, rows = built
    needing = [r for r in rows if r["alert_code"] in ("SPOC", "CM", "DNV")]
    told = [r for r in needing if r["contact_instruction"]]
    assert 0.75 < len(told) / len(needing) < 0.95, (len(told), len(needing))
    for code in ("SPOC", "CM", "DNV"):
        assert any(r["alert_code"] == code and not r["contact_instruction"] for r in rows), code
    others = [r for r in rows if r["alert_code"] not in ("SPOC", "CM", "DNV")]
    assert 0 < sum(1 for r in others if r["contact_instruction"]) < 0.1 * len(others)
    for r in told:
        text = r["contact_instruction"]
        assert len(text) <= FREE_TEXT_CAPS["contact_instruction"] and text.isprintable()  # one clean line
        assert re.search(r"01632 960\d{3}", text), text  # a number to call (Ofcom's drama range)
    # The officer named is one of the alert's own area: the same name never serves two areas.
    areas_of: dict[str, set[str]] = {}
    for r in told:
        for officer in re.findall(r"([A-Z][a-z]+ [A-Z][a-z]+, [A-Za-z ]+Officer)", r["contact_instruction"]):
            areas_of.setdefault(officer, set()).add(r["area"])
    assert areas_of and all(len(areas - {None}) <= 1 for areas in areas_of.values())


def test_contact_instructions_leave_the_other_columns_as_the_seed_made_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Drawn after everything else: the columns that existed before are those of the same seed."""
    from cautionflow.demo import housing

    build_housing_database(tmp_path / "a.db", homes=300, alerts=400, as_of=DEMO_DAY, seed=9)
    with monkeypatch.context() as before_the_column:  # as the generator was: nothing drawn, all empty
        before_the_column.setattr(housing, "_contact_instructions",
                                  lambda rng, codes, code_idx, area: housing._cats([""] * len(code_idx)))
        build_housing_database(tmp_path / "b.db", homes=300, alerts=400, as_of=DEMO_DAY, seed=9)
    with_them, without = _rows(tmp_path / "a.db"), _rows(tmp_path / "b.db")
    assert [{**r, "contact_instruction": None} for r in with_them] == without
    assert any(r["contact_instruction"] for r in with_them)


def _cli(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="cautionflow")
    demo_data.register(parser.add_subparsers(dest="command", required=True))
    return parser.parse_args(argv)


def test_cli_builds_and_prints_json_last(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "nested" / "demo" / "housing.db"
    args = _cli(["demo-data", "--out", str(out), "--homes", "200", "--alerts", "150",
                 "--as-of", "2026-03-16", "--seed", "5"])
    assert args.handler(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    payload = json.loads(lines[-1])
    assert payload["path"] == str(out) and payload["alerts"] == 150 and payload["homes"] == 200
    assert payload["as_of"] == "2026-03-16" and payload["seed"] == 5
    assert set(payload["faults"]) == set(FAULT_KINDS)
    assert len(lines) > 1 and out.exists()


def test_cli_defaults() -> None:
    args = _cli(["demo-data"])
    assert args.out == Path("var/demo/housing.db") and args.homes == 20_000 and args.alerts == 600
    assert args.as_of is None and args.seed == 7


@pytest.mark.parametrize(
    "argv",
    [
        ["--as-of", "16/03/2026"],
        ["--alerts", "3"],
        ["--homes", "0"],
    ],
)
def test_cli_errors_are_one_line_command_errors(tmp_path: Path, argv: list[str]) -> None:
    args = _cli(["demo-data", "--out", str(tmp_path / "h.db"), *argv])
    with pytest.raises(CommandError) as err:
        args.handler(args)
    assert "\n" not in str(err.value)
