"""The sync's guards: a read that would lift many warnings at once is refused, never applied.

Safety first (policies README, "Principles": a warning about a risk to staff always reaches the
people who visit). A broken export looks to the merge like alerts leaving the source: a mis-mapped
`alert_id` column (every row quarantined), a query that returns one row, an `area` column emptied
by a bad join. Applied, it would lift every warning in the next digests. So before anything is
written the sync counts the active alerts the read would **end** (left the source, or ended in
it) or take out of **every contractor's view** (their area emptied or in no contractor's areas,
where a contractor saw them before), and refuses when they are more than a share *and* more than
a number of the active alerts (`sync.mass_end_share`, `sync.mass_end_minimum`): both, so a small
register's ordinary day (two of ten alerts ending) still goes through. A read with no identifiable
row while alerts are active is refused whatever the numbers: it is never a clean-up. Only
identifiable rows count as present: a row quarantined for a missing `alert_id` keeps nothing
alive, so the alerts it stood for count as ending. An officer who means a real clean-up confirms
it (`--allow-mass-end`, or the DAG's `allow_mass_end` param).

Contractor coverage: a contractor is told only about alerts in the areas it works in (Karbon
7.1-7.2, Dover 6.31, Hexagon 1.2). An active alert whose area no contractor covers, or that has no
area, reaches no contractor at all: it is flagged "no contractor will be told" so that the register
page and `status` show it. The flag is part of the row's fingerprint (`coverage_fingerprint`), so a
change to the contractors' areas in the config sets or clears it at the next sync.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

NO_CONTRACTOR = "no contractor will be told"
# Mixed into the row fingerprint of a row carrying the coverage flag: flagging or unflagging a row
# (the contractors' areas changed) is then a change the merge writes, like any other.
_COVERAGE_SALT = np.int64(0x5AFE_C0DE_0BAD_A7EA)


@dataclass(frozen=True)
class MassEndLimit:
    """Refuse a sync that would end (or hide from every contractor) more than `share` of the active
    alerts and more than `minimum` of them."""

    share: float = 0.10
    minimum: int = 5


@dataclass(frozen=True)
class MassEndCheck:
    """What one read would do to the active alerts, and why, before anything is written."""

    active_before: int
    ended_in_source: int
    left_source: int
    out_of_view: int
    """Active alerts a contractor saw that would stay active but leave every contractor's view."""
    read: int
    identifiable: int
    quarantine_reasons: tuple[tuple[str, int], ...] = ()
    """Why rows of this read were quarantined, most frequent first."""

    @property
    def ending(self) -> int:
        return self.ended_in_source + self.left_source

    @property
    def losing(self) -> int:
        """Active alerts that would stop reaching the people who visit."""
        return self.ending + self.out_of_view

    def nothing_identifiable(self) -> bool:
        """No row of the read could be kept, and active alerts would end: always refused (an alert
        whose id is quarantined keeps its last good version, so it is not among them)."""
        return self.identifiable == 0 and self.losing > 0

    def exceeds(self, limit: MassEndLimit) -> bool:
        if self.nothing_identifiable():
            return True
        return self.losing > limit.minimum and self.losing > limit.share * self.active_before

    def message(self, limit: MassEndLimit) -> str:
        """One line: how many would end or leave the contractors' view, of how many, why, and what to do."""
        what = []
        if self.ending:
            what.append("end")
        if self.out_of_view:
            what.append("take out of every contractor's view")
        headline = f"the sync would {' and '.join(what) or 'end'} {self.losing} of {self.active_before} active alerts"
        if not self.nothing_identifiable():
            headline += f" (the limit is {limit.share:.0%} and {limit.minimum})"
        return (
            f"{headline}: {'; '.join(self.reasons())}. Refusing to write anything: check the source query; "
            "if this is a real clean-up, rerun with --allow-mass-end"
        )

    def reasons(self) -> list[str]:
        found = []
        if self.read == 0:
            found.append("the housing database returned no rows")
        for reason, rows in self.quarantine_reasons[:3]:
            found.append(f"{rows} of {self.read} rows read were quarantined ({reason})")
        if self.left_source:
            found.append(
                f"{self.left_source} active alerts are not among the {self.identifiable} identifiable rows read"
            )
        if self.ended_in_source:
            found.append(f"{self.ended_in_source} ended in the source")
        if self.out_of_view:
            found.append(
                f"{self.out_of_view} a contractor saw would have an area that is empty or in no contractor's areas"
            )
        return found


def quarantine_reasons(reasons: Iterable[str | None]) -> tuple[tuple[str, int], ...]:
    """Each quarantine reason of a read with its count, most frequent first (a row quarantined for
    two reasons counts under both; "duplicate alert_id in one read (2 rows)" counts as one reason)."""
    counts: Counter[str] = Counter()
    for joined in reasons:
        for reason in (joined or "").split("; "):
            if reason:
                counts[re.sub(r" \(\d+ rows\)$", "", reason)] += 1
    return tuple(sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def contractor_areas(recipients: Iterable[object]) -> frozenset[str] | None:
    """The areas some contractor covers, or None when the config names no contractor (then nobody
    is told by area, by design, and the coverage check is off)."""
    contractors = [r for r in recipients if getattr(r, "role", None) == "contractor"]
    if not contractors:
        return None
    return frozenset(str(area).strip().upper() for r in contractors for area in r.areas)


def coverage_problem(area: object, covered: frozenset[str]) -> str | None:
    """The data-quality flag of an active alert in `area` that no contractor covers; None when one does."""
    if area is None:
        return f"area: missing, {NO_CONTRACTOR}"
    if str(area).strip().upper() not in covered:
        return f"area: no contractor covers '{area}', {NO_CONTRACTOR}"
    return None


def leaving_candidates(updates: pd.DataFrame, covered: frozenset[str]) -> list[str]:
    """Ids of the planned updates that stay active but whose new area no contractor covers: they
    leave every contractor's view if a contractor covered their stored area (`seen_before`)."""
    if not len(updates):
        return []
    stays_active = (updates["old_state"] == "active") & (updates["register_state"] == "active")
    hidden = updates["area"].map(lambda area: coverage_problem(area, covered) is not None).astype(bool)
    return updates.loc[stays_active & hidden, "alert_id"].tolist()


def seen_before(stored_areas: Iterable[object], covered: frozenset[str]) -> int:
    """How many of these stored areas a contractor covers."""
    return sum(coverage_problem(area, covered) is None for area in stored_areas)


def add_coverage_flags(
    dq_flags: np.ndarray, row_hash: np.ndarray, areas: np.ndarray, active: np.ndarray, covered: frozenset[str]
) -> tuple[np.ndarray, np.ndarray]:
    """The rows' dq_flags and fingerprints with the coverage flag added to each active row whose area
    no contractor covers (new arrays; the inputs are left alone)."""
    distinct, codes = np.unique(np.where(np.equal(areas, None), "", areas).astype(str), return_inverse=True)
    problems = np.array([coverage_problem(area or None, covered) for area in distinct.tolist()], dtype=object)[codes]
    hit = np.flatnonzero(active & ~np.equal(problems, None))
    if not len(hit):
        return dq_flags, row_hash
    flags, hashes = dq_flags.copy(), row_hash.copy()
    for row in hit.tolist():
        flags[row] = problems[row] if flags[row] is None else f"{flags[row]}; {problems[row]}"
    hashes[hit] = coverage_fingerprint(hashes[hit])
    return flags, hashes


def coverage_fingerprint(row_hash: np.ndarray) -> np.ndarray:
    return np.bitwise_xor(row_hash.astype(np.int64), _COVERAGE_SALT)
