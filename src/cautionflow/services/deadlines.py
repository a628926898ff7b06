"""Deadlines for the whole register, stored, counted and reported.

The dates come from the landlord's policy profile through the vectorised engine in
`cautionflow.domain.deadlines`; this step reads the active alerts, replaces the stored
deadlines in one transaction (so a rerun of the same day changes nothing) and writes the
"All Alerts" report (Teign Appendix F) and the overdue list for operations.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.progress import StepProgress

if TYPE_CHECKING:
    import pandas as pd

    from cautionflow.adapters.deadline_store import DeadlineStore
    from cautionflow.domain.policy import PolicyProfile

DUE_SOON_DAYS = 30

log = logging.getLogger(__name__)


class DeadlinesRegister(Protocol):
    """What the deadlines step uses of the register."""

    deadlines: DeadlineStore

    def migrate(self) -> None: ...


@dataclass(frozen=True)
class DeadlinesSummary:
    step: str
    as_of: str
    run_id: str
    policy: str
    alerts: int
    overdue: int
    due_within_30_days: int
    review_window_open: int
    appeals_awaiting_answer: int
    errors: int
    reports: dict[str, str]

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def active_alerts(register: DeadlinesRegister) -> pd.DataFrame:
    return register.deadlines.alerts_to_evaluate()


def alert_deadlines(alerts: pd.DataFrame, profile: PolicyProfile, as_of: dt.date) -> pd.DataFrame:
    """The alerts with the deadline columns appended (dates as `datetime.date` or None)."""
    from cautionflow.domain.deadlines import DATE_OUTPUTS, compute_deadlines

    computed = compute_deadlines(alerts, profile, as_of)
    out = alerts.copy()
    for column in DATE_OUTPUTS:
        out[column] = _to_dates(computed[column])
    out["overdue"] = computed["overdue"].astype(bool).to_numpy()
    out["error"] = computed["error"]
    return out


def _to_dates(values: pd.Series) -> list[dt.date | None]:
    import pandas as pd

    stamps = pd.to_datetime(values)
    return [None if pd.isna(s) else s.date() for s in stamps]


def count_deadlines(frame: pd.DataFrame, as_of: dt.date) -> dict[str, int]:
    from cautionflow.domain.appeals import appeal_is_open
    from cautionflow.domain.deadlines import read_date

    soon = as_of + dt.timedelta(days=DUE_SOON_DAYS)
    due = frame["review_due"]
    opens = frame["review_window_opens"]
    # Open appeals only (received, not decided by the as-of date): the appeals register's rule. A
    # stored answer date alone counted appeals long decided.
    awaiting = sum(
        1 for received, decided in zip(frame["appeal_received_on"], frame["appeal_decided_on"], strict=True)
        if appeal_is_open(read_date(received)[0], read_date(decided)[0], as_of)
    )
    return {
        "alerts": len(frame),
        "overdue": int(frame["overdue"].sum()),
        "due_within_30_days": int(sum(1 for d in due if d is not None and as_of <= d <= soon)),
        "review_window_open": int(
            sum(1 for o, d in zip(opens, due, strict=True) if o is not None and o <= as_of <= d)
        ),
        "appeals_awaiting_answer": awaiting,
        "errors": int(frame["error"].notna().sum()),
    }


def store_deadlines(register: DeadlinesRegister, frame: pd.DataFrame, *, policy: str, as_of: dt.date) -> None:
    """Replace the stored deadlines with this computation, atomically."""
    rows = (
        (
            r.alert_id, policy, _iso(r.review_due), _iso(r.review_window_opens), _iso(r.expires_on),
            _iso(r.appeal_deadline), _iso(r.appeal_response_due), int(bool(r.overdue)), r.error, as_of.isoformat(),
        )
        for r in frame.itertuples(index=False)
    )
    register.deadlines.replace_deadlines(rows)


def _iso(value: dt.date | None) -> str | None:
    return None if value is None else value.isoformat()


def compute_register_deadlines(
    register: DeadlinesRegister, profile: PolicyProfile, *, as_of: dt.date, run_id: str, reports_dir: Path | None = None,
    render: Any = None, organisation: str = "",
) -> DeadlinesSummary:
    from cautionflow.services.reports import write_all_alerts_report, write_overdue_list

    timing = StepProgress("deadlines", logger=log)  # each stage's time at INFO, for the task log
    register.migrate()
    reading = timing.stage("read")
    alerts = active_alerts(register)
    reading.finish(rows=len(alerts))
    computing = timing.stage("computed", total=len(alerts))
    frame = alert_deadlines(alerts, profile, as_of)
    computing.finish(rows=len(frame))
    storing = timing.stage("stored", total=len(frame))
    store_deadlines(register, frame, policy=profile.name, as_of=as_of)
    storing.finish(rows=len(frame))
    reports: dict[str, str] = {}
    if reports_dir is not None:
        with timing.timed("reports written"):
            reports.update(write_all_alerts_report(
                frame, profile, reports_dir, as_of=as_of, organisation=organisation, render=render
            ))
            reports.update(write_overdue_list(frame, reports_dir, as_of=as_of))
    timing.done()
    return DeadlinesSummary(
        step="deadlines", as_of=as_of.isoformat(), run_id=run_id, policy=profile.name,
        reports=reports, **count_deadlines(frame, as_of),
    )
