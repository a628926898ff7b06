"""A letter is dated the day it leaves (issue 14): `domain.letters.letter_for` builds the one letter
(alert, kind, decision date) for a given day, as `owed_letters` builds it, its appeal deadline counted
from that day (Teign 9: 28 days; Dover 6.34: 20 working days). Pure; synthetic data only."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from cautionflow.domain import letters as d
from cautionflow.profiles import load_profile
from tests.support import AS_OF, alert_row

ROWS = [
    alert_row(alert_id="ADD", effective_from="2026-11-20", register_state="active", review_due="2027-11-20"),
    alert_row(alert_id="KEPT", effective_from="2025-11-01", notified_on="2025-11-02", last_reviewed_on="2026-11-02",
              review_outcome="retained", register_state="active", review_due="2027-11-02"),
    alert_row(alert_id="GONE", effective_from="2025-11-01", notified_on="2025-11-02", last_reviewed_on="2026-11-05",
              review_outcome="removed", status="ended", register_state="ended"),
    alert_row(alert_id="PL", effective_from="2026-11-20", language="pl", register_state="active"),
]


@pytest.mark.parametrize("policy", ["teign", "dover", "karbon", "wandle", "hexagon"])
def test_letter_for_builds_the_letter_owed_letters_builds(policy):
    profile = load_profile(policy)
    for owed in d.owed_letters(ROWS, profile, AS_OF).letters:
        alert = next(r for r in ROWS if r["alert_id"] == owed.alert_id)
        assert d.letter_for(alert, owed.kind, owed.decision_date, profile, AS_OF) == owed


def test_a_later_day_moves_the_date_and_the_appeal_deadline_and_nothing_else():
    profile = load_profile("dover")
    [owed] = [x for x in d.owed_letters(ROWS, profile, AS_OF).letters if x.alert_id == "ADD"]
    later = d.letter_for(ROWS[0], owed.kind, owed.decision_date, profile, dt.date(2026, 12, 14))
    # Dover 6.34: 20 working days after Monday 14 December 2026, over Christmas, Boxing Day's
    # substitute (28 December) and New Year's Day.
    assert (later.as_of, later.appeal_by) == (dt.date(2026, 12, 14), dt.date(2027, 1, 14))
    assert later.key == owed.key  # the same letter: one per (alert, kind, decision date), ever
    assert dataclasses.replace(later, as_of=owed.as_of, appeal_by=owed.appeal_by) == owed


def test_only_the_decision_letters_give_an_appeal_deadline_and_teign_counts_28_days():
    profile = load_profile("teign")
    sent = dt.date(2026, 11, 28)
    kinds = {(r["alert_id"], x.kind): x for r in ROWS for x in d.owed_letters([r], profile, AS_OF).letters}
    by = {kind: d.letter_for(next(r for r in ROWS if r["alert_id"] == a), kind, x.decision_date, profile, sent).appeal_by
          for (a, kind), x in kinds.items()}
    assert by == {"alert_added": dt.date(2026, 12, 26), "review_kept": dt.date(2026, 12, 26), "review_removed": None}
