"""Governance reports: equality monitoring and the lists officers need.

- **Equality monitoring** (Hexagon Appendix 1, Teign 11): from the optional equality query's
  aggregate counts (never stored in the register), the rate ratio of being flagged in each group
  versus the rest, its 95% interval and small-count suppression (`cautionflow.domain.equality`).
- **Feedback survey exclusions** (Wandle 5.0): tenancy references with an active alert whose code
  restricts contact (`AlertCode.restricts_contact`: CM, SPOC), and nothing else (minimum disclosure);
  the rule is `cautionflow.domain.surveys`, which also decides the letters' survey sentence.
- **Non-notification decisions to reconsider**: active alerts with `notify_resident = 0`, the
  recorded reason or its absence, and the days since the decision (the last review, or else the
  alert's start: each review re-takes the decision).
- **Stale alerts**: not reviewed for more than twice the profile's review interval; past their
  `ends_on` but still active in the source; and drift, dates (`ends_on`, `effective_from`) changed in
  the source with no change to `last_reviewed_on` (from the register's history).

Each is a CSV and an HTML page in the configured output folder, written atomically
(`cautionflow.adapters.files`; every CSV by the one formula-safe writer, with a BOM), named by the
as-of date (equality: by its period, e.g. 2026-Q4).
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.database import stored_date
from cautionflow.adapters.files import shown_path, write_atomically, write_csv
from cautionflow.config import ConfigError
from cautionflow.domain.surveys import SURVEY_EXCLUSION_CODES
from cautionflow.frames import is_missing

if TYPE_CHECKING:
    from cautionflow.adapters.governance_reads import GovernanceReads
    from cautionflow.domain.equality import CharacteristicResult, GroupCount
    from cautionflow.domain.policy import PolicyProfile

REPORTS: tuple[str, ...] = ("equality", "survey-exclusions", "non-notification", "stale")

# The survey exclusion list's codes come from the one rule the letters' survey sentence uses too.
CONTACT_RESTRICTION_CODES: tuple[str, ...] = SURVEY_EXCLUSION_CODES

SURVEY_COLUMNS = ("tenancy_ref",)
NON_NOTIFICATION_COLUMNS = (
    "alert_id", "alert_code", "subject_type", "tenancy_ref", "asset_ref", "area", "reason_recorded",
    "no_notify_reason", "decision_basis", "decided_on", "days_since_decision",
)
STALE_COLUMNS = ("check", "alert_id", "alert_code", "area", "asset_ref", "register_state", "since", "days", "detail")
EQUALITY_COLUMNS = (
    "characteristic", "group", "households", "flagged_households", "flagged_rate_pct", "flagged_rate_outside_pct",
    "rate_ratio", "ci95_lower", "ci95_upper", "interval_above_1", "suppressed", "note",
)
ALL_GROUPS = "(all households)"

STALE_CHECKS = {
    "unreviewed": "not reviewed for more than twice the review interval",
    "past_expiry": "past its end date but still active in the source",
    "drift": "dates changed in the source without a recorded review",
}


class GovernanceRegister(Protocol):
    """The lists read the register through its governance reads; `migrate` checks it exists."""

    governance: GovernanceReads

    def migrate(self) -> None: ...


class EqualitySource(Protocol):
    """The equality query's aggregate counts (adapters/equality_source.py: `EqualityQuery`), read
    only when the equality report is asked for, and the period the report covers."""

    period: str

    def read_counts(self) -> list[GroupCount]: ...


class GovernanceError(ConfigError):
    """A report cannot be produced as asked (e.g. equality without an equality section); a
    ConfigError, so the command line and the DAG report it as one line a person can act on."""


@dataclass
class GovernanceResult:
    as_of: str
    paths: dict[str, Path] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)

    def summary(self) -> dict[str, Any]:
        return {
            "step": "governance", "as_of": self.as_of, **self.counts,
            "reports": {k: shown_path(v) for k, v in self.paths.items()},
        }


# --- entry points --------------------------------------------------------------------------------


def write_governance_reports(
    register: GovernanceRegister, as_of: dt.date, *, organisation: str, folder: Path, render: Callable[..., str],
    profile: PolicyProfile, equality: EqualitySource | None,
) -> dict[str, Path]:
    """Every governance report (equality only when configured) in `folder`; their paths."""
    return run_governance_reports(
        register, as_of, organisation=organisation, folder=folder, render=render, profile=profile, equality=equality,
    ).paths


def run_governance_reports(
    register: GovernanceRegister,
    as_of: dt.date,
    *,
    organisation: str,
    folder: Path,
    render: Callable[..., str],
    profile: PolicyProfile,
    equality: EqualitySource | None,
    reports: Iterable[str] = REPORTS,
) -> GovernanceResult:
    """The chosen reports with their counts, written in `folder` through `render`
    (the templates). `profile` sets the stale check's review intervals; `equality` is None when the
    config has no equality section: asking for `equality` then is an error, `all` quietly leaves it out."""
    wanted = list(dict.fromkeys(reports))
    unknown = [r for r in wanted if r not in REPORTS]
    if unknown:
        raise GovernanceError(f"unknown report(s): {', '.join(unknown)} (known: {', '.join(REPORTS)})")
    folder = Path(folder) if isinstance(folder, str) else folder  # a Path or an ObjectStoragePath as given
    result = GovernanceResult(as_of=as_of.isoformat())
    context = {"organisation": organisation, "as_of": as_of}
    if set(wanted) - {"equality"}:  # the equality counts come from the housing database alone
        register.migrate()  # an existing register only: RegisterNotFoundError otherwise

    if "equality" in wanted:
        if equality is None:
            if set(wanted) != set(REPORTS):  # asked for by name, not as part of all
                raise GovernanceError("equality: the config has no equality section (query, url, period)")
            result.counts["equality"] = "not configured"
        else:
            counts = equality.read_counts()
            result.counts["equality"] = write_equality_report(
                counts, folder, as_of=as_of, period=equality.period, render=render, context=context, paths=result.paths
            )
    if "survey-exclusions" in wanted:
        refs = survey_exclusions(register)
        result.counts["survey_exclusions"] = len(refs)
        _write_list(
            result.paths, folder, "survey_exclusions", f"survey-exclusions-{as_of.isoformat()}", SURVEY_COLUMNS,
            [{"tenancy_ref": r} for r in refs], render, context,
            title="Feedback survey exclusions",
            intro=(
                "Tenancies with an active contact restriction "
                f"({', '.join(CONTACT_RESTRICTION_CODES)}): leave them out of feedback surveys until the "
                "restriction has been reviewed and lifted (Wandle 5.0). Tenancy references only."
            ),
            confidential="Confidential: for the feedback survey team, only to leave these tenancies out of "
            "surveys; do not forward or keep after the survey.",
        )
    if "non-notification" in wanted:
        rows = non_notification_decisions(register, as_of)
        result.counts["non_notification"] = {
            "alerts": len(rows), "no_reason_recorded": sum(1 for r in rows if r["reason_recorded"] == "No"),
        }
        _write_list(
            result.paths, folder, "non_notification", f"non-notification-{as_of.isoformat()}",
            NON_NOTIFICATION_COLUMNS, rows, render, context,
            title="Decisions not to notify the resident, to reconsider",
            intro=(
                "Active alerts recorded with notify_resident = 0. A decision not to tell the resident must be "
                "exceptional and recorded with its reason; each is re-taken at every review, so its age counts "
                "from the last review, or else from the alert's start. No reason recorded comes first, then the "
                "oldest decisions."
            ),
        )
    if "stale" in wanted:
        rows = stale_alerts(register, profile, as_of)
        result.counts["stale"] = {check: sum(1 for r in rows if r["check"] == check) for check in STALE_CHECKS}
        _write_list(
            result.paths, folder, "stale", f"stale-alerts-{as_of.isoformat()}", STALE_COLUMNS, rows, render,
            context,
            title="Stale alerts",
            intro=(
                f"Policy profile {profile.name}. unreviewed: {STALE_CHECKS['unreviewed']} (from the last review, or "
                f"the start); past_expiry: {STALE_CHECKS['past_expiry']}; drift: {STALE_CHECKS['drift']} "
                "(ends_on or effective_from changed while last_reviewed_on did not), from the register's history."
            ),
        )
    return result


# --- the lists -----------------------------------------------------------------------------------


def survey_exclusions(register: GovernanceRegister) -> list[str]:
    """Distinct tenancy references with an active contact-restriction alert (Wandle 5.0)."""
    return register.governance.survey_exclusions(CONTACT_RESTRICTION_CODES)


def non_notification_decisions(register: GovernanceRegister, as_of: dt.date) -> list[dict[str, Any]]:
    rows = register.governance.not_notified()
    out = []
    for r in rows:
        reviewed, started = stored_date(r["last_reviewed_on"]), stored_date(r["effective_from"])
        decided = reviewed or started
        reason = (r["no_notify_reason"] or "").strip()
        out.append(
            {
                "alert_id": r["alert_id"], "alert_code": r["alert_code"] or "", "subject_type": r["subject_type"] or "",
                "tenancy_ref": r["tenancy_ref"] or "", "asset_ref": r["asset_ref"] or "", "area": r["area"] or "",
                "reason_recorded": "Yes" if reason else "No",
                "no_notify_reason": reason,
                "decision_basis": "last review" if reviewed else "effective from" if started else "unknown",
                "decided_on": decided.isoformat() if decided else "",
                "days_since_decision": (as_of - decided).days if decided else "",
            }
        )
    # No reason first; then the oldest decision (an unknown date first: it cannot be shown to be recent).
    out.sort(key=lambda r: (r["reason_recorded"] == "Yes", r["decided_on"] != "", r["decided_on"], r["alert_id"]))
    return out


def stale_alerts(register: GovernanceRegister, profile: PolicyProfile, as_of: dt.date) -> list[dict[str, Any]]:
    from cautionflow.domain.deadlines import add_months

    out: list[dict[str, Any]] = []
    active = register.governance.active_dates()
    for r in active:
        base_field = "last review" if r["last_reviewed_on"] is not None else "effective from"
        base = stored_date(r["last_reviewed_on"]) or stored_date(r["effective_from"])
        code = (r["alert_code"] or "").upper()
        if base is not None:
            months = profile.review.interval_for(code)
            limit = add_months(base, 2 * months)
            if as_of > limit:
                out.append(_stale_row("unreviewed", r, base, (as_of - limit).days,
                                      f"{base_field} {base.isoformat()}; review every {months} months; "
                                      f"twice that passed on {limit.isoformat()}"))
        ends = stored_date(r["ends_on"])
        if ends is not None and ends < as_of:
            out.append(_stale_row("past_expiry", r, ends, (as_of - ends).days, f"ends_on {ends.isoformat()}"))

    history = register.governance.date_changes()
    for h in history:
        changed = json.loads(h["changed_fields"])
        dates = [f for f in ("effective_from", "ends_on") if f in changed]
        if not dates or "last_reviewed_on" in changed:
            continue
        when = stored_date(h["as_of"])
        detail = "; ".join(f"{f} {_shown(changed[f][0])} -> {_shown(changed[f][1])}" for f in dates)
        out.append(_stale_row("drift", h, when, (as_of - when).days if when else "",
                              detail + "; last_reviewed_on unchanged"))
    order = list(STALE_CHECKS)
    out.sort(key=lambda r: order.index(r["check"]))  # stable: each check keeps its own order
    return out


def _shown(value: Any) -> str:
    return "(none)" if is_missing(value) or value == "" else str(value)[:10]


def _stale_row(check: str, r: dict[str, Any], since: dt.date | None, days: Any, detail: str) -> dict[str, Any]:
    return {
        "check": check, "alert_id": r["alert_id"], "alert_code": r["alert_code"] or "", "area": r["area"] or "",
        "asset_ref": r["asset_ref"] or "", "register_state": r["register_state"],
        "since": since.isoformat() if since else "", "days": days, "detail": detail,
    }


# --- equality ------------------------------------------------------------------------------------


def equality_rows(results: list[CharacteristicResult]) -> list[dict[str, str]]:
    def num(value: float | None, scale: float = 1, places: int = 3) -> str:
        return "" if value is None else f"{value * scale:.{places}f}"

    def count(value: int | None) -> str:
        return "suppressed" if value is None else str(value)

    rows = []
    for ch in results:
        rows.append(
            {
                "characteristic": ch.characteristic, "group": ALL_GROUPS, "households": count(ch.households),
                "flagged_households": count(ch.flagged_households),
                "flagged_rate_pct": (
                    num(ch.flagged_households / ch.households, 100, 2)
                    if ch.households and ch.flagged_households is not None else ""
                ),
                **dict.fromkeys(EQUALITY_COLUMNS[5:], ""),
            }
        )
        for g in ch.groups:
            rows.append(
                {
                    "characteristic": g.characteristic, "group": g.group_label, "households": count(g.households),
                    "flagged_households": count(g.flagged_households), "flagged_rate_pct": num(g.rate, 100, 2),
                    "flagged_rate_outside_pct": num(g.rate_outside, 100, 2), "rate_ratio": num(g.ratio),
                    "ci95_lower": num(g.lower), "ci95_upper": num(g.upper),
                    "interval_above_1": "Yes" if g.higher else "", "suppressed": g.suppressed, "note": g.note,
                }
            )
    return rows


def forest_plot(results: list[CharacteristicResult], *, width: int = 720, label_width: int = 260) -> dict[str, Any]:
    """Geometry of an inline SVG forest plot: each group's rate ratio and 95% interval on a log scale."""
    values = [v for ch in results for g in ch.groups for v in (g.lower, g.upper) if v is not None]
    lo = max(min([0.5, *values]), 0.05)
    hi = min(max([2.0, *values]), 20.0)
    left, right = label_width, width - 20
    span = math.log(hi) - math.log(lo)

    def x(v: float) -> float:
        return round(left + (math.log(min(max(v, lo), hi)) - math.log(lo)) / span * (right - left), 1)

    rows, y = [], 30
    for ch in results:
        rows.append({"y": y, "heading": ch.characteristic})
        y += 20
        for g in ch.groups:
            row: dict[str, Any] = {"y": y, "label": g.group_label, "heading": None}
            if g.ratio is not None:
                row.update(
                    x=x(g.ratio), x_low=x(g.lower), x_high=x(g.upper), higher=g.higher,
                    text=f"{g.ratio:.2f} ({g.lower:.2f}-{g.upper:.2f})",
                )
            else:
                row.update(x=None, text="suppressed" if g.suppressed else (g.note or "not computable"))
            rows.append(row)
            y += 18
        y += 6
    ticks = [
        {"x": x(t), "label": f"{t:g}"}
        for t in (0.05, 0.1, 0.25, 0.5, 1, 2, 4, 10, 20)
        if lo <= t <= hi
    ]
    return {"width": width, "height": y + 30, "rows": rows, "ticks": ticks, "one": x(1.0), "left": left,
            "right": right, "axis_y": y + 4}


