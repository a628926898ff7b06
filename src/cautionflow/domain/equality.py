"""Equality monitoring: are households of one group flagged more often than the rest?

Hexagon (Appendix 1, "Equality Impact Assessment": "identify if any protected group has been
disproportionately represented") and Teign 11 ("the characteristics of customers will be recorded
and monitored to ensure no group or individual is discriminated against").

Input: aggregate counts only, one row per characteristic and group, from the landlord's housing
database (the equality query): `households` in the group and `flagged_households` among them. The
groups of one characteristic partition the households (every household in exactly one group,
including a "Not recorded" group), so the characteristic's totals are the sums over its groups.

The statistic is the **rate ratio** (relative risk) of being flagged inside the group versus
outside it:

    a = flagged in the group,          n1 = households in the group
    c = flagged outside the group,     n0 = households outside the group   (c = F - a, n0 = N - n1)
    RR = (a / n1) / (c / n0)

with the 95% confidence interval by the log method (Katz 1978):

    SE(ln RR) = sqrt(1/a - 1/n1 + 1/c - 1/n0),   CI = exp(ln RR -/+ 1.96 * SE)

The group and the rest are disjoint, so the two rates are independent binomial proportions, which
the Katz interval assumes. The other common figure, the group's share of flagged households over
its share of all households ((a/F) / (n1/N)), compares the group with a population that contains
it (RR against everyone), so its two proportions are not independent and the Katz interval does
not apply to it. A group is flagged as over-represented when the whole interval lies above 1.

Suppression (small counts, under 5): in each group the cells are the flagged and the not-flagged
households. A group with fewer than 5 households is hidden entirely; a group with fewer than 5
flagged, or fewer than 5 not flagged, households shows only its household count. The rates, ratio
and interval of a group are shown only when its flagged count is. Because the characteristic's
totals are published, a single hidden cell in a column could be recovered by subtraction, so
within each characteristic every column (households, flagged) hides either no cell or at least
two: when only one is hidden, the smallest other cell in that column is hidden too (secondary
suppression), repeated until that holds. A total under 5 is hidden as well. This is the standard
"no lone suppressed cell" rule, not an audit of every linear combination of the published figures.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from statistics import NormalDist
from typing import Any

EQUALITY_COLUMNS: tuple[str, ...] = ("characteristic", "group_label", "households", "flagged_households")
SUPPRESS_BELOW = 5
CONFIDENCE = 0.95
Z_95 = NormalDist().inv_cdf(1 - (1 - CONFIDENCE) / 2)  # 1.959963984540054

FEWER_HOUSEHOLDS = "fewer than 5 households"
FEWER_FLAGGED = "fewer than 5 flagged households"
FEWER_UNFLAGGED = "fewer than 5 households not flagged"
SECONDARY = "hidden so that another hidden count cannot be worked out from the total"


class EqualityDataError(ValueError):
    """The equality query returned something other than the aggregate counts it must return."""


@dataclass(frozen=True, slots=True)
class GroupCount:
    characteristic: str
    group_label: str
    households: int
    flagged_households: int


@dataclass(frozen=True, slots=True)
class RateRatio:
    ratio: float
    lower: float
    upper: float

    @property
    def wholly_above_one(self) -> bool:
        return self.lower > 1


@dataclass(frozen=True, slots=True)
class GroupResult:
    """One group as published: None where a figure is suppressed or cannot be computed."""

    characteristic: str
    group_label: str
    households: int | None
    flagged_households: int | None
    rate: float | None  # share of the group's households that are flagged
    rate_outside: float | None  # the same share among the characteristic's other households
    ratio: float | None
    lower: float | None
    upper: float | None
    higher: bool  # the 95% interval lies wholly above 1
    suppressed: str  # why figures are hidden ("" when none are)
    note: str = ""  # why a shown group has no ratio (e.g. every flagged household is in it)


@dataclass(frozen=True, slots=True)
class CharacteristicResult:
    characteristic: str
    households: int | None  # the total; None when suppressed
    flagged_households: int | None
    groups: tuple[GroupResult, ...]


def _count(value: Any, *, where: str) -> int:
    if isinstance(value, bool) or value is None:
        raise EqualityDataError(f"{where}: expected a whole number, got {value!r}")
    if isinstance(value, int):
        number = value
    elif isinstance(value, Decimal | float) and value == value and value == int(value):  # PostgreSQL SUM
        number = int(value)
    elif hasattr(value, "item") and isinstance(value.item(), int):  # numpy integers
        number = int(value.item())
    elif isinstance(value, str) and value.strip().isdigit():
        number = int(value.strip())
    else:
        raise EqualityDataError(f"{where}: expected a whole number, got {value!r}")
    if number < 0:
        raise EqualityDataError(f"{where}: a count cannot be negative ({number})")
    return number


def read_counts(columns: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[GroupCount]:
    """Validate the equality query's result: exactly the aggregate columns, one row per group."""
    columns = [str(c).lower() for c in columns]
    if sorted(columns) != sorted(EQUALITY_COLUMNS):
        raise EqualityDataError(
            f"the equality query must return exactly the columns {', '.join(EQUALITY_COLUMNS)} "
            f"(aggregate counts only), not {', '.join(columns) or 'none'}"
        )
    counts: list[GroupCount] = []
    seen: set[tuple[str, str]] = set()
    for number, raw in enumerate(rows, start=1):
        row: Mapping[str, Any] = dict(zip(columns, raw, strict=True))
        characteristic = str(row["characteristic"] or "").strip()
        label = str(row["group_label"] or "").strip()
        if not characteristic or not label:
            raise EqualityDataError(f"equality row {number}: characteristic and group_label are required")
        where = f"equality row {number} ({characteristic}: {label})"
        households = _count(row["households"], where=f"{where} households")
        flagged = _count(row["flagged_households"], where=f"{where} flagged_households")
        if flagged > households:
            raise EqualityDataError(f"{where}: more flagged households ({flagged}) than households ({households})")
        if (characteristic, label) in seen:
            raise EqualityDataError(f"{where}: the group appears twice")
        seen.add((characteristic, label))
        counts.append(GroupCount(characteristic, label, households, flagged))
    return counts


