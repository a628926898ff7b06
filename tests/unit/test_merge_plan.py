"""Planning a sync without a database: insert, update, end, or leave alone."""

from __future__ import annotations

import pandas as pd

from cautionflow.domain.contract import SOURCE_COLUMNS
from cautionflow.domain.merge import changed_fields, plan_merge
from cautionflow.domain.validation import validate_source_rows
from tests.support import alert_row


def incoming(*rows):
    return validate_source_rows(pd.DataFrame([alert_row(**r) for r in rows], columns=list(SOURCE_COLUMNS))).alerts


def current_from(frame, states=None):
    states = states or {}
    return pd.DataFrame(
        {
            "alert_id": frame["alert_id"],
            "row_hash": frame["row_hash"],
            "register_state": [states.get(a, "active") for a in frame["alert_id"]],
        }
    )


def test_a_fresh_register_inserts_everything():
    plan = plan_merge(incoming({"alert_id": "A"}, {"alert_id": "B", "status": "ended"}), current_from(incoming()))
    assert plan.inserts["alert_id"].tolist() == ["A", "B"]
    assert plan.inserts["register_state"].tolist() == ["active", "ended"]
    assert plan.updates.empty and plan.left_source == () and plan.unchanged == 0


def test_the_same_source_again_is_unchanged():
    rows = incoming({"alert_id": "A"}, {"alert_id": "B"})
    plan = plan_merge(rows, current_from(rows))
    assert plan.unchanged == 2 and plan.inserts.empty and plan.updates.empty and plan.ended == 0


def test_changed_content_ended_in_source_and_left_source():
    before = incoming({"alert_id": "A"}, {"alert_id": "B"}, {"alert_id": "C"})
    after = incoming({"alert_id": "A", "alert_code": "DOG"}, {"alert_id": "B", "status": "ended"})
    plan = plan_merge(after, current_from(before))
    assert dict(zip(plan.updates["alert_id"], plan.updates["change"], strict=True)) == {"A": "updated", "B": "ended"}
    assert plan.left_source == ("C",)
    assert plan.ended == 2


def test_an_ended_alert_that_returns_is_reopened():
    rows = incoming({"alert_id": "A"})
    plan = plan_merge(rows, current_from(rows, {"A": "ended"}))
    assert plan.updates["change"].tolist() == ["reopened"]


def test_an_alert_already_ended_that_stays_away_is_not_ended_again():
    before = incoming({"alert_id": "A"})
    plan = plan_merge(incoming({"alert_id": "B"}), current_from(before, {"A": "ended"}))
    assert plan.left_source == () and plan.ended == 0


def test_a_quarantined_id_keeps_its_last_good_version():
    before = incoming({"alert_id": "A"})
    plan = plan_merge(incoming({"alert_id": "B"}), current_from(before), quarantined_ids={"A"})
    assert plan.left_source == ()


def test_changed_fields_compare_stored_and_incoming_forms():
    import datetime as dt

    old = {"alert_code": "VIP", "effective_from": dt.date(2026, 1, 31), "notify_resident": 1, "note": None}
    new = {"alert_code": "VIP", "effective_from": "2026-01-31", "notify_resident": 1, "note": float("nan")}
    assert changed_fields(old, new) == {}
    assert changed_fields(old, {**new, "alert_code": "DOG"}) == {"alert_code": ["VIP", "DOG"]}