def write_equality_report(
    counts: list[GroupCount], folder: Path, *, as_of: dt.date, period: str, render: Callable[..., str],
    context: dict[str, Any], paths: dict[str, Path],
) -> dict[str, Any]:
    from cautionflow.domain.equality import SUPPRESS_BELOW, equality_report, period_label

    results = equality_report(counts)
    rows = equality_rows(results)
    label = period_label(as_of, period)
    stem = f"equality-{label}"
    paths["equality_csv"] = write_csv(folder / f"{stem}.csv", EQUALITY_COLUMNS, rows)
    html_path = folder / f"{stem}.html"
    write_atomically(
        html_path,
        render(
            "reports/equality.html", **context, period=label, columns=EQUALITY_COLUMNS, rows=rows,
            all_groups=ALL_GROUPS, chart=forest_plot(results), suppress_below=SUPPRESS_BELOW,
        ),
    )
    paths["equality_html"] = html_path
    groups = [g for ch in results for g in ch.groups]
    return {
        "period": label,
        "characteristics": len(results),
        "groups": len(groups),
        "suppressed": sum(1 for g in groups if g.suppressed),
        "interval_above_1": sorted(f"{g.characteristic}: {g.group_label}" for g in groups if g.higher),
    }


# --- writing -------------------------------------------------------------------------------------


def _write_list(
    paths: dict[str, Path], folder: Path, key: str, stem: str, columns: Sequence[str], rows: list[dict[str, Any]],
    render: Callable[..., str], context: dict[str, Any], *, title: str, intro: str,
    confidential: str = "Confidential: for officers managing the caution alert register only; do not forward.",
) -> None:
    csv_path = write_csv(folder / f"{stem}.csv", columns, rows)
    html_path = folder / f"{stem}.html"
    write_atomically(
        html_path,
        render(
            "reports/governance_list.html", **context, title=title, intro=intro, columns=columns, rows=rows,
            confidential=confidential,
        ),
    )
    paths[f"{key}_csv"], paths[f"{key}_html"] = csv_path, html_path
