"""The daily sync: read the housing database, validate every row, merge into the register.

Every row read is counted exactly once: inserted, updated, unchanged or quarantined
(flagged rows are among the first three). `ended` counts alerts that stopped being active.
"""

from __future__ import annotations

import datetime as dt
import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import pandas as pd

    from cautionflow.adapters.register import Register, RegisterTransaction
    from cautionflow.domain.contract import SourceColumns


class AlertSource(Protocol):
    def read(self) -> SourceColumns | pd.DataFrame: ...

    def describe(self) -> str: ...


class EmptySourceError(Exception):
    """The source returned nothing while the register has active alerts: refuse to end them all."""


@dataclass(frozen=True)
class SyncSummary:
    step: str
    as_of: str
    run_id: str
    read: int
    inserted: int
    updated: int
    unchanged: int
    ended: int
    quarantined: int
    flagged: int
    active: int

    def as_dict(self) -> dict[str, object]:
        return asdict(self)


# Rows validated and loaded at a time by the first sync (enough to keep per-chunk costs small).
FIRST_LOAD_CHUNK = 100_000


def sync_register(
    source: AlertSource, register: Register, *, as_of: dt.date, run_id: str, allow_empty_source: bool = False
) -> SyncSummary:
    from cautionflow.domain.merge import plan_merge
    from cautionflow.domain.validation import validate_source_rows

    started_at = dt.datetime.now(dt.UTC)
    with _garbage_collection_paused():
        register.migrate()
        if register.is_empty():
            with register.transaction() as tx:
                if tx.is_empty():  # still: no other sync got there first
                    return _first_sync(tx, source, as_of=as_of, run_id=run_id, started_at=started_at)
        batch = validate_source_rows(source.read())
        with register.transaction() as tx:
            current = tx.current_state()
            active_before = int((current["register_state"] == "active").sum())
            if batch.read == 0 and active_before and not allow_empty_source:
                raise EmptySourceError(
                    f"the housing database returned no rows; refusing to end {active_before} active alert(s). "
                    "Check the source query; if the register really should be emptied, rerun with --allow-empty-source"
                )
            quarantined_ids = set(batch.quarantine["alert_id"].dropna())
            plan = plan_merge(batch.alerts, current, quarantined_ids=quarantined_ids)
            tx.apply(plan, run_id=run_id, as_of=as_of)
            tx.record_quarantine(batch.quarantine, run_id=run_id, as_of=as_of)
            became_active = int((plan.inserts["register_state"] == "active").sum()) + int(
                (plan.updates["change"] == "reopened").sum() if len(plan.updates) else 0
            )
            summary = SyncSummary(
                step="sync",
                as_of=as_of.isoformat(),
                run_id=run_id,
                read=batch.read,
                inserted=len(plan.inserts),
                updated=len(plan.updates),
                unchanged=plan.unchanged,
                ended=plan.ended,
                quarantined=len(batch.quarantine),
                flagged=batch.flagged,
                active=active_before + became_active - plan.ended,
            )
            tx.record_run(run_id=run_id, as_of=as_of, started_at=started_at, summary=summary.as_dict())
    return summary


def _first_sync(
    tx: RegisterTransaction, source: AlertSource, *, as_of: dt.date, run_id: str, started_at: dt.datetime
) -> SyncSummary:
    """The first sync of an empty register: each chunk is loaded as soon as it is validated."""
    import pandas as pd

    from cautionflow.domain.merge import target_state
    from cautionflow.domain.validation import validate_in_chunks

    raw = source.read()
    chunks = validate_in_chunks(raw, rows_per_chunk=FIRST_LOAD_CHUNK)  # checks the shape first
    read = inserted = flagged = active = 0
    quarantined = []
    with tx.first_load(run_id=run_id, as_of=as_of) as load:
        for batch in chunks:
            if batch.kept:
                load.add(batch)
            read, inserted, flagged = read + batch.read, inserted + batch.kept, flagged + batch.flagged
            state, _ = target_state(pd.Series(batch.columns["status"], dtype=object))
            active += int((state == "active").sum())
            quarantined.append(batch.quarantine)
        load.build_indexes()
        del raw, chunks, batch  # the rows read are freed (about a second) while the database builds the indexes
    quarantine = pd.concat(quarantined, ignore_index=True)
    tx.record_quarantine(quarantine, run_id=run_id, as_of=as_of)
    summary = SyncSummary(
        step="sync",
        as_of=as_of.isoformat(),
        run_id=run_id,
        read=read,
        inserted=inserted,
        updated=0,
        unchanged=0,
        ended=0,
        quarantined=len(quarantine),
        flagged=flagged,
        active=active,
    )
    tx.record_run(run_id=run_id, as_of=as_of, started_at=started_at, summary=summary.as_dict())
    return summary


@contextmanager
def _garbage_collection_paused() -> Iterator[None]:
    """A sync builds millions of objects that all live until it ends: collecting over them again and
    again finds nothing to free and costs seconds at a million rows. Reference counting still frees
    everything as usual."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
