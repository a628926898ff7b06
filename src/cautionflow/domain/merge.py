"""Planning a sync: what to insert, update, end or leave alone, decided without touching a database.

An alert is active in the register while the source has it and has not ended it. An alert that
leaves the source is ended ("left_source"), except when its id was quarantined in the same read
(e.g. a duplicated id): then the register keeps the last good version, so a warning about a risk
to staff is never lifted by a data error.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import pandas as pd

from cautionflow.domain.validation import HASHED_COLUMNS


@dataclass(frozen=True)
class MergePlan:
    inserts: pd.DataFrame
    """New alerts: validated rows plus `register_state` and `ended_reason`."""
    updates: pd.DataFrame
    """Known alerts whose content or state changed: as inserts, plus `old_state` and `change`."""
    left_source: tuple[str, ...]
    """Ids of active alerts the source no longer returns."""
    unchanged: int

    @property
    def ended(self) -> int:
        became_ended = (self.updates["change"] == "ended").sum() if len(self.updates) else 0
        return int(became_ended) + len(self.left_source)


def target_state(status: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The register state a source status implies, and why an ended alert ended."""
    ended = status == "ended"
    state = pd.Series("active", index=status.index, dtype=object).where(~ended, "ended")
    reason = pd.Series(None, index=status.index, dtype=object).where(~ended, "ended_in_source")
    return state, reason


def plan_merge(
    incoming: pd.DataFrame, current: pd.DataFrame, *, quarantined_ids: set[str] | frozenset[str] = frozenset()
) -> MergePlan:
    """`incoming`: validated alerts with `row_hash`; `current`: alert_id, row_hash, register_state."""
    state, reason = target_state(incoming["status"])
    incoming = incoming.assign(register_state=state, ended_reason=reason)  # copy-on-write: no copy

    known = incoming["alert_id"].isin(current["alert_id"])
    inserts = incoming.loc[~known] if known.any() else incoming

    existing = incoming.loc[known].merge(
        current.rename(columns={"row_hash": "old_hash", "register_state": "old_state"}),
        on="alert_id",
        how="left",
        validate="one_to_one",
    )
    changed = (existing["row_hash"] != existing["old_hash"]) | (existing["register_state"] != existing["old_state"])
    updates = existing.loc[changed].drop(columns=["old_hash"]).reset_index(drop=True)
    updates["change"] = _change_kind(updates["old_state"], updates["register_state"])

    still_active = current.loc[current["register_state"] == "active", "alert_id"]
    gone = still_active[~still_active.isin(incoming["alert_id"]) & ~still_active.isin(quarantined_ids)]
    return MergePlan(
        inserts=inserts.reset_index(drop=True),
        updates=updates,
        left_source=tuple(gone.tolist()),
        unchanged=int((~changed).sum()),
    )


def _change_kind(old_state: pd.Series, new_state: pd.Series) -> pd.Series:
    kind = pd.Series("updated", index=old_state.index, dtype=object)
    kind[(old_state == "active") & (new_state == "ended")] = "ended"
    kind[(old_state == "ended") & (new_state == "active")] = "reopened"
    return kind


def comparable(value: object) -> object:
    """A stored value in the form validation produces, so old and new compare like for like."""
    if value is None or value is pd.NA or (isinstance(value, float) and value != value):
        return None
    if isinstance(value, dt.datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def changed_fields(old: dict[str, object], new: dict[str, object]) -> dict[str, list[object]]:
    """{field: [old, new]} over the fields that define an alert's content."""
    diff: dict[str, list[object]] = {}
    for field in HASHED_COLUMNS:
        before, after = comparable(old.get(field)), comparable(new.get(field))
        if before != after:
            diff[field] = [before, after]
    return diff
