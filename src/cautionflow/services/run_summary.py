"""The daily run summary to the operations recipients: counts only, once a day.

Sent when the config says `operations.daily_summary: true`, by the last task of the digests DAG.
It goes through the outbox (kind `operations`) with an idempotency key per recipient and day, not
per content: however often the day's pipeline runs, each operations recipient gets one summary a
day, and a summary the server did not take waits, pending, for the task's retry. It discloses no
alert (no disclosure log entries) and carries no personal data: only counts, the as-of date and
the organisation's name.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.clock import Clock, system_clock
from cautionflow.services.operations_notices import KIND, send_to_operations_once_a_day

if TYPE_CHECKING:
    from cautionflow.adapters.figures import RegisterFigures
    from cautionflow.adapters.mail import RetryPolicy, SmtpSettings
    from cautionflow.adapters.outbox import Outbox
    from cautionflow.config import Recipient

CONTENT = "daily-run-summary"  # the key's content part: one summary per recipient and day, whatever it says


class SummaryRegister(Protocol):
    """The summary reads the register's figures and sends through its outbox."""

    figures: RegisterFigures
    outbox: Outbox

    def migrate(self) -> None: ...


@dataclass(frozen=True)
class RunSummaryResult:
    step: str
    as_of: str
    run_id: str
    recipients: int
    queued: int
    sent: int
    already_sent: int
    failed: int
    pending: int
    uncertain: int  # summaries the server took and never confirmed: not resent
    complete: bool
    counts: dict[str, Any] = field(default_factory=dict)
    waiting: list[dict[str, str]] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def summary_counts(register: SummaryRegister, as_of: dt.date) -> dict[str, Any]:
    """The day in numbers, from the register: no names, addresses or alert ids."""
    from cautionflow.services.register_page import register_page
    from cautionflow.services.status import register_status

    status = register_status(register)
    page = register_page(register)
    today = register.figures.emails_on(as_of, excluding_kind=KIND)  # the summaries themselves are not counted
    last = status["last_sync"] or {}
    return {
        "as_of": as_of.isoformat(),
        "last_sync_as_of": last.get("as_of"),
        "sync": {k: last.get(k) for k in ("read", "inserted", "updated", "unchanged", "ended", "quarantined", "flagged")},
        "active": status["active"],
        "active_flagged": status["active_flagged"],
        "quarantine_open": sum(status["quarantine_open"].values()),
        "overdue": page.overdue,
        "due_within_30_days": page.due_soon,
        "deadline_errors": page.deadline_errors,
        "deadlines_as_of": page.as_of.isoformat() if page.as_of else None,
        "emails_today": today,
        # Never resent by a run, so still shown on the days after: a person has to decide.
        "emails_uncertain": {kind: states["uncertain"] for kind, states in status["outbox"].items()
                             if states.get("uncertain")},
        "letters": status["letters"],
    }


def summary_message(organisation: str, as_of: dt.date, counts: dict[str, Any]) -> tuple[str, str]:
    """(subject, plain text) of the summary."""
    from cautionflow.adapters.templates import long_date

    sync = counts["sync"]
    stale = counts["last_sync_as_of"] != counts["as_of"]
    lines = [
        f"cautionflow daily run summary for {organisation}, {long_date(as_of)}.",
        "",
        f"Sync (as of {counts['last_sync_as_of'] or 'never'}){': NOT TODAY' if stale else ''}",
        "  " + ", ".join(f"{k} {sync[k] if sync[k] is not None else '-'}" for k in sync),
        "Register",
        f"  active alerts {counts['active']}, with data-quality flags {counts['active_flagged']}, "
        f"quarantined rows awaiting a fix {counts['quarantine_open']}",
        f"Reviews (as of {counts['deadlines_as_of'] or 'never'})",
        f"  overdue {counts['overdue']}, due within 30 days {counts['due_within_30_days']}, "
        f"dates not computable {counts['deadline_errors']}",
        "Emails today",
    ]
    if counts["emails_today"]:
        for kind, states in sorted(counts["emails_today"].items()):
            lines.append(f"  {kind}: " + ", ".join(f"{state} {n}" for state, n in sorted(states.items())))
    else:
        lines.append("  none")
    if counts.get("emails_uncertain"):
        lines.append("Emails whose delivery is uncertain (the server took them and never confirmed; never resent "
                     "by a run)")
        lines.append("  " + ", ".join(f"{kind} {n}" for kind, n in sorted(counts["emails_uncertain"].items())))
    lines.append("Resident letters")
    lines.append("  " + (", ".join(f"{state} {n}" for state, n in counts["letters"].items()) or "none"))
    lines += ["", "Counts only. The register page in the Airflow UI (Caution register) has the detail."]
    problems = counts["quarantine_open"] + sum(counts.get("emails_uncertain", {}).values()) + sum(s.get("failed", 0) + s.get("pending", 0) + s.get("uncertain", 0)
                                               for s in counts["emails_today"].values())
    flag = " (needs a look)" if stale or problems else ""
    subject = f"cautionflow: daily summary, {long_date(as_of)}{flag}"
    return subject, "\n".join(lines) + "\n"


async def send_run_summary(
    register: SummaryRegister, settings: SmtpSettings, recipients: Sequence[Recipient], *, organisation: str,
    as_of: dt.date, run_id: str, retry: RetryPolicy | None = None, clock: Clock = system_clock,
) -> RunSummaryResult:
    operations = [r for r in recipients if r.role == "operations"]
    register.migrate()
    counts = summary_counts(register, as_of)
    subject, text = summary_message(organisation, as_of, counts)
    result = await send_to_operations_once_a_day(
        register, settings, operations, as_of=as_of, run_id=run_id, content=CONTENT, subject=subject, text=text,
        header_kind="operations-summary", retry=retry, clock=clock,
    )
    uncertain = sum(1 for w in result.waiting if w["status"] == "uncertain")
    pending = len(result.waiting) - result.failed - uncertain
    return RunSummaryResult(
        step="summary", as_of=as_of.isoformat(), run_id=run_id, recipients=len(operations), queued=result.queued,
        sent=result.sent, already_sent=result.already_sent, failed=result.failed, pending=pending,
        uncertain=uncertain, complete=not result.waiting, counts=counts, waiting=result.waiting,
    )

