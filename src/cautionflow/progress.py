"""Progress on long work: how a step tells whoever watches it how far it has got.

A service makes a `StepProgress` and reports through it, per chunk or per stage (never per row, so
a report costs microseconds however many rows there are): rows read, validated and written, or a
stage that is only timed. Each report is

- one INFO line through `logging`, on the service's own logger: what the Airflow task log shows
  and what the command line prints on stderr when stderr is not a terminal;
- one `ProgressEvent` to the `Progress` callback the caller passed: `no_progress` by default (a DAG
  task has its log), a progress bar when the command line runs on a terminal.

This module holds no UI code: the command line supplies the bar (see `cautionflow.cli`).
Durations come from a `timer` (monotonic seconds, `time.perf_counter` by default), so a test can
pass its own and see exact rates.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

Timer = Callable[[], float]  # monotonic seconds; only differences between two readings mean anything

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ProgressEvent:
    """One report: `kind` is "started" when a stage begins (not logged: nothing is done yet),
    "advanced" after a chunk, "finished" when the stage is done, and "done" for the whole step."""

    step: str
    stage: str  # a past participle, so the line reads well: "read", "validated", "written", "indexes built"
    kind: Literal["started", "advanced", "finished", "done"]
    rows: int | None  # rows done so far in the stage; None for a stage that is only timed
    total: int | None  # rows the stage will do, when known
    stage_seconds: float  # since the stage began
    elapsed: float  # since the step began
    unit: str = "rows"  # what `rows` counts, as the line says it

    @property
    def rate(self) -> float | None:
        """Rows (units) per second over the stage so far; None without rows or time to divide by."""
        if self.rows is None or self.stage_seconds <= 0:
            return None
        return self.rows / self.stage_seconds

    def message(self) -> str:
        """The line logged, e.g. `sync: validated 100,000 of 250,000 rows (61,250 rows/s); 4.1 s elapsed`."""
        if self.kind == "done":
            return f"{self.step}: done in {self.elapsed:.1f} s"
        unit = self.unit
        rate = "" if self.rate is None else f" ({self.rate:,.0f} {unit}/s)"
        if self.rows is None:
            what = f"{self.stage} in {self.stage_seconds:.1f} s"
        elif self.kind == "finished":
            what = f"{self.stage} {self.rows:,} {unit} in {self.stage_seconds:.1f} s{rate}"
        elif self.total is not None:
            what = f"{self.stage} {self.rows:,} of {self.total:,} {unit}{rate}"
        else:
            what = f"{self.stage} {self.rows:,} {unit} so far{rate}"
        return f"{self.step}: {what}; {self.elapsed:.1f} s elapsed"


Progress = Callable[[ProgressEvent], None]


def no_progress(event: ProgressEvent) -> None:
    """The default: nobody watches but the log."""


class StepProgress:
    """The reporter a service makes for one run of a step."""

    def __init__(
        self, step: str, progress: Progress = no_progress, *, logger: logging.Logger | None = None,
        timer: Timer = time.perf_counter,
    ) -> None:
        self.step = step
        self._progress = progress
        self._log = logger or log
        self._timer = timer
        self._began = timer()

    def stage(self, name: str, *, total: int | None = None, rows: bool = True, unit: str = "rows") -> Stage:
        """Begin a stage; `rows=False` for one that is only timed (it reports when finished)."""
        stage = Stage(self, name, total=total, counts_rows=rows, unit=unit)
        self._emit(stage, "started")
        return stage

    def timed(self, name: str) -> Stage:
        """A stage measured in time only: `with progress.timed("reports written"): ...` logs it when done.
        Nothing is logged when the stage fails: the error says what happened."""
        return self.stage(name, rows=False)

    def done(self) -> None:
        """The step has finished (its transaction committed): one line with the step's whole time."""
        elapsed = self._timer() - self._began
        self._report(ProgressEvent(self.step, "", "done", None, None, elapsed, elapsed))

    def _emit(self, stage: Stage, kind: Literal["started", "advanced", "finished"]) -> None:
        now = self._timer()
        self._report(ProgressEvent(
            step=self.step, stage=stage.name, kind=kind, rows=stage.rows if stage.counts_rows else None,
            total=stage.total, stage_seconds=now - stage.began, elapsed=now - self._began, unit=stage.unit,
        ))

    def _report(self, event: ProgressEvent) -> None:
        self._progress(event)  # first, so a bar already shows it when the console filters the log line
        if event.kind != "started":
            self._log.info("%s", event.message(), extra={"progress_event": event})


class Stage:
    """One stage of a step: `advance(rows)` after each chunk; `finish()` at the end (a stage whose
    `total` is reached finishes by itself; finishing twice reports once)."""

    def __init__(self, owner: StepProgress, name: str, *, total: int | None, counts_rows: bool, unit: str) -> None:
        self.name = name
        self.total = total
        self.counts_rows = counts_rows
        self.unit = unit
        self.rows = 0
        self.finished = False
        self._owner = owner
        self.began = owner._timer()

    def advance(self, rows: int, *, last: bool = False) -> None:
        """`rows` more are done; `last` when the caller knows this was the final chunk."""
        self.rows += rows
        if last or (self.total is not None and self.rows >= self.total):
            self.finish()
        else:
            self._owner._emit(self, "advanced")

    def finish(self, *, rows: int | None = None) -> None:
        """End the stage; `rows` sets the count when it is only known at the end."""
        if rows is not None:
            self.rows = rows
        if not self.finished:
            self.finished = True
            self._owner._emit(self, "finished")

    def __enter__(self) -> Stage:
        return self

    def __exit__(self, exc_type: object, *_: object) -> None:
        if exc_type is None:
            self.finish()
