"""Retention: anonymise the personal details of alerts that ended longer ago than the policy keeps them.

Teign 13: "When a sanction is removed, all details will be retained for a period in accordance
with the organisational data retention policy"; Dover 10.1: the council processes the data "in
line with current data protection legislation". Neither policy states the period, so the profile's
`retention_months_after_end` has no default: while it is unset nothing is anonymised and the
summary says retention is not configured (no period is pretended to be law).

What counts as personal details (cleared) and what stays for statistics:

* `alerts`: PERSONAL_FIELDS are set to NULL (who: person and tenancy references, name; where:
  address, postcode, property reference; contact: email; the facts: note, the reason the resident
  was given, and the recorded reason for not telling). Kept: alert id, code, subject type, area, every date, statuses, outcomes,
  source, channel, language, large print, data-quality flags, and `row_hash` (left as it was,
  so a source that still holds the ended alert unchanged does not bring the details back; if the
  source changes it, the sync writes it again and the next run anonymises it again).
* `alert_history`: in `changed_fields`, the old and new values of those fields become
  "[anonymised]"; which fields changed, and when, stays.
* `letters`: name, address lines, email, person reference, the rendered HTML and a translation's
  file name are cleared; the PDF files under `letters.output_dir` (the letter, and the English one
  kept beside a translation) are deleted when the folder is known (print batches, which combine
  many letters, are not rewritten). A letter not yet dispatched is held, withdrawn.
* `outbox`: a message that disclosed the alert and is no longer outstanding (sent, failed,
  superseded) has its body replaced by a note (digests and reminders list many alerts; the
  disclosure log still says who was sent which alert, when). A letter emailed to the resident
  also has the resident's name and address cleared from the outbox and the disclosure log.
  Messages still pending or sending are left alone (they would be sent as queued).
* `quarantine`: rows with the alert's id have those fields cleared from the raw row.
* `lookups` (the look-ups' log): every read that returned the alert has the parameters that could
  name or locate the resident (`q`, `postcode`, `asset_ref`) replaced by "[anonymised]" in its
  recorded query (`domain.lookup.anonymised_query`); who read which alert id, when, stays
  (`lookup_results`).

Every anonymisation is logged in `anonymisation_log` (alert, run, as-of date, the end the period
ran from, the period, what was cleared). A rerun changes nothing: an alert whose details are all
cleared is not selected again. The summary holds alert ids and field names, never the details.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.adapters.database import stored_date
from cautionflow.clock import Clock, system_clock
from cautionflow.domain.deadlines import add_months
from cautionflow.domain.lookup import anonymised_query

if TYPE_CHECKING:
    from cautionflow.adapters.retention_store import RetentionStore, RetentionTransaction
    from cautionflow.domain.policy import PolicyProfile

PERSONAL_FIELDS: tuple[str, ...] = (
    "person_ref", "person_name", "tenancy_ref", "asset_ref", "address", "postcode", "email", "note",
    "no_notify_reason", "resident_reason",
)
ANONYMISED = "[anonymised]"
TERMINAL = ("sent", "failed", "superseded")
_REMOVED = "[removed by the retention run"
WITHDRAWN = "withdrawn: personal details anonymised under the retention policy"
NOT_CONFIGURED = (
    "retention is not configured: the policy profile sets no retention_months_after_end, so nothing was "
    "anonymised (Teign 13 and Dover 10 leave the period to the landlord's retention policy)"
)


class RetentionRegister(Protocol):
    retention: RetentionStore

    def migrate(self) -> None: ...


@dataclass(frozen=True)
class Anonymisation:
    """One alert whose personal details were (or, in a dry run, would be) cleared."""

    alert_id: str
    ended_on: dt.date
    fields: list[str]  # alert columns that held a value
    alert_history: int  # history rows that held personal values
    letters: int
    letter_pdfs: int  # letter PDF files deleted
    outbox: int  # message bodies replaced
    disclosures: int  # disclosure rows whose recipient was the resident
    quarantine: int
    lookups: int = 0  # look-ups whose recorded query could name or locate the resident

    def cleared(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if k not in ("alert_id", "ended_on")}


@dataclass(frozen=True)
class RetentionSummary:
    step: str
    as_of: str
    run_id: str
    configured: bool
    retention_months: int | None
    dry_run: bool
    ended_alerts: int  # ended alerts in the register
    ended_with_personal_details: int  # of those, still holding personal details
    anonymised: int  # anonymised by this run (or, dry run, that would be)
    alerts: list[dict[str, Any]] = field(default_factory=list)
    message: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def ended_on(alert: dict[str, Any], ended_in_register: dt.date | None) -> dt.date:
    """When the alert ended, for counting the retention period: the source's `ends_on` where it is
    recorded and not later than the register saw the end; else the day the register recorded the end;
    else (inserted already ended) the day the register first saw it."""
    register_end = ended_in_register or stored_date(alert["last_changed_on"]) or stored_date(alert["first_seen_on"])
    ends = stored_date(alert.get("ends_on"))
    if ends is not None and (register_end is None or ends <= register_end):
        return ends
    return register_end  # type: ignore[return-value]


def is_due(ended: dt.date, months: int, as_of: dt.date) -> bool:
    """Kept for `months` after it ended, anonymised from that day on (same-day rule as deadlines)."""
    return add_months(ended, months) <= as_of


def _anonymise_changes(raw: str | None) -> tuple[str | None, bool]:
    if not raw:
        return raw, False
    try:
        changes = json.loads(raw)
    except ValueError:
        return raw, False
    if not isinstance(changes, dict):
        return raw, False
    touched = False
    for name in PERSONAL_FIELDS:
        pair = changes.get(name)
        if isinstance(pair, list) and any(v is not None and v != ANONYMISED for v in pair):
            changes[name] = [None if v is None else ANONYMISED for v in pair]
            touched = True
    return (json.dumps(changes, default=str) if touched else raw), touched


def _anonymise_raw_row(raw: str) -> tuple[str, bool]:
    try:
        row = json.loads(raw)
    except ValueError:
        return raw, False
    if not isinstance(row, dict):
        return raw, False
    touched = [k for k in PERSONAL_FIELDS if row.get(k) not in (None, "", ANONYMISED)]
    for k in touched:
        row[k] = ANONYMISED
    return (json.dumps(row, default=str) if touched else raw), bool(touched)


def _without_shown(raw: str, alert_id: str) -> str | None:
    """The outbox's disclosed_alerts JSON without what it showed of `alert_id`; None when it kept nothing."""
    try:
        listed = json.loads(raw)
    except ValueError:
        return None
    shown = listed.get("shown") if isinstance(listed, dict) else None
    if not isinstance(shown, dict) or alert_id not in shown:
        return None
    del shown[alert_id]
    if not shown:
        del listed["shown"]
    return json.dumps(listed)


