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
    from cautionflow.domain.guards import MassEndLimit
    from cautionflow.domain.merge import MergePlan
    from cautionflow.domain.validation import ValidatedBatch


class AlertSource(Protocol):
    def read(self) -> SourceColumns | pd.DataFrame: ...

    def describe(self) -> str: ...


class MassEndError(Exception):
    """The read would end (or take out of every contractor's view) more of the active alerts than
    the guard allows (domain/guards.py): refused before anything is written; one line saying how
    many and why. Retrying reads the same export: only an officer's `--allow-mass-end` changes it."""


class EmptySourceError(MassEndError):
    """The read has no identifiable row while the register has active alerts: refuse to end them all."""


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

# How long a sync waits for another sync of the same register to finish (a million rows take about
# half a minute; a wait this long means the other one is stuck, and its log says why).
SYNC_LOCK_WAIT_SECONDS = 900.0

# Rows validated and loaded at a time by the first sync (enough to keep per-chunk costs small).
FIRST_LOAD_CHUNK = 100_000


def sync_register(
    source: AlertSource, register: Register, *, as_of: dt.date, run_id: str, allow_mass_end: bool = False,
    mass_end: MassEndLimit | None = None,
    contractor_areas: frozenset[str] | None = None, clock: Clock = system_clock, progress: Progress = no_progress,
    lock_wait_seconds: float = SYNC_LOCK_WAIT_SECONDS,
) -> SyncSummary:
    """`clock` stamps the run's `started_at` and `finished_at` in `sync_runs` (the lateness check reads
    them), so a test can say when a sync finished. Rows read, validated and written are logged at INFO
    per stage or chunk, with rates and elapsed time, and reported to `progress` (a bar on a terminal).

    The mass-end guard (domain/guards.py) refuses, with `MassEndError` and nothing written, a read
    that would end or hide from every contractor more active alerts than `mass_end` allows, unless
    `allow_mass_end`. `contractor_areas`: the areas some
    contractor covers (None: no contractor is configured, the coverage check is off)."""
    from cautionflow.domain.guards import MassEndCheck, MassEndLimit, quarantine_reasons
    from cautionflow.domain.merge import plan_merge
    from cautionflow.domain.validation import validate_source_rows

    limit = mass_end or MassEndLimit()

    report = StepProgress("sync", progress, logger=log)
    # One sync at a time, creating the register included: a second waits, then merges into what the
    # first made (two first loads at once once failed the loser on PostgreSQL's "duplicate key").
    with register.sync_lock(wait_seconds=lock_wait_seconds), _garbage_collection_paused():
        started_at = clock()  # after any wait for another sync
        register.migrate(create=True)  # the only place a register is created
        if register.is_empty():
            with register.transaction() as tx:
                # still empty: no other sync got there first
                first = _first_sync(tx, source, as_of=as_of, run_id=run_id, started_at=started_at, clock=clock,
                                    report=report, contractor_areas=contractor_areas) if tx.is_empty() else None
            if first is not None:
                report.done()  # after the commit
                return first
        raw = _read(source, report)
        validating = report.stage("validated", total=_row_count(raw))
        batch = _with_coverage_flags(validate_source_rows(raw), contractor_areas)
        validating.finish(rows=batch.read)
        del raw
        with register.transaction() as tx:
            comparing = report.timed("compared with the register")
            current = tx.current_state()
            active_before = int((current["register_state"] == "active").sum())
            quarantined_ids = set(batch.quarantine["alert_id"].dropna())
            plan = plan_merge(batch.alerts, current, quarantined_ids=quarantined_ids)
            # The guard, before anything is written: raising here rolls the transaction back.
            check = MassEndCheck(
                active_before=active_before,
                ended_in_source=plan.ended - len(plan.left_source),
                left_source=len(plan.left_source),
                out_of_view=_leaving_every_contractor(tx, plan, contractor_areas),
                read=batch.read,
                identifiable=batch.kept,
                quarantine_reasons=quarantine_reasons(batch.quarantine["reason"]),
            )
            if check.exceeds(limit):
                if not allow_mass_end:
                    raise (EmptySourceError if check.nothing_identifiable() else MassEndError)(check.message(limit))
                log.warning("allowed by --allow-mass-end: %s", check.message(limit).split(": ", 1)[0])
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


def _with_coverage_flags(batch: ValidatedBatch, covered: frozenset[str] | None) -> ValidatedBatch:
    """The batch with "no contractor will be told" flagged on each active row whose area no
    contractor covers (domain/guards.py); unchanged when no contractor is configured."""
    import dataclasses

    import numpy as np

    from cautionflow.domain.guards import add_coverage_flags

    if covered is None or not batch.kept:
        return batch
    columns = batch.columns
    active = ~np.equal(columns["status"], "ended")  # the merge's rule (target_state): only "ended" ends
    flags, hashes = add_coverage_flags(columns["dq_flags"], columns["row_hash"], columns["area"], active, covered)
    if flags is columns["dq_flags"]:
        return batch
    return dataclasses.replace(batch, columns={**columns, "dq_flags": flags, "row_hash": hashes})


def _leaving_every_contractor(tx: RegisterTransaction, plan: MergePlan, covered: frozenset[str] | None) -> int:
    """Active alerts a contractor covers today that this read leaves active in no contractor's areas."""
    from cautionflow.domain.guards import leaving_candidates, seen_before

    if covered is None:
        return 0
    ids = leaving_candidates(plan.updates, covered)
    if not ids:
        return 0
    return seen_before((alert["area"] for alert in tx.stored_alerts(ids).values()), covered)


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
    clock: Clock, report: StepProgress, contractor_areas: frozenset[str] | None,
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
        for chunk in chunks:
            batch = _with_coverage_flags(chunk, contractor_areas)
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
        del raw, chunks, chunk, batch  # the rows read are freed (about a second) while the database builds the indexes
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
