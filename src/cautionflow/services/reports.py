"""Reports for managers and operations, written as files (CSV, and HTML for people).

Files are written to a temporary name and renamed, so a reader never sees half a report and a
rerun of the same day replaces the file with identical content. Every CSV goes through the one
writer (`cautionflow.domain.csv_format`): a cell from the source that a spreadsheet would run as a
formula (`=cmd|' /C calc'!A0` in an address) is kept as text, with a BOM so Excel reads UTF-8.

A value the register does not hold is a blank cell, in the CSV and the HTML alike (as in the SSRS
report they copy: a blank review completion date means never reviewed), except where a blank would
mislead: the contact name says whose alert it is ("(household)", "(address alert)", "(name not
recorded)") and a missing code reads "Unknown code (not recorded)". Rows come out of the frame
through `frames.plain_records`, never as pandas' NaN, so no cell ever reads "nan".
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from cautionflow.adapters.database import stored_date
from cautionflow.adapters.files import shown_path, write_atomically, write_csv
from cautionflow.adapters.templates import short_date
from cautionflow.domain.codes import ALERT_CODES
from cautionflow.frames import plain_records, text

if TYPE_CHECKING:
    import pandas as pd

    from cautionflow.domain.policy import PolicyProfile

# The columns of the "All Alerts" SSRS report (Teign Appendix F), then cautionflow's own.
ALL_ALERTS_COLUMNS = (
    "Contact Name", "Group Name", "Asset Reference", "Asset Address", "Effective From Date", "Review Period",
    "Latest Review Completion Date", "Review Due Date", "Review Last Evaluated", "Overdue",
    "Alert ID", "Area", "Problem",
)
# Whose alert it is, when the register holds no name.
_NO_NAME = {"household": "(household)", "address": "(address alert)"}
OVERDUE_COLUMNS = ("alert_id", "alert_code", "area", "asset_ref", "address", "review_due", "days_overdue")


def _period(months: int | None) -> str:
    if months is None:
        return ""
    return f"{months} Month" if months == 1 else f"{months} Months"


def all_alerts_rows(frame: pd.DataFrame, profile: PolicyProfile, as_of: dt.date) -> list[dict[str, str]]:
    rows = []
    for r in plain_records(frame):
        code = ALERT_CODES.get(r.alert_code or "")
        address = ", ".join(p for p in (r.address, r.postcode) if p)
        rows.append(
            {
                "Contact Name": r.person_name or _NO_NAME.get(r.subject_type, "(name not recorded)"),
                "Group Name": f"{code.title} ({code.code})" if code else f"Unknown code ({r.alert_code or 'not recorded'})",
                "Asset Reference": text(r.asset_ref),
                "Asset Address": address,
                "Effective From Date": short_date(stored_date(r.effective_from)),
                "Review Period": _period(profile.review.interval_for(code.code)) if code else "",
                "Latest Review Completion Date": short_date(stored_date(r.last_reviewed_on)),
                "Review Due Date": short_date(r.review_due),
                "Review Last Evaluated": short_date(as_of),
                "Overdue": "Yes" if r.overdue else "No",
                "Alert ID": text(r.alert_id),
                "Area": text(r.area),
                "Problem": text(r.error),
            }
        )
    return rows


def write_all_alerts_report(
    frame: pd.DataFrame,
    profile: PolicyProfile,
    folder: Path,
    *,
    as_of: dt.date,
    organisation: str,
    render: Callable[..., str] | None,
) -> dict[str, str]:
    rows = all_alerts_rows(frame, profile, as_of)
    csv_path = write_csv(folder / f"all-alerts-{as_of.isoformat()}.csv", ALL_ALERTS_COLUMNS, rows)
    written = {"all_alerts_csv": shown_path(csv_path)}
    if render is not None:
        html = render(
            "reports/all_alerts.html",
            organisation=organisation,
            as_of=as_of,
            policy=profile.name,
            columns=ALL_ALERTS_COLUMNS,
            rows=rows,
            overdue=sum(1 for r in rows if r["Overdue"] == "Yes"),
        )
        html_path = folder / f"all-alerts-{as_of.isoformat()}.html"
        write_atomically(html_path, html)
        written["all_alerts_html"] = shown_path(html_path)
    return written


def write_overdue_list(frame: pd.DataFrame, folder: Path, *, as_of: dt.date) -> dict[str, str]:
    """The reviews operations must chase: due before the as-of date and not yet done."""
    overdue = frame.loc[frame["overdue"]].sort_values("review_due", kind="stable")
    rows = (
        # days overdue is a number we compute, so it stays a number a spreadsheet can sort
        [text(r.alert_id), text(r.alert_code), text(r.area), text(r.asset_ref), text(r.address),
         r.review_due.isoformat(), (as_of - r.review_due).days]
        for r in plain_records(overdue)
    )
    path = write_csv(folder / f"overdue-reviews-{as_of.isoformat()}.csv", OVERDUE_COLUMNS, rows)
    return {"overdue_csv": shown_path(path)}
