"""The progress seam (issue 12): what a step reports, how the line reads, and the terminal's bars."""

from __future__ import annotations

import io
import logging

import pytest

from cautionflow.cli import TerminalProgress
from cautionflow.progress import ProgressEvent, StepProgress, no_progress


class Ticks:
    """A timer that reads the given seconds in turn (time is an input: no real clock)."""

    def __init__(self, *readings: float) -> None:
        self.readings = list(readings)

    def __call__(self) -> float:
        return self.readings.pop(0)


def test_each_chunk_reports_rows_rate_and_elapsed_and_the_stage_finishes_at_its_total(caplog):
    seen: list[ProgressEvent] = []
    # step begins at 10; stage begins at 11 (read twice: the stage, its "started" event); chunks at 13, 15
    timer = Ticks(10.0, 11.0, 11.0, 13.0, 15.0, 16.0)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        report = StepProgress("sync", seen.append, logger=logging.getLogger("test.progress"), timer=timer)
        stage = report.stage("validated", total=300)
        stage.advance(100)
        stage.advance(200)
        stage.finish()  # already finished at its total: reported once
        report.done()

    assert [(e.kind, e.rows, e.total) for e in seen] == [
        ("started", 0, 300), ("advanced", 100, 300), ("finished", 300, 300), ("done", None, None),
    ]
    assert [r.getMessage() for r in caplog.records] == [
        "sync: validated 100 of 300 rows (50 rows/s); 3.0 s elapsed",
        "sync: validated 300 rows in 4.0 s (75 rows/s); 5.0 s elapsed",
        "sync: done in 6.0 s",
    ]
    assert {r.levelno for r in caplog.records} == {logging.INFO}
    assert caplog.records[0].progress_event is seen[1]  # the console can tell a bar already shows it


def test_a_count_known_only_at_the_end_and_a_timed_stage(caplog):
    timer = Ticks(0.0, 0.0, 0.0, 2.0, 2.0, 2.0, 2.5, 3.0, 3.0, 3.0)
    with caplog.at_level(logging.INFO, logger="test.progress"):
        report = StepProgress("letters", logger=logging.getLogger("test.progress"), timer=timer)
        rendering = report.stage("rendered", unit="letters")
        rendering.finish(rows=1_250)
        with report.timed("queued"):
            pass
        failing = report.timed("never logged")
        with pytest.raises(RuntimeError), failing:
            raise RuntimeError("a failed stage is told by its error, not by a progress line")
    assert [r.getMessage() for r in caplog.records] == [
        "letters: rendered 1,250 letters in 2.0 s (625 letters/s); 2.0 s elapsed",
        "letters: queued in 0.5 s; 2.5 s elapsed",
    ]


def test_no_rate_without_time_and_the_default_watches_nothing():
    event = ProgressEvent("sync", "read", "finished", rows=5, total=None, stage_seconds=0.0, elapsed=0.0)
    assert event.rate is None
    assert event.message() == "sync: read 5 rows in 0.0 s; 0.0 s elapsed"
    assert no_progress(event) is None


def test_the_terminal_bars_show_counted_stages_only():
    stream = io.StringIO()
    bars = TerminalProgress(stream)
    started = ProgressEvent("sync", "validated", "started", rows=0, total=3, stage_seconds=0.0, elapsed=0.0)
    finished = ProgressEvent("sync", "validated", "finished", rows=3, total=3, stage_seconds=1.0, elapsed=1.0)
    timed = ProgressEvent("sync", "indexes built", "finished", rows=None, total=None, stage_seconds=1.0, elapsed=2.0)
    for event in (started, finished, timed):
        bars(event)
    bars.close()
    assert "sync: validated: 100%" in stream.getvalue()
    assert "indexes built" not in stream.getvalue()  # its log line says it
    assert bars.shows(finished) and not bars.shows(timed) and not bars.shows(None)
