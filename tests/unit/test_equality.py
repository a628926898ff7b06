"""Equality monitoring's maths (issue 7; Hexagon Appendix 1, Teign 11): rate ratio, Katz interval,
small-count suppression. Expected values are worked by hand in the comments, not by the code."""

from __future__ import annotations

import math
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cautionflow.domain.equality import (
    FEWER_FLAGGED,
    FEWER_HOUSEHOLDS,
    FEWER_UNFLAGGED,
    SECONDARY,
    EqualityDataError,
    GroupCount,
    characteristic_result,
    equality_report,
    period_label,
    rate_ratio,
    read_counts,
)

Z = 1.959963984540054  # the 97.5th centile of the standard normal


def groups(*rows: tuple[str, int, int], characteristic: str = "Age band") -> list[GroupCount]:
    return [GroupCount(characteristic, label, n, a) for label, n, a in rows]


def by_label(result):
    return {g.group_label: g for g in result.groups}


def test_rate_ratio_and_katz_interval_worked_by_hand():
    # 20 of 100 households flagged in the group, 30 of 300 outside it:
    # RR = 0.20 / 0.10 = 2; SE(ln RR)^2 = 1/20 - 1/100 + 1/30 - 1/300 = 0.05 - 0.01 + 0.0333.. - 0.00333.. = 0.07
    rr = rate_ratio(20, 100, 30, 300)
    se = math.sqrt(0.07)  # 0.264575
    assert rr.ratio == pytest.approx(2.0)
    assert rr.lower == pytest.approx(2 * math.exp(-Z * se))  # 1.19076
    assert rr.upper == pytest.approx(2 * math.exp(Z * se))  # 3.35921
    assert (round(rr.lower, 4), round(rr.upper, 4)) == (1.1908, 3.3592)
    assert rr.wholly_above_one


def test_equal_rates_give_one_and_an_interval_across_it():
    # 10 of 200 (5%) against 90 of 1800 (5%): RR = 1; SE^2 = 1/10 - 1/200 + 1/90 - 1/1800 = 0.105556
    rr = rate_ratio(10, 200, 90, 1800)
    assert rr.ratio == pytest.approx(1.0)
    assert rr.lower == pytest.approx(math.exp(-Z * math.sqrt(0.1 - 0.005 + 1 / 90 - 1 / 1800)))  # 0.529
    assert rr.upper == pytest.approx(1 / rr.lower)  # symmetric on the log scale around 1
    assert not rr.wholly_above_one


def test_rate_ratio_is_undefined_with_a_zero_count():
    assert rate_ratio(0, 100, 30, 300) is None  # ln 0
    assert rate_ratio(20, 100, 0, 300) is None  # every flagged household is in the group
    assert rate_ratio(20, 100, 30, 0) is None  # no one outside the group


def test_a_characteristic_without_small_counts_is_shown_in_full():
    # Totals: 2000 households, 100 flagged.
    result = characteristic_result("Age band", groups(("16-34", 400, 30), ("35-64", 1000, 50), ("65+", 600, 20)))
    assert (result.households, result.flagged_households) == (2000, 100)
    young = by_label(result)["16-34"]
    # a=30, n1=400; outside c=100-30=70, n0=2000-400=1600: RR = 0.075 / 0.04375 = 1.714286
    assert young.rate == pytest.approx(0.075) and young.rate_outside == pytest.approx(0.04375)
    assert young.ratio == pytest.approx(0.075 / 0.04375)
    se = math.sqrt(1 / 30 - 1 / 400 + 1 / 70 - 1 / 1600)
    assert young.lower == pytest.approx(0.075 / 0.04375 * math.exp(-Z * se))  # 1.178 > 1
    assert young.higher and young.suppressed == ""
    old = by_label(result)["65+"]
    # a=20, n1=600; c=80, n0=1400: RR = (1/30) / (2/35) = 0.5833: lower, not flagged as higher
    assert old.ratio == pytest.approx((20 / 600) / (80 / 1400)) and not old.higher


