"""The operations failure notice: what it says, and that it carries no personal data."""

from __future__ import annotations

import datetime as dt

from cautionflow.domain.operations import REDACTED, error_lines, failure_notice, scrub

PERSONAL = ("Jane Doe", "jane.doe@example.com", "TQ12 4AB", "SW1A1AA")


class SourceRowError(ValueError):
    pass


def _error() -> Exception:
    return SourceRowError(
        "cannot merge row for 'Jane Doe' (jane.doe@example.com) at TQ12 4AB\n"
        'second address "12 Acacia Avenue" postcode SW1A1AA\n'
        "\n"
        "line three\nline four\nline five\nline six must not appear"
    )


def _notice(**changes):
    values = dict(
        dag_id="cautionflow_sync", task_id="sync_register", run_id="manual__2026-11-23T05:30:00+00:00",
        error=_error(), try_number=3, logical_date=dt.datetime(2026, 11, 23, 5, 30, tzinfo=dt.UTC),
        log_url="http://airflow.example/dags/cautionflow_sync/runs/manual__2026-11-23/tasks/sync_register?try_number=3",
    )
    return failure_notice(**{**values, **changes})


def test_the_subject_names_the_dag_task_and_run():
    assert _notice().subject == (
        "cautionflow: cautionflow_sync.sync_register failed (run manual__2026-11-23T05:30:00+00:00)"
    )


def test_the_body_has_the_run_the_error_type_its_first_lines_and_the_log_link():
    text = _notice().text
    for expected in ("DAG:          cautionflow_sync", "Task:         sync_register",
                     "Run:          manual__2026-11-23T05:30:00+00:00", "Try:          3",
                     "Logical date: 2026-11-23T05:30:00+00:00",
                     f"Error:        {__name__}.SourceRowError",
                     "http://airflow.example/dags/cautionflow_sync/runs/manual__2026-11-23/tasks/sync_register"
                     "?try_number=3",
                     "line three", "line five"):
        assert expected in text, expected
    assert "line six" not in text  # only the first five (non-blank) lines


def test_no_personal_data_reaches_the_notice():
    notice = _notice()
    for value in (*PERSONAL, "Acacia"):
        assert value not in notice.text and value not in notice.subject, value
    assert f"cannot merge row for {REDACTED} ({REDACTED}) at {REDACTED}" in notice.text


def test_scrub_removes_emails_postcodes_and_quoted_values_and_keeps_the_rest():
    assert scrub("no such table: caution_alerts_export") == "no such table: caution_alerts_export"
    assert scrub("alert_id 'A-0042' duplicated") == f"alert_id {REDACTED} duplicated"
    assert scrub('name "O\\"Brien" bad') == f"name {REDACTED} bad"
    assert scrub("send to ops@example.org failed") == f"send to {REDACTED} failed"
    for postcode in ("TQ12 4AB", "M1 1AE", "sw1a 1aa", "EC1A1BB", "B33 8TH"):
        assert scrub(f"at {postcode}.") == f"at {REDACTED}.", postcode
    # A database URL's credentials look like an address: scrubbed too.
    assert "s3cret" not in scrub("could not connect to postgresql://cf:s3cret@db.example:5432/register")


def test_error_lines_are_limited_and_shortened():
    lines = error_lines("x" * 1000 + "\n" + "\n".join(f"line {i}" for i in range(10)))
    assert len(lines) == 5 and len(lines[0]) == 300 and lines[-1] == "line 3"


def test_a_missing_exception_or_date_still_gives_a_notice():
    notice = _notice(error=None, logical_date=None, log_url=None, try_number=None)
    assert "Error:        unknown error" in notice.text
    assert "(no message)" in notice.text and "asset-triggered" in notice.text
    assert "no log link" in notice.text


def test_builtin_exception_types_are_not_prefixed():
    assert _notice(error=FileNotFoundError("gone")).error_type == "FileNotFoundError"


# --- repeats: a task failing run after run (the urgent DAG every 15 minutes, day and night) -------