def _disclosed(raw: str, alert_id: str) -> bool:
    try:
        listed = json.loads(raw)
    except ValueError:
        return False
    return any(alert_id in (listed.get(k) or ()) for k in ("current", "lifted")) if isinstance(listed, dict) else False


def anonymise_expired(
    register: RetentionRegister, profile: PolicyProfile, *, as_of: dt.date, run_id: str, dry_run: bool = False,
    letters_dir: Path | None = None, clock: Clock = system_clock,
) -> RetentionSummary:
    """Anonymise (or, `dry_run`, list) the ended alerts kept longer than the profile's retention period."""
    register.migrate()
    months = profile.retention_months_after_end
    done: list[Anonymisation] = []
    with register.retention.transaction() as tx:
        ended = tx.ended_alerts(PERSONAL_FIELDS)
        holding = [a for a in ended if any(a[c] is not None for c in PERSONAL_FIELDS) or a["anonymised_on"] is None]
        base = {"step": "retention", "as_of": as_of.isoformat(), "run_id": run_id, "retention_months": months,
                "dry_run": dry_run, "ended_alerts": len(ended),
                "ended_with_personal_details": sum(any(a[c] is not None for c in PERSONAL_FIELDS) for a in ended)}
        if months is None:
            return RetentionSummary(configured=False, anonymised=0, message=NOT_CONFIGURED, **base)
        register_ends = tx.register_end_dates()
        due = []
        for alert in holding:
            end = ended_on(alert, register_ends.get(alert["alert_id"]))
            if is_due(end, months, as_of):
                due.append((alert, end))
        moment = clock()
        for alert, end in due:
            done.append(_anonymise_one(tx, alert, end, dry_run=dry_run, letters_dir=letters_dir, run_id=run_id,
                                       as_of=as_of))
        if done and not dry_run:
            tx.log([
                {"alert_id": a.alert_id, "run_id": run_id, "as_of": as_of, "anonymised_at": moment,
                 "ended_on": a.ended_on, "retention_months": months,
                 "fields_cleared": json.dumps(a.cleared(), sort_keys=True)}
                for a in done
            ])
    verb = "would anonymise" if dry_run else "anonymised"
    return RetentionSummary(
        configured=True, anonymised=len(done),
        alerts=[{"alert_id": a.alert_id, "ended_on": a.ended_on.isoformat(), **a.cleared()} for a in done],
        message=f"{verb} {len(done)} alert(s) ended more than {months} month(s) before {as_of.isoformat()}",
        **base,
    )