def test_two_small_flagged_counts_need_no_secondary_suppression():
    # Age band: 65+ (3 flagged) and Not recorded (2 flagged) are under 5: two hidden cells in the
    # flagged column, so neither can be worked out from the total of 75 (only their sum, 5).
    result = characteristic_result(
        "Age band", groups(("16-34", 400, 30), ("35-64", 1000, 40), ("65+", 580, 3), ("Not recorded", 20, 2))
    )
    shown = by_label(result)
    assert shown["65+"].flagged_households is None and shown["65+"].suppressed == FEWER_FLAGGED
    assert shown["65+"].households == 580  # the household count itself is not small
    assert shown["65+"].ratio is None and shown["65+"].rate is None and shown["65+"].lower is None
    assert shown["Not recorded"].flagged_households is None and shown["Not recorded"].households == 20
    assert shown["16-34"].flagged_households == 30 and shown["35-64"].flagged_households == 40
    # 16-34: a=30, n1=400, c=75-30=45, n0=2000-400=1600: RR = 0.075/0.028125 = 2.6667,
    # SE^2 = 1/30 - 1/400 + 1/45 - 1/1600 = 0.052431, interval 1.7024 to 4.1771.
    assert shown["16-34"].ratio == pytest.approx(8 / 3)
    assert (round(shown["16-34"].lower, 4), round(shown["16-34"].upper, 4)) == (1.7024, 4.1771)
    assert (result.households, result.flagged_households) == (2000, 75)


def test_a_lone_small_count_takes_the_next_smallest_with_it():
    # Sex: only "Not recorded" (2 flagged) is small; with the total (75) published, 75 - 40 - 33 = 2
    # would give it away, so the smallest other flagged count (Male, 33) is hidden too.
    result = characteristic_result(
        "Sex", groups(("Female", 1100, 40), ("Male", 880, 33), ("Not recorded", 20, 2), characteristic="Sex")
    )
    shown = by_label(result)
    assert shown["Not recorded"].suppressed == FEWER_FLAGGED
    assert shown["Male"].flagged_households is None and shown["Male"].suppressed == SECONDARY
    assert shown["Male"].households == 880 and shown["Male"].ratio is None
    # Female still shown, against the published totals: a=40, n1=1100, c=75-40=35, n0=2000-1100=900
    # RR = (40/1100) / (35/900) = 0.93506
    assert shown["Female"].flagged_households == 40
    assert shown["Female"].ratio == pytest.approx((40 / 1100) / (35 / 900))
    assert round(shown["Female"].ratio, 5) == 0.93506


def test_a_tiny_group_hides_its_households_and_the_secondary_takes_a_whole_row():
    # 3 households: the row is hidden. Its household count alone is hidden, so the smallest other
    # household count (No, 1997) is hidden as well, with its flagged count; nothing else is left.
    result = characteristic_result("Gender identity", groups(("Yes", 3, 1), ("No", 1997, 74)))
    shown = by_label(result)
    assert shown["Yes"].households is None and shown["Yes"].suppressed == FEWER_HOUSEHOLDS
    assert shown["No"].households is None and shown["No"].flagged_households is None
    assert shown["No"].suppressed == SECONDARY
    assert (result.households, result.flagged_households) == (2000, 75)


def test_few_households_not_flagged_is_a_small_count_too():
    # 10 households, 7 flagged: publishing both tells that only 3 are not flagged.
    result = characteristic_result(
        "Disability", groups(("Rare", 10, 7), ("Other", 990, 50), ("None", 1000, 60), characteristic="Disability")
    )
    shown = by_label(result)
    assert shown["Rare"].suppressed == FEWER_UNFLAGGED and shown["Rare"].households == 10
    assert shown["Rare"].flagged_households is None
    assert shown["Other"].suppressed == SECONDARY  # 50 < 60: the smallest other flagged count
    assert shown["None"].flagged_households == 60


