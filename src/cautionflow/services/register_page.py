"""The figures the register page in the Airflow UI shows, read from the register (read-only).

Everything is "as of the latest run": the as-of date is the day the deadlines were last computed
(`alert_deadlines.evaluated_on`), or else the last sync's. The page shows personal data (names and
addresses in the review lists, held letters); it is served only to users logged in to Airflow
(`cautionflow.web.register_page`). Nothing here writes: no migration is run, and a register that
does not exist is never created (`Register.connect` raises RegisterNotFoundError, and a database
that is down a RegisterError: the page answers 503).

The "Reports" panel lists the report files in the configured output folder (`find_reports`): only
files directly in that folder whose names match a known report (`REPORT_KINDS`), and the same check
(`report_file`) decides what the page's app will serve, so nothing else there (the `dsar/` exports,
partial files, anything a person left) is listed or served.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.database import stored_date
from cautionflow.domain.appeals import OpenAppeal, open_appeals

if TYPE_CHECKING:
    from cautionflow.adapters.figures import FiguresReading, RegisterFigures

HORIZON_DAYS = 30
CHART_WEEKS = 12
REVIEW_LISTS = ("overdue", "due")
MAIL_KINDS = ("digest", "reminder", "appeals")
LETTER_STATUSES = ("queued", "held", "approved", "dispatched")


class FiguresRegister(Protocol):
    """The page reads the register only through its figures (`Register.connect`: an existing
    register, one-line errors)."""

    figures: RegisterFigures


@dataclass(frozen=True)
class ReviewRow:
    alert_id: str
    alert_code: str
    area: str
    person_name: str
    asset_ref: str
    address: str
    review_due: dt.date
    days: int  # overdue: days past due; due: days until due


@dataclass(frozen=True)
class WeekBar:
    week_start: dt.date
    count: int


@dataclass(frozen=True)
class RecipientDelivery:
    kind: str
    recipient_name: str
    recipient_email: str
    last_sent: dt.date | None
    sent: int
    failed: int
    pending: int
    last_error: str
    uncertain: int = 0  # sent, but the server never confirmed it: resent only on an operator's request


@dataclass(frozen=True)
class WaitingLetter:
    """A letter not dispatched yet: held, queued for approval, or approved; the page links its PDF."""

    id: int
    alert_id: str
    kind: str
    batch: dt.date
    person_name: str
    status: str
    hold_reason: str


@dataclass
class RegisterPage:
    as_of: dt.date | None
    last_sync: dict[str, Any] | None
    active: int = 0
    codes: list[str] = field(default_factory=list)
    areas: list[str] = field(default_factory=list)
    by_code_area: dict[tuple[str, str], int] = field(default_factory=dict)
    overdue: int = 0
    due_soon: int = 0
    deadline_errors: int = 0
    due_by_week: list[WeekBar] = field(default_factory=list)
    quarantine_by_reason: dict[str, int] = field(default_factory=dict)
    quarantine_rows: list[dict[str, Any]] = field(default_factory=list)
    flagged: int = 0
    flags_by_kind: dict[str, int] = field(default_factory=dict)
    flagged_rows: list[dict[str, Any]] = field(default_factory=list)
    deliveries: list[RecipientDelivery] = field(default_factory=list)
    letters_by_status: dict[str, int] = field(default_factory=dict)
    letters_waiting: list[WaitingLetter] = field(default_factory=list)
    open_appeals: list[OpenAppeal] = field(default_factory=list)  # overdue first (domain/appeals.py)
    appeals_open: int = 0  # all of them; the list stops at `listed`
    appeals_overdue: int = 0

    def by_code(self, code: str) -> int:
        return sum(n for (c, _), n in self.by_code_area.items() if c == code)

    def by_area(self, area: str) -> int:
        return sum(n for (_, a), n in self.by_code_area.items() if a == area)


def _as_of(read: FiguresReading, tables: set[str]) -> tuple[dt.date | None, dict[str, Any] | None]:
    last_sync = None
    if "sync_runs" in tables:
        last = read.last_sync()
        if last:
            last_sync = json.loads(last[1])
            last_sync.setdefault("as_of", str(stored_date(last[0])))
    evaluated = None
    if "alert_deadlines" in tables:
        evaluated = read.deadlines_evaluated_on()
    if evaluated is None and last_sync is not None:
        evaluated = stored_date(last_sync.get("as_of"))
    return evaluated, last_sync


_QUOTED = re.compile(r"'[^']*'")


def flag_kind(message: str) -> str:
    """A data-quality message without the value it quotes: 'alert_code: unknown code …'."""
    return _QUOTED.sub("…", message.strip())


def register_page(register: FiguresRegister, *, horizon: int = HORIZON_DAYS, weeks: int = CHART_WEEKS,
                  listed: int = 200) -> RegisterPage:
    """Gather every figure of the page in one read-only connection."""
    with register.figures.reading() as read:
        tables = read.tables()
        as_of, last_sync = _as_of(read, tables)
        page = RegisterPage(as_of=as_of, last_sync=last_sync)
        if "alerts" in tables:
            for code, area, count in read.active_by_code_and_area():
                page.by_code_area[(code, area)] = int(count)
            page.codes = sorted({c for c, _ in page.by_code_area}, key=lambda c: (-page.by_code(c), c))
            page.areas = sorted({a for _, a in page.by_code_area})
            page.active = sum(page.by_code_area.values())
            flagged = read.flagged_active_alerts()
            page.flagged = len(flagged)
            kinds: Counter[str] = Counter()
            for *_, flags in flagged:
                for message in str(flags).split("; "):
                    kinds[flag_kind(message)] += 1
            page.flags_by_kind = dict(kinds.most_common())
            page.flagged_rows = [
                {"alert_id": a, "alert_code": c or "", "area": r or "", "flags": f} for a, c, r, f in flagged[:listed]
            ]
        if "alert_deadlines" in tables and as_of is not None:
            overdue, errors = read.active_deadline_totals()
            page.overdue, page.deadline_errors = int(overdue), int(errors)
            page.due_soon = int(read.reviews_due_between(as_of, as_of + dt.timedelta(days=horizon)))
            page.due_by_week = due_by_week(read, as_of, weeks)
            appeals = open_appeals(read.appeals(), as_of)
            page.appeals_open, page.appeals_overdue = len(appeals), sum(1 for a in appeals if a.overdue)
            page.open_appeals = list(appeals[:listed])
        if "quarantine" in tables:
            open_rows = read.open_quarantine()
            page.quarantine_by_reason = dict(Counter(r[2] for r in open_rows).most_common())
            page.quarantine_rows = [
                {"id": i, "alert_id": a or "(none)", "reason": r, "first_seen_on": s}
                for i, a, r, s in open_rows[:listed]
            ]
        if "outbox" in tables:
            page.deliveries = deliveries(read)
        if "letters" in tables:
            counts = read.letters_by_status()
            page.letters_by_status = {s: int(counts.get(s, 0)) for s in LETTER_STATUSES} | {
                s: int(n) for s, n in counts.items() if s not in LETTER_STATUSES
            }
            page.letters_waiting = [
                WaitingLetter(int(i), a, k, b, n, s, h or "") for i, a, k, b, n, s, h in read.letters_waiting()[:listed]
            ]
    return page


def due_by_week(read: FiguresReading, as_of: dt.date, weeks: int) -> list[WeekBar]:
    """Active alerts whose review falls due in each of the next `weeks` weeks (Monday to Sunday,
    starting with the as-of date's week; reviews already overdue are not counted)."""
    start = as_of - dt.timedelta(days=as_of.weekday())
    end = start + dt.timedelta(weeks=weeks)
    counts: Counter[int] = Counter()
    for due in read.review_dates_before(as_of, end):
        counts[(due - start).days // 7] += 1
    return [WeekBar(start + dt.timedelta(weeks=w), counts[w]) for w in range(weeks)]


def deliveries(read: FiguresReading) -> list[RecipientDelivery]:
    """Per recipient and kind (digests, reminders): last sent, messages sent, failed, pending, uncertain."""
    return [
        RecipientDelivery(
            kind, name, email, last_sent, int(sent or 0), int(failed or 0), int(pending or 0), error,
            int(uncertain or 0),
        )
        for kind, name, email, last_sent, sent, failed, pending, uncertain, error in read.deliveries(MAIL_KINDS)
    ]


def review_list(register: FiguresRegister, which: str, *, code: str | None = None, area: str | None = None,
                horizon: int = HORIZON_DAYS) -> tuple[dt.date | None, list[ReviewRow]]:
    """The reviews overdue (most overdue first) or due in the next `horizon` days (soonest first),
    optionally for one code and/or area ('(none)' for alerts without one)."""
    if which not in REVIEW_LISTS:
        raise ValueError(f"unknown review list {which!r}")
    with register.figures.reading() as read:
        tables = read.tables()
        as_of, _ = _as_of(read, tables)
        if as_of is None or not {"alerts", "alert_deadlines"} <= tables:
            return as_of, []
        if which == "overdue":
            rows = read.reviews(overdue=True, code=code, area=area)
        else:
            rows = read.reviews(
                overdue=False, due_from=as_of, due_to=as_of + dt.timedelta(days=horizon), code=code, area=area
            )
    out = []
    for alert_id, alert_code, row_area, person, asset, address, postcode, due_on in rows:
        days = (as_of - due_on).days if which == "overdue" else (due_on - as_of).days
        out.append(ReviewRow(
            alert_id, alert_code or "", row_area or "", person or "", asset or "",
            ", ".join(p for p in (address, postcode) if p), due_on, days,
        ))
    return as_of, out


# --- the report files in the output folder ----------------------------------------------------------

_DAY = r"(?P<label>\d{4}-\d{2}-\d{2})"
_GOVERNANCE_HOW = "runs weekly in cautionflow_housekeeping; by hand: cautionflow governance --config FILE --report {}"


@dataclass(frozen=True)
class ReportKind:
    key: str
    title: str
    pattern: re.Pattern[str]  # the whole file name; groups `label` (a date or a period) and `ext`
    how: str  # how to produce one, shown while there is none


REPORT_KINDS: tuple[ReportKind, ...] = (
    ReportKind(
        "all-alerts", "All Alerts report", re.compile(rf"all-alerts-{_DAY}\.(?P<ext>csv|html)"),
        "written by cautionflow_deadlines after each sync; by hand: cautionflow run deadlines --config FILE",
    ),
    ReportKind(
        "overdue-reviews", "Reviews overdue", re.compile(rf"overdue-reviews-{_DAY}\.(?P<ext>csv)"),
        "written by cautionflow_deadlines after each sync; by hand: cautionflow run deadlines --config FILE",
    ),
    ReportKind(
        "equality", "Equality monitoring",
        re.compile(r"equality-(?P<label>\d{4}(?:-Q[1-4]|-(?:0[1-9]|1[0-2]))?)\.(?P<ext>csv|html)"),
        _GOVERNANCE_HOW.format("equality"),
    ),
    ReportKind(
        "survey-exclusions", "Feedback survey exclusions",
        re.compile(rf"survey-exclusions-{_DAY}\.(?P<ext>csv|html)"), _GOVERNANCE_HOW.format("survey-exclusions"),
    ),
    ReportKind(
        "non-notification", "Decisions not to notify, to reconsider",
        re.compile(rf"non-notification-{_DAY}\.(?P<ext>csv|html)"), _GOVERNANCE_HOW.format("non-notification"),
    ),
    ReportKind(
        "stale-alerts", "Stale alerts", re.compile(rf"stale-alerts-{_DAY}\.(?P<ext>csv|html)"),
        _GOVERNANCE_HOW.format("stale"),
    ),
)
EQUALITY_NOT_CONFIGURED = (
    "not configured: the config has no equality section (README, \"Equality monitoring\"); once it has, "
    + _GOVERNANCE_HOW.format("equality")
)


@dataclass(frozen=True)
class ReportFile:
    name: str
    ext: str  # csv | html
    size: int


@dataclass
class ReportGroup:
    kind: ReportKind
    label: str | None = None  # the latest date (2026-11-23) or period (2026-Q4) in the folder
    day: dt.date | None = None  # that date, for dated reports
    files: list[ReportFile] = field(default_factory=list)  # the latest label's files, HTML first
    earlier: int = 0  # older labels still in the folder
    how: str = ""


def report_kind(name: str) -> tuple[ReportKind, re.Match[str]] | None:
    """The known report a file name is, with its match; None for any other name."""
    for kind in REPORT_KINDS:
        if match := kind.pattern.fullmatch(name):
            try:
                _label_key(match["label"])  # a real date or period (not 2026-02-31)
            except ValueError:
                return None
            return kind, match
    return None


def report_file(folder: Path, name: str) -> Path | None:
    """The report file `name` directly in `folder`, or None: the name must be a known report's (no
    `/`, no `..`), and the file a regular file whose parent is the folder: on the local disk (a `Path`,
    or an ObjectStoragePath on `file://`) the resolved file, symlinks followed, in the resolved folder;
    on an object store the object whose key is the folder's prefix, a `/`, and the name."""
    from cautionflow.adapters.files import local_path

    if report_kind(name) is None:
        return None
    local = local_path(folder)
    if local is None:
        path = folder / name
        try:
            if path.parent.path.rstrip("/") != folder.path.rstrip("/") or path.name != name or not path.is_file():
                return None
        except (OSError, ValueError):
            return None
        return path
    try:
        root = local.resolve()
        resolved = (root / name).resolve()
    except (OSError, RuntimeError):
        return None
    if resolved.parent != root or resolved.name != name or not resolved.is_file():
        return None
    # Read through the same kind of path as the folder given: the resolved file on the local disk.
    return resolved if isinstance(folder, Path) else folder / name


def _label_key(label: str) -> tuple[dt.date, int]:
    """A label's order: the start of its day or period (a run writes the period containing its day,
    so a later start is a later run), then the shorter period."""
    if match := re.fullmatch(r"(\d{4})-(\d{2})-(\d{2})", label):
        return dt.date(*map(int, match.groups())), 3
    if match := re.fullmatch(r"(\d{4})-Q([1-4])", label):
        return dt.date(int(match[1]), 3 * int(match[2]) - 2, 1), 1
    if match := re.fullmatch(r"(\d{4})-(\d{2})", label):
        return dt.date(int(match[1]), int(match[2]), 1), 2
    return dt.date(int(label), 1, 1), 0


def find_reports(folder: Path, *, equality_configured: bool = True) -> list[ReportGroup]:
    """For each known report, its latest file(s) in `folder` (by the date or period in the name);
    a missing folder reads as empty. Raises OSError when the folder cannot be listed."""
    found: dict[str, dict[str, list[ReportFile]]] = {k.key: {} for k in REPORT_KINDS}
    if folder.is_dir():
        for entry in sorted(folder.iterdir()):
            known = report_kind(entry.name)
            if known is None or (path := report_file(folder, entry.name)) is None:
                continue
            kind, match = known
            try:
                size = path.stat().st_size
            except OSError:
                continue
            found[kind.key].setdefault(match["label"], []).append(ReportFile(entry.name, match["ext"], size))
    groups = []
    for kind in REPORT_KINDS:
        labels = sorted(found[kind.key], key=_label_key)
        how = EQUALITY_NOT_CONFIGURED if kind.key == "equality" and not equality_configured else kind.how
        if not labels:
            groups.append(ReportGroup(kind, how=how))
            continue
        latest = labels[-1]
        files = sorted(found[kind.key][latest], key=lambda f: (f.ext != "html", f.name))
        start, precision = _label_key(latest)
        day = start if precision == 3 else None
        groups.append(ReportGroup(kind, latest, day, files, len(labels) - 1, how))
    return groups