def _anonymise_one(
    tx: RetentionTransaction, alert: dict[str, Any], end: dt.date, *, dry_run: bool, letters_dir: Path | None,
    run_id: str, as_of: dt.date,
) -> Anonymisation:
    alert_id = alert["alert_id"]
    fields = [c for c in PERSONAL_FIELDS if alert[c] is not None]

    history_updates = []
    for row_id, raw in tx.history(alert_id):
        new, touched = _anonymise_changes(raw)
        if touched:
            history_updates.append((new, row_id))

    letter_ids = [(row_id, status, files) for row_id, status, name, *files in tx.letters(alert_id) if name != ANONYMISED]
    pdfs = []
    if letters_dir is not None:
        for _, _, files in letter_ids:
            for pdf in filter(None, files):
                path = letters_dir / pdf  # a Path or an ObjectStoragePath; an old absolute path joins as itself
                if path.is_file():
                    pdfs.append(path)

    marker = f"{_REMOVED} {run_id} on {as_of.isoformat()}: it disclosed alert {alert_id}]"
    messages = tx.messages_listing(alert_id, statuses=TERMINAL, not_starting=_REMOVED)
    outbox_ids = [(row_id, kind) for row_id, kind, listed in messages if _disclosed(listed, alert_id)]
    # What those messages showed of the alert, kept for the next digest's "Changed" (`shown`), holds
    # short hashes of cells such as the name and address: a dictionary of names could find them
    # again, so they go too (an anonymised alert has ended long since: nothing compares with it).
    shown_updates = [
        (new, row_id) for row_id, _, listed in messages if (new := _without_shown(listed, alert_id)) is not None
    ]
    disclosures = tx.resident_disclosures(alert_id, except_name=ANONYMISED)

    quarantine_updates = []
    for row_id, raw in tx.quarantined(alert_id):
        new, touched = _anonymise_raw_row(raw)
        if touched:
            quarantine_updates.append((new, row_id))

    lookup_updates = []
    for row_id, raw in tx.lookups_returning(alert_id):
        new_query, touched = _anonymise_query(raw)
        if touched:
            lookup_updates.append((new_query, row_id))

    if not dry_run:
        note = f"<p>{ANONYMISED}: this letter's personal details were removed by the retention run on {as_of.isoformat()}.</p>"
        tx.anonymise(
            alert_id, personal_fields=PERSONAL_FIELDS, as_of=as_of, anonymised=ANONYMISED, history=history_updates,
            letters=[row_id for row_id, _, _ in letter_ids], letter_html=note,
            withdraw=[row_id for row_id, status, _ in letter_ids if status in ("queued", "approved")],
            withdrawn=WITHDRAWN, messages=[(marker, row_id) for row_id, _ in outbox_ids],
            letter_messages=[row_id for row_id, kind in outbox_ids if kind == "letter"],
            disclosures=[row_id for (row_id,) in disclosures], quarantine=quarantine_updates,
            lookups=lookup_updates, shown=shown_updates,
        )
        for path in pdfs:
            path.unlink(missing_ok=True)
    return Anonymisation(
        alert_id=alert_id, ended_on=end, fields=fields, alert_history=len(history_updates), letters=len(letter_ids),
        letter_pdfs=len(pdfs), outbox=len(outbox_ids), disclosures=len(disclosures), quarantine=len(quarantine_updates),
        lookups=len(lookup_updates),
    )


def _anonymise_query(raw: str | None) -> tuple[str | None, bool]:
    """A look-up's recorded query (JSON) with what could name or locate the resident replaced."""
    try:
        query = json.loads(raw) if raw else None
    except ValueError:
        return raw, False
    if not isinstance(query, dict):
        return raw, False
    cleared, touched = anonymised_query(query)
    return (json.dumps(cleared, sort_keys=True, ensure_ascii=False) if touched else raw), touched