def test_small_totals_are_hidden_and_a_single_group_cannot_be_covered():
    tiny = characteristic_result("X", groups(("a", 100, 2), ("b", 100, 1)))
    assert tiny.flagged_households is None and tiny.households == 200
    assert all(g.flagged_households is None for g in tiny.groups)
    single = characteristic_result("Y", groups(("only", 3, 1)))
    assert single.households is None and single.flagged_households is None
    alone = characteristic_result("Z", groups(("only", 500, 20)))
    assert alone.groups[0].ratio is None and alone.groups[0].note == "no households outside this group"


def test_every_flagged_household_in_one_group_has_no_ratio_but_keeps_its_counts():
    result = characteristic_result("W", groups(("in", 100, 20), ("out", 900, 0)))
    shown = by_label(result)
    # "out" has 0 flagged (< 5): hidden, and "in" hidden with it so 0 cannot be derived (20 - 20).
    assert shown["out"].flagged_households is None and shown["in"].flagged_households is None


def test_the_report_keeps_characteristics_and_groups_in_the_order_given():
    counts = [*groups(("b", 100, 10), ("a", 100, 10)), *groups(("x", 100, 10), ("y", 100, 10), characteristic="C2")]
    report = equality_report(counts)
    assert [r.characteristic for r in report] == ["Age band", "C2"]
    assert [g.group_label for g in report[0].groups] == ["b", "a"]


def test_read_counts_accepts_aggregates_only():
    columns = ("characteristic", "group_label", "households", "flagged_households")
    # PostgreSQL returns SUM() as Decimal; SQLite as int.
    counts = read_counts(columns, [("Sex", "Female", Decimal(10), 3), ("Sex", "Male", 8, Decimal("2"))])
    assert counts == [GroupCount("Sex", "Female", 10, 3), GroupCount("Sex", "Male", 8, 2)]
    with pytest.raises(EqualityDataError, match="aggregate counts only"):
        read_counts((*columns, "person_ref"), [("Sex", "Female", 1, 1, "P1")])  # no individual's data
    with pytest.raises(EqualityDataError, match="more flagged households"):
        read_counts(columns, [("Sex", "Female", 3, 4)])
    with pytest.raises(EqualityDataError, match="appears twice"):
        read_counts(columns, [("Sex", "Female", 3, 1), ("Sex", "Female", 3, 1)])
    with pytest.raises(EqualityDataError, match="negative"):
        read_counts(columns, [("Sex", "Female", -3, 1)])
    with pytest.raises(EqualityDataError, match="whole number"):
        read_counts(columns, [("Sex", "Female", 2.5, 1)])
    with pytest.raises(EqualityDataError, match="required"):
        read_counts(columns, [("Sex", None, 2, 1)])


def test_period_labels():
    assert period_label(date(2026, 11, 23), "quarterly") == "2026-Q4"
    assert period_label(date(2026, 3, 31), "quarterly") == "2026-Q1"
    assert period_label(date(2026, 4, 1), "quarterly") == "2026-Q2"
    assert period_label(date(2026, 11, 23), "monthly") == "2026-11"
    assert period_label(date(2026, 11, 23), "annual") == "2026"


group_rows = st.lists(
    st.tuples(st.integers(0, 60), st.integers(0, 60)).map(lambda t: (t[0] + t[1], t[1])),  # (households, flagged)
    min_size=1, max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(group_rows)
def test_no_small_count_is_shown_and_no_hidden_count_stands_alone(rows):
    result = characteristic_result("P", groups(*[(f"g{i}", n, a) for i, (n, a) in enumerate(rows)]))
    hidden_n = [g for g in result.groups if g.households is None]
    hidden_a = [g for g in result.groups if g.flagged_households is None]
    for g, (n, a) in zip(result.groups, rows, strict=True):
        if g.households is not None:
            assert g.households == n and n >= 5
        if g.flagged_households is not None:
            assert g.flagged_households == a and a >= 5 and n - a >= 5
        else:
            assert g.ratio is None and g.lower is None and g.rate is None
    # A single hidden cell in a column whose total is published could be recovered by subtraction.
    assert len(hidden_n) != 1 or result.households is None
    assert len(hidden_a) != 1 or result.flagged_households is None
