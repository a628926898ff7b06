"""What the register holds right now, in counts a person can read at a glance."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from cautionflow.adapters.figures import RegisterFigures


class StatusRegister(Protocol):
    figures: RegisterFigures

    def migrate(self) -> None: ...


def register_status(register: StatusRegister) -> dict[str, Any]:
    register.migrate()  # an existing register only (RegisterNotFoundError otherwise)
    counts = register.figures.status()
    last = counts.last_sync
    deadlines = counts.deadlines
    outbox: dict[str, dict[str, int]] = {}
    for kind, state, count in counts.outbox:
        outbox.setdefault(kind, {})[state] = int(count)
    return {
        "active": int(counts.by_state.get("active", 0)),
        "ended": int(counts.by_state.get("ended", 0)),
        "active_flagged": int(counts.active_flagged),
        "active_by_code": {k: int(v) for k, v in counts.active_by_code.items()},
        "active_by_area": {k: int(v) for k, v in counts.active_by_area.items()},
        "quarantine_open": {k: int(v) for k, v in counts.quarantine_open.items()},
        # When it finished, too: digests and reminders refuse a register whose last sync is too old.
        "last_sync": {**json.loads(last[2]), "finished_at": _utc_text(last[3])} if last else None,
        "deadlines": None
        if deadlines[0] is None
        else {"evaluated_on": str(deadlines[0])[:10], "overdue": int(deadlines[1]), "errors": int(deadlines[2])},
        "outbox": outbox,
        "letters": {state: int(n) for state, n in counts.letters},
        "officer_flags_open": {flag: int(n) for flag, n in counts.officer_flags_open},
    }


def _utc_text(moment: Any) -> str | None:
    """A stored UTC timestamp (text on SQLite, aware on PostgreSQL) as `2026-11-29 05:41 UTC`."""
    import datetime as dt

    if moment is None:
        return None
    if isinstance(moment, str):
        moment = dt.datetime.fromisoformat(moment)
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return moment.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")


def format_status(status: dict[str, Any], *, organisation: str) -> str:
    lines = [f"Caution alert register: {organisation}"]
    lines.append(f"  active alerts: {status['active']} ({status['active_flagged']} with data-quality flags)")
    lines.append(f"  ended alerts:  {status['ended']}")
    lines.append("  active by code: " + ", ".join(f"{k} {v}" for k, v in status["active_by_code"].items()))
    lines.append("  active by area: " + ", ".join(f"{k} {v}" for k, v in status["active_by_area"].items()))
    open_rows = sum(status["quarantine_open"].values())
    lines.append(f"  quarantined rows awaiting a fix in the housing system: {open_rows}")
    for reason, count in status["quarantine_open"].items():
        lines.append(f"    {count:>4}  {reason}")
    last = status["last_sync"]
    if last:
        counts = ", ".join(f"{k} {last[k]}" for k in ("read", "inserted", "updated", "unchanged", "ended", "quarantined", "flagged"))
        finished = f", finished {last['finished_at']}" if last.get("finished_at") else ""
        lines.append(f"  last sync (as of {last['as_of']}{finished}): {counts}")
    deadlines = status["deadlines"]
    if deadlines:
        lines.append(
            f"  reviews overdue (as of {deadlines['evaluated_on']}): {deadlines['overdue']}; "
            f"alerts whose dates could not be computed: {deadlines['errors']}"
        )
    for kind, states in status["outbox"].items():
        lines.append(f"  {kind} emails: " + ", ".join(f"{state} {n}" for state, n in states.items()))
    uncertain = sum(states.get("uncertain", 0) for states in status["outbox"].values())
    if uncertain:
        # Said in words: these are never resent by a run, so a person has to decide.
        lines.append(
            f"  emails whose delivery is uncertain (the server took them and never confirmed): {uncertain}; "
            "never resent by a run: ask the recipient, and for one that did not arrive run "
            "`cautionflow mail resend-failed --include-uncertain`"
        )
    if status["letters"]:
        lines.append("  resident letters: " + ", ".join(f"{state} {n}" for state, n in status["letters"].items()))
    if status["officer_flags_open"]:
        lines.append(
            "  open for officers (cautionflow letters flags): "
            + ", ".join(f"{flag} {n}" for flag, n in status["officer_flags_open"].items())
        )
    return "\n".join(lines)
