"""What `make demo`'s two days did, read back from the register and the demo's mail folder.

    python -m cautionflow.demo.days snapshot --config FILE --mail DIR --letters DIR --out FILE
    python -m cautionflow.demo.days rerun-check --config FILE --mail DIR --letters DIR --before FILE --day DAY
    python -m cautionflow.demo.days summary --config FILE --day-one DAY --day-two DAY --script FILE

`snapshot` fingerprints every register table (but `sync_runs`, which records each run by design),
the .eml files the mail catcher saved and the letter files; `rerun-check` takes the fingerprint
again after a rerun of the day and fails (exit 1), naming what differs, unless nothing was sent
and nothing changed. `summary` prints each day: what the housing system changed, what the sync
made of it, the mail that went out and the letters queued. Counts, alert ids and codes only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections import Counter
from collections.abc import Mapping
from datetime import date
from pathlib import Path
from typing import Any

from sqlalchemy import Date, bindparam, inspect, text
from sqlalchemy.engine import Engine

# Tables a rerun is expected to write to: the sync records every run, even one that changes nothing.
RUN_LOG_TABLES = frozenset({"sync_runs", "alembic_version"})

KIND_NAMES = {"digest": ("digest", "digests"), "reminder": ("officers' reminder", "officers' reminders"),
              "letter": ("letter by email", "letters by email"), "appeals": ("appeals list", "appeals lists")}
LATE_SUBJECT = "had not finished by"  # the lateness notice's subject (domain.operations.LatenessNotice)


# --- the rerun proof -------------------------------------------------------------------------------


def fingerprint(engine: Engine, mail: Path, letters: Path) -> dict[str, Any]:
    """Row count and a content hash per register table; the names of the saved emails and letter files."""
    tables: dict[str, list[Any]] = {}
    with engine.connect() as conn:
        for name in sorted(inspect(conn).get_table_names()):
            if name in RUN_LOG_TABLES:
                continue
            rows = sorted(repr(tuple(r)) for r in conn.execute(text(f'SELECT * FROM "{name}"')))
            tables[name] = [len(rows), hashlib.sha256("\n".join(rows).encode()).hexdigest()]
    return {
        "tables": tables,
        "mail": sorted(p.name for p in mail.glob("*.eml")),
        "letters": sorted(f"{p.relative_to(letters)} {p.stat().st_size} {p.stat().st_mtime_ns}"
                          for p in letters.rglob("*") if p.is_file()) if letters.is_dir() else [],
    }


def differences(before: Mapping[str, Any], after: Mapping[str, Any]) -> list[str]:
    """What changed between two fingerprints, in words; empty when nothing did."""
    out = []
    new_mail = sorted(set(after["mail"]) - set(before["mail"]))
    if new_mail:
        out.append(f"{len(new_mail)} email(s) sent: {', '.join(new_mail)}")
    for name in sorted(set(before["tables"]) | set(after["tables"])):
        b, a = before["tables"].get(name), after["tables"].get(name)
        if b != a:
            rows = f"{b[0] if b else 'no table'} -> {a[0] if a else 'no table'} rows"
            out.append(f"register table {name} changed ({rows})")
    if before["letters"] != after["letters"]:
        out.append("letter files written or changed")
    return out


# --- the days' summary -----------------------------------------------------------------------------


def day_summary(engine: Engine, day: date) -> dict[str, Any]:
    """The sync's counts, the codes that changed, mail sent and letters queued for one as-of date."""
    def query(sql: str) -> list[Any]:
        # Typed as a date, so SQLite compares its ISO text and PostgreSQL its date column.
        return list(conn.execute(text(sql).bindparams(bindparam("d", type_=Date)), {"d": day}).all())

    with engine.connect() as conn:
        runs = query("SELECT summary, finished_at FROM sync_runs WHERE as_of = :d ORDER BY id")
        history = query("SELECT alert_id, change, changed_fields FROM alert_history WHERE as_of = :d ORDER BY alert_id")
        mail = query("SELECT kind, subject FROM outbox WHERE as_of = :d AND status = 'sent' ORDER BY id")
        letters = query("SELECT kind, status FROM letters WHERE as_of = :d")
    code_changes = []
    for alert_id, change, fields in history:
        changed = json.loads(fields) if fields else {}
        if change == "updated" and "alert_code" in changed:
            old, new = changed["alert_code"]
            code_changes.append(f"{alert_id} {old} -> {new}")
    return {
        "sync": json.loads(runs[0][0]) if runs else None,
        "sync_finished_at": str(runs[0][1]) if runs else None,
        "syncs": len(runs),
        "history": dict(Counter(change for _, change, _ in history)),
        "code_changes": code_changes,
        "mail": dict(Counter(kind for kind, _ in mail)),
        "operations": [subject for kind, subject in mail if kind == "operations"],
        "letters": dict(Counter(kind for kind, _ in letters)),
    }


