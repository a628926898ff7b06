"""The operations failure notice: what a failed task tells the `operations` recipients.

Pure: built from plain values (DAG, task, run, try, logical date, the error's type and message,
the log link). The notice goes to the landlord's operations staff by ordinary email, so it must
carry no personal data. An exception's message can quote a source row (a name, an email address,
a postcode), so only its first lines are kept, after `scrub` replaces anything that looks like an
email address, a UK postcode or a quoted value with `[redacted]`. The traceback is never included:
the log link leads to it, behind Airflow's login.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass

REDACTED = "[redacted]"
MAX_ERROR_LINES = 5
MAX_LINE_LENGTH = 300

_EMAIL = re.compile(r"[^\s@<>()\[\],;:'\"]+@[^\s@<>()\[\],;:'\"]+")
# A UK postcode (outward code, optional space, inward code), e.g. "TQ12 4AB", "SW1A 1AA", "m1 1ae".
_POSTCODE = re.compile(r"\b[A-Za-z]{1,2}[0-9][A-Za-z0-9]?\s*[0-9][A-Za-z]{2}\b")
# A quoted value: 'Mrs Jane Doe', "Jane", or its repr with escapes; the quote marks themselves stay out.
_QUOTED = re.compile(r"'(?:[^'\\\n]|\\.)*'|\"(?:[^\"\\\n]|\\.)*\"")


def scrub(text: str) -> str:
    """`text` with email addresses, UK postcodes and quoted values replaced by `[redacted]`."""
    text = _QUOTED.sub(REDACTED, text)
    text = _EMAIL.sub(REDACTED, text)
    return _POSTCODE.sub(REDACTED, text)


def error_lines(message: str, limit: int = MAX_ERROR_LINES) -> list[str]:
    """The first `limit` non-blank lines of an error message, scrubbed and cut to a sane length."""
    lines = [line.rstrip() for line in str(message).splitlines() if line.strip()][:limit]
    out = []
    for line in lines:
        clean = scrub(line)
        out.append(clean if len(clean) <= MAX_LINE_LENGTH else clean[: MAX_LINE_LENGTH - 1] + "…")
    return out


@dataclass(frozen=True, slots=True)
class FailureNotice:
    dag_id: str
    task_id: str
    run_id: str
    try_number: int | None
    logical_date: dt.datetime | None
    error_type: str
    error_message: str
    log_url: str | None
    # A repeat (`failure_notice_due`): the task failed on its previous run too. `last_success` is the
    # logical date of its last successful run (None: none known); `repeat_hours` the window.
    repeat: bool = False
    last_success: dt.datetime | None = None
    repeat_hours: int | None = None

    @property
    def subject(self) -> str:
        failed = "still failing" if self.repeat else "failed"
        return f"cautionflow: {self.dag_id}.{self.task_id} {failed} (run {self.run_id})"

    @property
    def text(self) -> str:
        when = self.logical_date.isoformat() if self.logical_date is not None else "(none: asset-triggered run)"
        lines = error_lines(self.error_message)
        error = "\n".join(f"    {line}" for line in lines) if lines else "    (no message)"
        repeat = ""
        if self.repeat:
            since = (f"since its last successful run ({self.last_success.isoformat()})"
                     if self.last_success is not None else "and no successful run of it is known")
            repeat = (f"It has failed on every run {since}. While it goes on failing, this notice is\n"
                      f"repeated at most once every {self.repeat_hours} hours "
                      "(operations.failure_notice_repeat_hours).\n\n")
        return (
            f"The task {self.task_id} of the DAG {self.dag_id} has failed, with no retries left.\n"
            "\n"
            f"{repeat}"
            f"DAG:          {self.dag_id}\n"
            f"Task:         {self.task_id}\n"
            f"Run:          {self.run_id}\n"
            f"Try:          {self.try_number if self.try_number is not None else 'unknown'}\n"
            f"Logical date: {when}\n"
            f"Error:        {self.error_type}\n"
            f"{error}\n"
            "\n"
            f"Log: {self.log_url or '(no log link: set [api] base_url in the Airflow config)'}\n"
            "\n"
            "Quoted values, email addresses and postcodes in the error are shown as [redacted];\n"
            "the full error and traceback are in the task's log. Fix the cause, then clear the task\n"
            "in Airflow to run it again.\n"
        )


@dataclass(frozen=True, slots=True)
class EarlierRun:
    """One earlier run of the failing task, as Airflow recorded it: its logical date and final state."""

    logical_date: dt.datetime | None
    state: str | None


# Reminder windows are counted from the last success, or from here when none is known.
_NO_SUCCESS_KNOWN = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)


def failure_notice_due(
    *, logical_date: dt.datetime | None, previous: EarlierRun | None, last_success: EarlierRun | None,
    repeat_every: dt.timedelta,
) -> bool:
    """Whether a task's failure is told to operations.

    A failure after a run that did not fail (or with no earlier run known) is always told: a new
    problem. While the task fails run after run (the urgent DAG every 15 minutes while the register
    is unreachable), it is told again once in each `repeat_every` window counted from its last
    success: the failure whose logical date falls in a later window than its previous failed run's.
    By logical dates, so the same runs give the same answer however late they ran or are re-run.
    Without a logical date (a run triggered by an asset), it is always told."""
    if logical_date is None or previous is None or previous.state != "failed" or previous.logical_date is None:
        return True
    origin = last_success.logical_date if last_success is not None and last_success.logical_date else None
    origin = origin or _NO_SUCCESS_KNOWN
    window = repeat_every.total_seconds()  # in seconds: Airflow's dates are pendulum's, whose durations do not `//`

    def index(moment: dt.datetime) -> float:
        return (moment - origin).total_seconds() // window

    return index(logical_date) > index(previous.logical_date)


def failure_notice(
    *,
    dag_id: str,
    task_id: str,
    run_id: str,
    error: BaseException | str | None,
    try_number: int | None = None,
    logical_date: dt.datetime | None = None,
    log_url: str | None = None,
) -> FailureNotice:
    """The notice for a failed task; `error` is the exception (or a description when there is none)."""
    if isinstance(error, BaseException):
        error_type = type(error).__qualname__
        module = type(error).__module__
        if module not in ("builtins", "__main__"):
            error_type = f"{module}.{error_type}"
        message = str(error)
    else:
        error_type, message = "unknown error", str(error or "")
    return FailureNotice(
        dag_id=str(dag_id), task_id=str(task_id), run_id=str(run_id), try_number=try_number,
        logical_date=logical_date, error_type=error_type, error_message=message, log_url=log_url,
    )



# --- the lateness notice: the daily sync has not finished by its deadline --------------------------


@dataclass(frozen=True, slots=True)
class LatenessNotice:
    """The sync for `as_of` had not finished by `deadline`. Only dates and times: no personal data."""

    as_of: dt.date
    deadline: dt.datetime  # aware
    timezone: str
    last_sync_as_of: dt.date | None
    finished_at: dt.datetime | None  # when that day's sync did finish, if it did (late)
    dag_url: str | None

    def _local(self, moment: dt.datetime, fmt: str) -> str:
        from zoneinfo import ZoneInfo

        return moment.astimezone(ZoneInfo(self.timezone)).strftime(fmt)

    @property
    def subject(self) -> str:
        return (f"cautionflow: the sync for {self.as_of.day} {self.as_of:%B %Y} had not finished by "
                f"{self._local(self.deadline, '%H:%M')}")

    @property
    def text(self) -> str:
        if self.finished_at is not None:
            state = f"It finished late, at {self._local(self.finished_at, '%H:%M on %d %B %Y')}."
        else:
            state = "It has not finished yet."
        last = self.last_sync_as_of.isoformat() if self.last_sync_as_of else "never"
        return (
            f"The daily sync of the caution alert register for {self.as_of.isoformat()} had not finished by "
            f"{self._local(self.deadline, '%H:%M on %d %B %Y')} ({self.timezone}). {state}\n"
            "Until it finishes, the register, the review deadlines, the digests and the letters are not\n"
            "up to date: contractors and call handlers still have the previous flag list.\n"
            "\n"
            f"Latest finished sync: as of {last}\n"
            f"DAG: {self.dag_url or 'cautionflow_sync (set [api] base_url in the Airflow config for a link)'}\n"
            "\n"
            "Look at today's cautionflow_sync run in Airflow: a task still running, queued, waiting to\n"
            "retry, or no run at all (is the scheduler up?). If a task fails for good, a failure notice\n"
            "follows separately.\n"
        )


def sync_is_late(finished_at: dt.datetime | None, deadline: dt.datetime) -> bool:
    """True unless the day's sync finished at or before the deadline."""
    return finished_at is None or finished_at > deadline