QUARTER = dt.timedelta(minutes=15)
FOUR_HOURS = dt.timedelta(hours=4)
SUCCESS_AT = dt.datetime(2026, 11, 23, 1, 0, tzinfo=dt.UTC)  # the last run that worked


def _due(at, previous_state="failed", previous_at=None, success_at=SUCCESS_AT, repeat=FOUR_HOURS):
    from cautionflow.domain.operations import EarlierRun, failure_notice_due

    previous = None if previous_state is None else EarlierRun(previous_at or at - QUARTER, previous_state)
    last_success = None if success_at is None else EarlierRun(success_at, "success")
    return failure_notice_due(logical_date=at, previous=previous, last_success=last_success, repeat_every=repeat)


def test_a_failure_after_a_run_that_did_not_fail_is_always_told():
    at = SUCCESS_AT + QUARTER
    assert _due(at, previous_state="success")
    assert _due(at, previous_state="upstream_failed")
    assert _due(at, previous_state=None)  # the task's first run
    assert _due(None, previous_at=SUCCESS_AT)  # an asset-triggered run has no logical date


def test_a_failing_quarter_hourly_task_is_told_at_once_then_once_every_window():
    """Four days of a register unreachable from 01:15: one notice at 01:15, then one in each
    four-hour window counted from the last success (05:00, 09:00, ...), not 96 a day."""
    runs = [SUCCESS_AT + QUARTER * n for n in range(1, 4 * 24 * 4 + 1)]
    told = [at for n, at in enumerate(runs) if _due(at, "success" if n == 0 else "failed")]
    assert told[:3] == [SUCCESS_AT + QUARTER, SUCCESS_AT + FOUR_HOURS, SUCCESS_AT + 2 * FOUR_HOURS]
    assert len(told) == 1 + 4 * 6  # 01:15, then at 05:00, 09:00, ... six windows a day for four days
    assert all(b - a == FOUR_HOURS for a, b in zip(told[1:], told[2:], strict=False))


def test_a_daily_task_failing_every_day_is_told_every_day():
    day = dt.timedelta(days=1)
    assert _due(SUCCESS_AT + 2 * day, previous_at=SUCCESS_AT + day)


def test_with_no_success_known_the_windows_still_come_round():
    at = dt.datetime(2026, 11, 23, 8, 0, tzinfo=dt.UTC)  # 08:00 UTC starts a window counted from 1970
    assert _due(at, previous_at=at - QUARTER, success_at=None)
    assert not _due(at + QUARTER, previous_at=at, success_at=None)


def test_a_repeat_says_so_and_since_when():
    from dataclasses import replace

    notice = replace(_notice(), repeat=True, last_success=SUCCESS_AT, repeat_hours=4)
    assert notice.subject == (
        "cautionflow: cautionflow_sync.sync_register still failing (run manual__2026-11-23T05:30:00+00:00)"
    )
    assert "It has failed on every run since its last successful run (2026-11-23T01:00:00+00:00)" in notice.text
    assert "at most once every 4 hours (operations.failure_notice_repeat_hours)" in notice.text
    unknown = replace(notice, last_success=None)
    assert "It has failed on every run and no successful run of it is known" in unknown.text


def test_airflows_pendulum_dates_count_windows_too():
    """The Task SDK hands over pendulum DateTimes, whose differences are pendulum durations."""
    import pendulum

    from cautionflow.domain.operations import EarlierRun, failure_notice_due

    success = EarlierRun(pendulum.datetime(2026, 11, 23, 1, 0, tz="UTC"), "success")
    previous = EarlierRun(pendulum.datetime(2026, 11, 23, 4, 45, tz="UTC"), "failed")
    for minutes, told in ((0, False), (15, True)):  # 04:45 is in the first window, 05:00 opens the next
        at = pendulum.datetime(2026, 11, 23, 4, 45, tz="UTC").add(minutes=minutes)
        assert failure_notice_due(logical_date=at, previous=previous if minutes else EarlierRun(
            pendulum.datetime(2026, 11, 23, 4, 30, tz="UTC"), "failed"), last_success=success,
            repeat_every=FOUR_HOURS) is told
