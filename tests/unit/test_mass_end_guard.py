"""The mass-end guard's arithmetic and wording (domain/guards.py), without a database."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from cautionflow.domain.guards import (
    MassEndCheck,
    MassEndLimit,
    add_coverage_flags,
    contractor_areas,
    quarantine_reasons,
)


def check(active=60, left=0, ended=0, hidden=0, read=60, identifiable=60) -> MassEndCheck:
    return MassEndCheck(active_before=active, ended_in_source=ended, left_source=left, out_of_view=hidden,
                        read=read, identifiable=identifiable)


@pytest.mark.parametrize(("losing", "refused"), [(5, False), (6, False), (7, True)])
def test_more_than_the_share_and_more_than_the_minimum(losing, refused):
    # 10% of 60 is 6: six alerts may end; seven may not.
    assert check(left=losing).exceeds(MassEndLimit()) is refused


def test_the_minimum_protects_a_small_registers_ordinary_day():
    assert not check(active=10, left=5, read=5, identifiable=5).exceeds(MassEndLimit())  # 50%, but only 5
    assert check(active=10, left=6, read=4, identifiable=4).exceeds(MassEndLimit())


def test_ended_and_hidden_alerts_count_together():
    assert check(ended=4, hidden=3).exceeds(MassEndLimit())
    assert check(ended=4, hidden=3).message(MassEndLimit()).startswith(
        "the sync would end and take out of every contractor's view 7 of 60 active alerts (the limit is 10% and 5): "
        "4 ended in the source; 3 a contractor saw"
    )


def test_a_read_with_no_identifiable_row_is_refused_whatever_the_limit():
    assert check(active=1, left=1, read=0, identifiable=0).exceeds(MassEndLimit(share=1, minimum=100))
    assert not check(active=1, read=2, identifiable=0).exceeds(MassEndLimit())  # duplicates: nothing ends


def test_quarantine_reasons_are_counted_per_reason_most_frequent_first():
    reasons = ["missing alert_id", "missing alert_id; cannot be identified: neither asset_ref nor address",
               "duplicate alert_id in one read (2 rows)", "duplicate alert_id in one read (3 rows)", None]
    assert quarantine_reasons(reasons) == (
        ("duplicate alert_id in one read", 2), ("missing alert_id", 2),
        ("cannot be identified: neither asset_ref nor address", 1),
    )


def test_no_contractor_in_the_config_turns_the_coverage_check_off():
    officer = SimpleNamespace(role="officer", areas=())
    assert contractor_areas([officer]) is None
    assert contractor_areas([officer, SimpleNamespace(role="contractor", areas=("north", " East"))]) == {
        "NORTH", "EAST"}


def test_coverage_flags_join_other_flags_and_change_the_fingerprint_of_flagged_rows_only():
    flags = np.array([None, "alert_code: missing", None, None], dtype=object)
    hashes = np.array([1, 2, 3, 4], dtype=np.int64)
    areas = np.array(["NORTH", "WEST", None, "WEST"], dtype=object)
    active = np.array([True, True, True, False])

    new_flags, new_hashes = add_coverage_flags(flags, hashes, areas, active, frozenset({"NORTH"}))

    assert new_flags.tolist() == [
        None, "alert_code: missing; area: no contractor covers 'WEST', no contractor will be told",
        "area: missing, no contractor will be told", None,
    ]
    assert new_hashes[0] == 1 and new_hashes[3] == 4 and new_hashes[1] != 2 and new_hashes[2] != 3
    assert flags[1] == "alert_code: missing" and hashes[1] == 2  # the inputs are left alone