def rate_ratio(a: int, n1: int, c: int, n0: int, *, z: float = Z_95) -> RateRatio | None:
    """(a/n1) / (c/n0) with its Katz log interval; None when undefined (a zero count)."""
    if min(a, n1, c, n0) <= 0 or a > n1 or c > n0:
        return None
    ratio = (a / n1) / (c / n0)
    se = math.sqrt(1 / a - 1 / n1 + 1 / c - 1 / n0)
    return RateRatio(ratio, math.exp(math.log(ratio) - z * se), math.exp(math.log(ratio) + z * se))


def suppression(groups: list[GroupCount]) -> tuple[dict[int, str], set[int], bool, bool]:
    """For one characteristic: (reason by group index for hidden flagged counts, indexes whose
    household count is hidden, total households hidden, total flagged hidden)."""
    reasons: dict[int, str] = {}
    hide_n: set[int] = set()
    for i, g in enumerate(groups):
        if g.households < SUPPRESS_BELOW:
            hide_n.add(i)
            reasons[i] = FEWER_HOUSEHOLDS
        elif g.flagged_households < SUPPRESS_BELOW:
            reasons[i] = FEWER_FLAGGED
        elif g.households - g.flagged_households < SUPPRESS_BELOW:
            reasons[i] = FEWER_UNFLAGGED

    def smallest(exclude: set[int] | dict[int, str], key: str) -> int | None:
        candidates = [i for i in range(len(groups)) if i not in exclude]
        if not candidates:
            return None
        return min(candidates, key=lambda i: (getattr(groups[i], key), groups[i].group_label))

    while True:
        changed = False
        if len(reasons) == 1 and (i := smallest(reasons, "flagged_households")) is not None:
            reasons[i] = SECONDARY
            changed = True
        if len(hide_n) == 1 and (i := smallest(hide_n, "households")) is not None:
            hide_n.add(i)
            reasons.setdefault(i, SECONDARY)
            changed = True
        if not changed:
            break
    total_n = sum(g.households for g in groups)
    total_f = sum(g.flagged_households for g in groups)
    # A lone hidden cell that no other cell can cover (a characteristic of one group) hides the total.
    hide_total_n = total_n < SUPPRESS_BELOW or len(hide_n) == 1
    hide_total_f = total_f < SUPPRESS_BELOW or total_n - total_f < SUPPRESS_BELOW or len(reasons) == 1
    return reasons, hide_n, hide_total_n, hide_total_f


def characteristic_result(characteristic: str, groups: list[GroupCount]) -> CharacteristicResult:
    reasons, hide_n, hide_total_n, hide_total_f = suppression(groups)
    total_n = sum(g.households for g in groups)
    total_f = sum(g.flagged_households for g in groups)
    results = []
    for i, g in enumerate(groups):
        if i in reasons or hide_total_n or hide_total_f:
            results.append(
                GroupResult(
                    characteristic, g.group_label, None if i in hide_n or hide_total_n else g.households,
                    None, None, None, None, None, None, False,
                    reasons.get(i, "hidden with the characteristic's small total"),
                )
            )
            continue
        a, n1 = g.flagged_households, g.households
        c, n0 = total_f - a, total_n - n1
        rr = rate_ratio(a, n1, c, n0)
        note = ""
        if rr is None:
            note = (
                "no households outside this group" if n0 == 0
                else "every flagged household is in this group" if c == 0
                else "no flagged households in this group"
            )
        results.append(
            GroupResult(
                characteristic, g.group_label, n1, a, a / n1, (c / n0) if n0 else None,
                rr.ratio if rr else None, rr.lower if rr else None, rr.upper if rr else None,
                bool(rr and rr.wholly_above_one), "", note,
            )
        )
    return CharacteristicResult(
        characteristic,
        None if hide_total_n else total_n,
        None if hide_total_f else total_f,
        tuple(results),
    )


def equality_report(counts: Iterable[GroupCount]) -> list[CharacteristicResult]:
    """Every characteristic, in the order first seen, its groups in the order given."""
    by_characteristic: dict[str, list[GroupCount]] = {}
    for count in counts:
        by_characteristic.setdefault(count.characteristic, []).append(count)
    return [characteristic_result(name, groups) for name, groups in by_characteristic.items()]


def period_label(as_of: date, period: str) -> str:
    """The reporting period containing `as_of`: '2026-11' (monthly), '2026-Q4', '2026' (annual)."""
    if period == "monthly":
        return f"{as_of:%Y-%m}"
    if period == "quarterly":
        return f"{as_of.year}-Q{(as_of.month - 1) // 3 + 1}"
    if period == "annual":
        return str(as_of.year)
    raise ValueError(f"unknown period {period!r}")
