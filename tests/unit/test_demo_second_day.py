"""The demo's scripted second day (pure planning, then the writer on a real SQLite database), the
task-log splitter that makes `dags test` logs readable in the UI, and the rerun check's diff.
Fixed dates only."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

import pytest

from cautionflow.demo.days import differences
from cautionflow.demo.housing import _RESIDENT_REASONS, VIEW_NAME, build_housing_database
from cautionflow.demo.second_day import (
    ADDED,
    ENDED,
    ESCALATE_FROM,
    ESCALATE_TO,
    apply_second_day,
    plan_second_day,
)
from cautionflow.demo.task_logs import split_task_logs
from cautionflow.domain.codes import ALERT_CODES

DAY_ONE = date(2026, 11, 23)
DAY_TWO = date(2026, 11, 24)


def alert(ref: str, code: str = "VIP", **extra):
    return {"alert_ref": ref, "alert_type": code, "subject_kind": "P", "person_ref": f"P{ref}",
            "asset_ref": f"A{ref}", "effective_from": "2026-01-05", "ends_on": None, "last_reviewed_on": None,
            "status": "active", "notify_resident": 1, **extra}


ALERTS = [
    alert("CA0100001"), alert("CA0100002", "DOG"), alert("CA0100003", "CM"), alert("CA0100004", "VIP"),
    alert("CA0100005", "HAZ", notify_resident=0), alert("CA0100006", "VIP", status="ended", ends_on="2026-02-01"),
    # Deliberately bad rows the script must leave alone:
    alert("CA0100007", "XXZ"), alert("", "VIP"), alert("CA0100008", "VIP", effective_from="31/02/2026"),
    alert("CA0100009", "VIP"), alert("CA0100009", "VIP"),  # a duplicated id
    alert("CA0100010", "VIP", effective_from=DAY_TWO.isoformat()),  # not yet in force before day 2
]
RESIDENTS = [{"person_ref": f"PER{i:03d}", "tenancy_ref": f"TEN{i:03d}", "asset_ref": f"AST{i:03d}"} for i in range(12)]
BAD = {"CA0100006", "CA0100007", "", "CA0100008", "CA0100009", "CA0100010"}


def test_adds_escalates_one_to_a_more_serious_code_and_ends_some():
    plan = plan_second_day(ALERTS, RESIDENTS, DAY_TWO, added=4, ended=2)
    assert len(plan.added) == 4 and len(plan.ended) == 2
    assert (plan.escalated.old_code, plan.escalated.new_code) == (ESCALATE_FROM, ESCALATE_TO) == ("VIP", "WPN")
    escalated = next(a for a in ALERTS if a["alert_ref"] == plan.escalated.alert_ref)
    assert escalated["alert_type"] == "VIP"
    touched = [plan.escalated.alert_ref, *(e.alert_ref for e in plan.ended)]
    assert len(set(touched)) == 3 and not set(touched) & BAD
    # One ending is a removal at review, of an alert whose resident is told: a letter on day 2.
    [at_review] = [e for e in plan.ended if e.at_review]
    assert next(a for a in ALERTS if a["alert_ref"] == at_review.alert_ref)["notify_resident"] == 1


def test_new_alerts_are_today_s_on_residents_without_one_with_fresh_ids():
    plan = plan_second_day(ALERTS, RESIDENTS, DAY_TWO, added=3, ended=1)
    assert [r["alert_ref"] for r in plan.added] == ["CA0100011", "CA0100012", "CA0100013"]
    for row in plan.added:
        assert row["effective_from"] == "2026-11-24" and row["status"] == "active"
        assert row["alert_type"] in ALERT_CODES and row["updated_at"].startswith("2026-11-24T")
        assert row["asset_ref"] in {r["asset_ref"] for r in RESIDENTS}
    people = [r for r in plan.added if r["subject_kind"] == "P"]
    assert len(people) == 2 and all(r["notify_resident"] == 1 and r["person_ref"] for r in people)
    assert all(r["resident_reason"] for r in people)  # their decision letters can go (Hexagon 5.3)
    [place] = [r for r in plan.added if r["subject_kind"] == "A"]
    assert place["person_ref"] is None and place["notify_resident"] == 0 and place["no_notify_reason"]
    assert place["resident_reason"] is None  # no resident to tell
    # Issue 15: a new alert that defers to an arrangement says who to contact; the others need none.
    plan = plan_second_day(ALERTS, RESIDENTS, DAY_TWO, added=5, ended=1)
    for row in plan.added:
        if row["alert_type"] in ("SPOC", "CM", "DNV"):
            assert row["contact_instruction"] and "01632 960" in row["contact_instruction"], row
        else:
            assert row["contact_instruction"] is None, row
    assert {"CM", "SPOC"} <= {r["alert_type"] for r in plan.added}


def test_a_reason_is_recorded_for_one_resident_whose_decision_letter_waits_for_it():
    # Issue 14 (Hexagon 5.3): a letter held for want of a reason on day 1 is released on day 2.
    waiting = {f"CA01000{n}" for n in range(20, 24)}
    alerts = [*ALERTS, *(alert(ref, "DOG", effective_from="2026-11-10") for ref in sorted(waiting)),
              alert("CA0100030", "DOG", effective_from="2026-11-10", resident_reason="Recorded already."),
              alert("CA0100031", "DOG", effective_from="2026-11-10", notified_on="2026-11-11"),
              alert("CA0100032", "HAZ", effective_from="2026-11-10"),  # no letter under Dover
              alert("CA0100033", "DOG", effective_from="2026-11-10", source="police"),  # Teign 4
              alert("CA0100034", "DOG", effective_from="2026-09-01")]  # past the letters' look-back
    plan = plan_second_day(alerts, RESIDENTS, DAY_TWO, ended=1)
    [(ref, reason)] = plan.reasoned
    assert ref in waiting and ref not in {plan.escalated.alert_ref, plan.ended[0].alert_ref}
    assert reason in _RESIDENT_REASONS["DOG"]
    assert plan.as_dict()["reason_recorded"] == [{"alert_id": ref}]
    assert plan_second_day(ALERTS, RESIDENTS, DAY_TWO).reasoned == ()  # none waiting: none recorded


def test_deterministic_for_a_seed_and_day_and_input_order():
    one = plan_second_day(ALERTS, RESIDENTS, DAY_TWO, seed=3)
    assert plan_second_day(list(reversed(ALERTS)), list(reversed(RESIDENTS)), DAY_TWO, seed=3) == one
    others = {plan_second_day(ALERTS, RESIDENTS, DAY_TWO, seed=s).as_dict().__repr__() for s in range(8)}
    assert len(others) > 1  # the seed matters


def test_refuses_when_nothing_can_be_escalated():
    with pytest.raises(ValueError, match="no clean, active VIP alert"):
        plan_second_day([a for a in ALERTS if a["alert_type"] != "VIP"], RESIDENTS, DAY_TWO)


def test_applied_to_the_demo_database_once(tmp_path: Path):
    path = tmp_path / "housing.db"
    build_housing_database(path, homes=400, alerts=200, as_of=DAY_ONE, seed=5)
    before = _view(path)
    plan = apply_second_day(path, DAY_TWO, seed=5)
    after = _view(path)
    assert len(after) == len(before) + ADDED
    assert {r["alert_ref"] for r in plan.added} == set(after) - set(before)
    assert after[plan.escalated.alert_ref]["alert_code"] == "WPN"
    assert before[plan.escalated.alert_ref]["alert_code"] == "VIP"
    assert len(plan.ended) == ENDED
    for ending in plan.ended:
        assert before[ending.alert_ref]["status"] == "active"
        assert (after[ending.alert_ref]["status"], after[ending.alert_ref]["ends_on"]) == ("ended", "2026-11-24")
    # Issue 14: the reason recorded for a resident whose decision letter waited for it (if one did).
    for reasoned, reason in plan.reasoned:
        assert before[reasoned]["resident_reason"] is None and after[reasoned]["resident_reason"] == reason
    changed = {k for k in before if before[k] != after[k]}
    assert changed == {plan.escalated.alert_ref, *(e.alert_ref for e in plan.ended), *dict(plan.reasoned)}
    with pytest.raises(ValueError, match="already applied"):
        apply_second_day(path, DAY_TWO, seed=5)
    assert _view(path) == after


def _view(path: Path) -> dict[str, dict]:
    con = sqlite3.connect(path)
    con.row_factory = sqlite3.Row
    try:
        rows = [dict(r) for r in con.execute(f"SELECT * FROM {VIEW_NAME}")]
    finally:
        con.close()
    # Keyed by id: the duplicated and missing ids (deliberate faults) collapse, and stay unchanged.
    return {r["alert_id"]: r for r in rows if r["alert_id"]}


DAGS_TEST_OUTPUT = """\
2026-11-24T09:00:00.1Z [info     ] Filling up the DagBag from /dags [airflow.dag_processing.dagbag.BundleDagBag]
2026-11-24T09:00:01.1Z [info     ] [DAG TEST] starting task_id=compute_deadlines map_index=-1 [airflow.sdk.definitions.dag]
2026-11-24T09:00:01.2Z [info     ] [DAG TEST] running task <TaskInstance: cautionflow_deadlines.compute_deadlines \
manual__2026-11-24T09:00:00.5+00:00 [TaskInstanceState.SCHEDULED] ti_id=1> [airflow.sdk.definitions.dag]
2026-11-24T09:00:02.0Z [info     ] cautionflow deadlines summary: {'alerts': 3} [cautionflow.integrations.airflow]
2026-11-24T09:00:02.1Z [info     ] [DAG TEST] end task task_id=compute_deadlines map_index=-1 [airflow.sdk.definitions.dag]
2026-11-24T09:00:02.2Z [info     ] [DAG TEST] starting task_id=send_review_reminders map_index=-1 [airflow.sdk.definitions.dag]
2026-11-24T09:00:02.3Z [info     ] [DAG TEST] running task <TaskInstance: cautionflow_deadlines.send_review_reminders \
manual__2026-11-24T09:00:00.5+00:00 [TaskInstanceState.SCHEDULED] ti_id=2> [airflow.sdk.definitions.dag]
2026-11-24T09:00:03.0Z [error    ] Task failed [airflow.sdk.definitions.dag]
2026-11-24T09:00:03.1Z [info     ] Marking run failed [airflow.models.dagrun]
"""


def test_task_logs_are_split_per_task_where_the_ui_reads_them():
    logs = split_task_logs(DAGS_TEST_OUTPUT.splitlines())
    assert [str(x.relative_path) for x in logs] == [
        "dag_id=cautionflow_deadlines/run_id=manual__2026-11-24T09:00:00.5+00:00/task_id=compute_deadlines/attempt=1.log",
        "dag_id=cautionflow_deadlines/run_id=manual__2026-11-24T09:00:00.5+00:00/task_id=send_review_reminders/attempt=1.log",
    ]
    assert len(logs[0].lines) == 4 and "summary: {'alerts': 3}" in logs[0].lines[2]
    assert logs[1].lines[-1].endswith("Marking run failed [airflow.models.dagrun]")  # a failed task keeps its tail
    again = split_task_logs((DAGS_TEST_OUTPUT + DAGS_TEST_OUTPUT.split("\n", 1)[1]).splitlines())
    assert [x.attempt for x in again] == [1, 1, 2, 2]


def test_the_rerun_check_names_what_changed():
    base = {"tables": {"outbox": [6, "a"], "alerts": [600, "b"]}, "mail": ["0001-ops.eml"], "letters": ["x 1 2"]}
    assert differences(base, base) == []
    changed = {"tables": {"outbox": [7, "c"], "alerts": [600, "b"]}, "mail": ["0001-ops.eml", "0002-ops.eml"],
               "letters": ["x 1 3"]}
    assert differences(base, changed) == [
        "1 email(s) sent: 0002-ops.eml", "register table outbox changed (6 -> 7 rows)", "letter files written or changed",
    ]
