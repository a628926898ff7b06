"""What the register holds right now, in counts a person can read at a glance."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.database import fetch_all

if TYPE_CHECKING:
    from cautionflow.adapters.register import Register


def register_status(register: Register) -> dict[str, Any]:
    register.migrate()  # an existing register only (RegisterNotFoundError otherwise)
    with register.connect() as conn:

        def rows(sql: str) -> list[tuple]:
            return fetch_all(conn, sql)[1]

        by_state = dict(rows("SELECT register_state, COUNT(*) FROM alerts GROUP BY register_state"))
        by_code = dict(
            rows("SELECT alert_code, COUNT(*) FROM alerts WHERE register_state = 'active' GROUP BY alert_code ORDER BY 2 DESC")
        )
        by_area = dict(
            rows("SELECT COALESCE(area, '(none)'), COUNT(*) FROM alerts WHERE register_state = 'active' GROUP BY 1 ORDER BY 1")
        )
        flagged = rows("SELECT COUNT(*) FROM alerts WHERE register_state = 'active' AND dq_flags IS NOT NULL")[0][0]
        quarantine = dict(
            rows("SELECT reason, COUNT(*) FROM quarantine WHERE resolved_run_id IS NULL GROUP BY reason ORDER BY 2 DESC")
        )
        last = rows("SELECT run_id, as_of, summary, finished_at FROM sync_runs ORDER BY id DESC LIMIT 1")
        deadlines = rows(
            "SELECT MAX(evaluated_on), COALESCE(SUM(overdue), 0), COUNT(error) FROM alert_deadlines"
        )[0]
        outbox: dict[str, dict[str, int]] = {}
        for kind, state, count in rows("SELECT kind, status, COUNT(*) FROM outbox GROUP BY kind, status ORDER BY 1, 2"):
            outbox.setdefault(kind, {})[state] = int(count)
        letters = {state: int(n) for state, n in rows("SELECT status, COUNT(*) FROM letters GROUP BY status ORDER BY 1")}
        officer_flags = {
            flag: int(n)
            for flag, n in rows(
                "SELECT flag, COUNT(*) FROM letter_flags WHERE resolved_on IS NULL GROUP BY flag ORDER BY 1"
            )
        }
    return {
        "active": int(by_state.get("active", 0)),
        "ended": int(by_state.get("ended", 0)),
        "active_flagged": int(flagged),
        "active_by_code": {k: int(v) for k, v in by_code.items()},
        "active_by_area": {k: int(v) for k, v in by_area.items()},
        "quarantine_open": {k: int(v) for k, v in quarantine.items()},
        # When it finished, too: digests and reminders refuse a register whose last sync is too old.
        "last_sync": {**json.loads(last[0][2]), "finished_at": _utc_text(last[0][3])} if last else None,
        "deadlines": None
        if deadlines[0] is None
        else {"evaluated_on": str(deadlines[0])[:10], "overdue": int(deadlines[1]), "errors": int(deadlines[2])},
        "outbox": outbox,
        "letters": letters,
        "officer_flags_open": officer_flags,
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
            "never resent by a run: ask the recipient, and for a digest that did not arrive run "
            "`cautionflow digests resend-failed --include-uncertain`"
        )
    if status["letters"]:
        lines.append("  resident letters: " + ", ".join(f"{state} {n}" for state, n in status["letters"].items()))
    if status["officer_flags_open"]:
        lines.append(
            "  open for officers (cautionflow letters flags): "
            + ", ".join(f"{flag} {n}" for flag, n in status["officer_flags_open"].items())
        )
    return "\n".join(lines)
