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
