"""The daily sync: read the housing database, validate every row, merge into the register.

Every row read is counted exactly once: inserted, updated, unchanged or quarantined
(flagged rows are among the first three). `ended` counts alerts that stopped being active.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Protocol

from cautionflow.clock import Clock, system_clock
from cautionflow.progress import Progress, StepProgress, no_progress

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


log = logging.getLogger(__name__)

# Rows validated and loaded at a time by the first sync (enough to keep per-chunk costs small).
FIRST_LOAD_CHUNK = 100_000


def sync_register(
    source: AlertSource, register: Register, *, as_of: dt.date, run_id: str, allow_empty_source: bool = False,
    clock: Clock = system_clock, progress: Progress = no_progress,
) -> SyncSummary:
    """`clock` stamps the run's `started_at` and `finished_at` in `sync_runs` (the lateness check reads
    them), so a test can say when a sync finished. Rows read, validated and written are logged at INFO
    per stage or chunk, with rates and elapsed time, and reported to `progress` (a bar on a terminal)."""
    from cautionflow.domain.merge import plan_merge
    from cautionflow.domain.validation import validate_source_rows

    started_at = clock()
    report = StepProgress("sync", progress, logger=log)
    with _garbage_collection_paused():
        register.migrate()
        if register.is_empty():
            with register.transaction() as tx:
                # still empty: no other sync got there first
                first = _first_sync(tx, source, as_of=as_of, run_id=run_id, started_at=started_at, clock=clock,
                                    report=report) if tx.is_empty() else None
            if first is not None:
                report.done()  # after the commit
                return first
        raw = _read(source, report)
        validating = report.stage("validated", total=_row_count(raw))
        batch = validate_source_rows(raw)
        validating.finish(rows=batch.read)
        del raw
        with register.transaction() as tx:
            comparing = report.timed("compared with the register")
            current = tx.current_state()
            active_before = int((current["register_state"] == "active").sum())
            if batch.read == 0 and active_before and not allow_empty_source:
                raise EmptySourceError(
                    f"the housing database returned no rows; refusing to end {active_before} active alert(s). "
                    "Check the source query; if the register really should be emptied, rerun with --allow-empty-source"
                )
            quarantined_ids = set(batch.quarantine["alert_id"].dropna())
            plan = plan_merge(batch.alerts, current, quarantined_ids=quarantined_ids)
            comparing.finish()
            writing = report.stage("written")  # a later sync writes only what changed
            tx.apply(plan, run_id=run_id, as_of=as_of)
            tx.record_quarantine(batch.quarantine, run_id=run_id, as_of=as_of)
            writing.finish(rows=len(plan.inserts) + len(plan.updates))
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
            tx.record_run(run_id=run_id, as_of=as_of, started_at=started_at, finished_at=clock(), summary=summary.as_dict())
    report.done()
    return summary


def _read(source: AlertSource, report: StepProgress) -> SourceColumns | pd.DataFrame:
    reading = report.stage("read")
    raw = source.read()
    reading.finish(rows=_row_count(raw))
    return raw


def _row_count(raw: SourceColumns | pd.DataFrame) -> int:
    """Rows in what the source returned (a frame, or columns by name); validation checks its shape."""
    if hasattr(raw, "columns"):  # a DataFrame
        return len(raw)
    return len(next(iter(raw.values()), ()))


def _first_sync(
    tx: RegisterTransaction, source: AlertSource, *, as_of: dt.date, run_id: str, started_at: dt.datetime,
    clock: Clock, report: StepProgress,
) -> SyncSummary:
    """The first sync of an empty register: each chunk is loaded as soon as it is validated."""
    import pandas as pd

    from cautionflow.domain.merge import target_state
    from cautionflow.domain.validation import validate_in_chunks

    raw = _read(source, report)
    chunks = validate_in_chunks(raw, rows_per_chunk=FIRST_LOAD_CHUNK)  # checks the shape first
    read = inserted = flagged = active = 0
    quarantined = []
    # Validating and writing alternate chunk by chunk: each stage reports after every chunk. On
    # PostgreSQL "written" is handed to the helper thread's COPY; it finishes under "indexes built".
    validating = report.stage("validated", total=_row_count(raw))
    writing = report.stage("written")
    with tx.first_load(run_id=run_id, as_of=as_of) as load:
        for batch in chunks:
            validating.advance(batch.read)
            if batch.kept:
                load.add(batch)
            writing.advance(batch.kept, last=validating.finished)  # its total is known only at the end
            read, inserted, flagged = read + batch.read, inserted + batch.kept, flagged + batch.flagged
            state, _ = target_state(pd.Series(batch.columns["status"], dtype=object))
            active += int((state == "active").sum())
            quarantined.append(batch.quarantine)
        writing.finish()
        indexing = report.timed("indexes built")
        load.build_indexes()
        del raw, chunks, batch  # the rows read are freed (about a second) while the database builds the indexes
    indexing.finish()  # leaving first_load waited for the indexes
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
    tx.record_run(run_id=run_id, as_of=as_of, started_at=started_at, finished_at=clock(), summary=summary.as_dict())
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