def format_day(
    title: str, summary: Mapping[str, Any], script: Mapping[str, Any] | None = None, *, watched: bool = False
) -> list[str]:
    lines = [title]
    if script is not None:
        added = ", ".join(f"{a['alert_id']} {a['code']}" for a in script["added"])
        ended = ", ".join(f"{e['alert_id']} {e['code']}{' (removed at review)' if e['how'] != 'ended' else ''}"
                          for e in script["ended"])
        [up] = script["escalated"]
        lines.append(f"  housing system overnight: added {len(script['added'])} ({added}); "
                     f"escalated {up['alert_id']} {up['from']} -> {up['to']}; ended {len(script['ended'])} ({ended})")
        reasoned = ", ".join(r["alert_id"] for r in script.get("reason_recorded", []))
        if reasoned:  # its decision letter, held for want of the reason, is released
            lines.append(f"  reason for the resident recorded: {reasoned} (its held letter is released)")
    sync = summary["sync"]
    if sync is None:
        lines.append("  sync: none for this day")
    else:
        lines.append(
            f"  sync: read {sync.get('read')}, inserted {sync.get('inserted')}, updated {sync.get('updated')}, "
            f"unchanged {sync.get('unchanged')}, ended {sync.get('ended')}, quarantined {sync.get('quarantined')}, "
            f"flagged {sync.get('flagged')}; active {sync.get('active')}"
        )
    history = summary["history"]
    if script is not None and history:
        order = ("inserted", "updated", "ended", "reopened")
        changes = ", ".join(f"{history[c]} {c}" for c in order if history.get(c))
        codes = f" (code {'; '.join(summary['code_changes'])})" if summary["code_changes"] else ""
        lines.append(f"  register history: {changes}{codes}")
    mail = summary["mail"]
    if mail:
        parts = [f"{n} {KIND_NAMES.get(kind, (kind, kind))[n != 1]}" for kind, n in mail.items() if kind != "operations"]
        parts += [f'to operations "{s}"' for s in summary["operations"]]
        lines.append(f"  mail sent: {'; '.join(parts)}")
    else:
        lines.append("  mail sent: none")
    if watched:
        late = any(LATE_SUBJECT in s for s in summary["operations"])
        lines.append(
            f"  sync watch (07:00 Europe/London): the day's sync finished at {_london(summary['sync_finished_at'])}, "
            + ("after 07:00 (the demo ran it then), so operations were told" if late
               else "by 07:00: nothing to tell")
        )
    letters = summary["letters"]
    lines.append("  letters queued: " + (", ".join(f"{n} {kind}" for kind, n in sorted(letters.items()))
                                         if letters else "none"))
    return lines


def _london(moment: str | None) -> str:
    from datetime import UTC, datetime
    from zoneinfo import ZoneInfo

    if not moment:
        return "(never)"
    when = datetime.fromisoformat(moment)
    return (when if when.tzinfo else when.replace(tzinfo=UTC)).astimezone(ZoneInfo("Europe/London")).strftime("%H:%M")


# --- command line ----------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    snap = sub.add_parser("snapshot")
    check = sub.add_parser("rerun-check")
    for p in (snap, check):
        p.add_argument("--config", required=True)
        p.add_argument("--mail", type=Path, required=True)
        p.add_argument("--letters", type=Path, required=True)
    snap.add_argument("--out", type=Path, required=True)
    check.add_argument("--before", type=Path, required=True)
    check.add_argument("--day", type=date.fromisoformat, required=True)
    summary = sub.add_parser("summary")
    summary.add_argument("--config", required=True)
    summary.add_argument("--day-one", type=date.fromisoformat, required=True)
    summary.add_argument("--day-two", type=date.fromisoformat, required=True)
    summary.add_argument("--script", type=Path, required=True, help="the JSON the second-day script printed")
    args = parser.parse_args(argv)

    from cautionflow.adapters.register import Register
    from cautionflow.config import load_config

    with Register(load_config(args.config).register_url) as register:
        engine = register.engine
        if args.command == "snapshot":
            args.out.write_text(json.dumps(fingerprint(engine, args.mail, args.letters)), encoding="utf-8")
            return 0
        if args.command == "rerun-check":
            before = json.loads(args.before.read_text(encoding="utf-8"))
            after = fingerprint(engine, args.mail, args.letters)
            changed = differences(before, after)
            runs = day_summary(engine, args.day)["syncs"]
            if changed:
                print(f"Rerun of {args.day}: NOT idempotent: " + "; ".join(changed), file=sys.stderr)
                return 1
            print(f"Rerun of {args.day}: nothing sent ({len(after['mail'])} emails in {args.mail} before and "
                  f"after), nothing changed ({len(after['tables'])} register tables identical; "
                  f"sync_runs records the day's {runs} syncs).")
            return 0
        script = json.loads(args.script.read_text(encoding="utf-8").splitlines()[-1])
        one, two = day_summary(engine, args.day_one), day_summary(engine, args.day_two)
        lines = format_day(f"Day 1, {args.day_one:%A %d %B %Y}: the housing database as built", one)
        lines += format_day(f"Day 2, {args.day_two:%A %d %B %Y}: the next morning", two, script, watched=True)
        print("\n".join(lines))
        return 0


if __name__ == "__main__":
    raise SystemExit(main())
