"""Contact instructions people can act on (issue 15, the source side) end to end on SQLite and
PostgreSQL: the source contract's optional `contact_instruction` through the sync, with and without
the column; an active SPOC, CM or DNV alert without one kept and flagged (safety first), the flag
where officers look for flags (`cautionflow status`, the register page); an alert synced before the
rule existed flagged at the next sync; the instruction's cap and one-line rule as the other columns'.

Why the flag (the codes' required actions defer to an arrangement only the instruction gives):
Teign 8 ("specifying a named officer to be the sole point of contact", "restricting contact to a
particular form", "limiting permissible contact to certain times and/or days"), Wandle 3.3 (the
types of restriction), Karbon 8.1 ("do not visit"). Synthetic data only."""

from __future__ import annotations

import datetime as dt
import json

from sqlalchemy import create_engine, select

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.config import parse_config
from cautionflow.domain import validation
from cautionflow.domain.contract import SOURCE_COLUMNS
from cautionflow.steps import run_sync
from cautionflow.steps.reads import register_page, register_status
from tests.deployment import deployment
from tests.support import AS_OF, REPO, alert_row

NEXT_DAY = AS_OF + dt.timedelta(days=1)
SPOC_MISSING = "contact_instruction is missing for a SPOC alert (who to contact and how)"
DNV_MISSING = "contact_instruction is missing for a DNV alert (who approves an emergency visit and how to reach them)"
CM_MISSING = "contact_instruction is missing for a CM alert (the agreed contact arrangements)"
LETTERS_ONLY = "Contact by letter only; no phone calls. Letters are sent by Priya Shah, Tenancy Officer, 01632 960345"

ROWS = [
    alert_row(alert_id="SP1", alert_code="SPOC", person_ref="P1", address="1 Larkspur Close"),
    alert_row(alert_id="CM1", alert_code="CM", person_ref="P2", address="2 Larkspur Close",
              contact_instruction=LETTERS_ONLY),
    alert_row(alert_id="DN1", alert_code="DNV", person_ref="P3", address="3 Larkspur Close"),
    alert_row(alert_id="VP1", alert_code="VIP", person_ref="P4", address="4 Larkspur Close"),  # needs none
    alert_row(alert_id="GONE", alert_code="DNV", person_ref="P5", address="5 Larkspur Close", status="ended",
              ends_on="2026-10-01"),  # ended: nobody acts on it
]


def stored(databases) -> dict[str, dict]:
    engine = create_engine(normalise_url(databases.register_url))
    with engine.connect() as conn:
        rows = {r.alert_id: r._asdict() for r in conn.execute(select(schema.alerts))}
    engine.dispose()
    return rows


def history(databases, run_id: str) -> dict[str, tuple[str, dict | None]]:
    engine = create_engine(normalise_url(databases.register_url))
    h = schema.alert_history
    with engine.connect() as conn:
        rows = {r.alert_id: (r.change, r.changed_fields and json.loads(r.changed_fields))
                for r in conn.execute(select(h).where(h.c.run_id == run_id))}
    engine.dispose()
    return rows


def without_the_column(config, tmp_path):
    """The same deployment reading through a query that does not return contact_instruction."""
    query = tmp_path / "no_instruction.sql"
    query.write_text("SELECT " + ", ".join(c for c in SOURCE_COLUMNS if c != "contact_instruction")
                     + " FROM caution_alerts_export")
    return parse_config({**config.model_dump(mode="json", exclude={"home"}),
                         "source": {"url": config.source.url, "query": str(query)}}, home=REPO)


def test_the_instruction_is_stored_and_an_alert_without_one_is_flagged_where_officers_see_flags(databases, tmp_path):
    config = deployment(databases, tmp_path, 2525)  # no mail is sent: the port is never used
    databases.write_source([
        *ROWS,
        # One line like every column but the note's: a line break becomes a space, flagged.
        alert_row(alert_id="LINES", alert_code="CM", person_ref="P6", address="6 Larkspur Close",
                  contact_instruction="Letters only.\r\nNo calls.\x1b"),
        # Capped at 500 characters like the other free text: the first 500 kept, flagged.
        alert_row(alert_id="LONG", alert_code="SPOC", person_ref="P7", address="7 Larkspur Close",
                  contact_instruction="Call Sam Officer on 01632 960111. " + "x" * 467),
    ])
    summary = run_sync(config, as_of=AS_OF, run_id="sync-1")
    assert (summary["inserted"], summary["quarantined"], summary["flagged"]) == (7, 0, 4)

    alerts = stored(databases)
    assert alerts["CM1"]["contact_instruction"] == LETTERS_ONLY and alerts["CM1"]["dq_flags"] is None
    assert alerts["SP1"]["dq_flags"] == SPOC_MISSING  # kept, flagged: the warning still goes out
    assert alerts["DN1"]["dq_flags"] == DNV_MISSING
    assert alerts["VP1"]["dq_flags"] is None and alerts["GONE"]["dq_flags"] is None
    assert alerts["LINES"]["contact_instruction"] == "Letters only. No calls."
    assert alerts["LINES"]["dq_flags"] == "contact_instruction: control characters removed"
    assert len("Call Sam Officer on 01632 960111. " + "x" * 467) == 501
    assert len(alerts["LONG"]["contact_instruction"]) == 500
    assert alerts["LONG"]["dq_flags"] == "contact_instruction: longer than 500 characters, only the first 500 kept"
    assert {a["register_state"] for a in alerts.values()} == {"active", "ended"}

    # Where officers look for data-quality flags: `cautionflow status` and the register page.
    status, text = register_status(config)
    assert status["active_flagged"] == 4
    assert "active alerts: 6 (4 with data-quality flags)" in text
    page = register_page(config)
    assert page.flags_by_kind[SPOC_MISSING] == 1 and page.flags_by_kind[DNV_MISSING] == 1
    assert {r["alert_id"]: r["flags"] for r in page.flagged_rows}["SP1"] == SPOC_MISSING

    again = run_sync(config, as_of=AS_OF, run_id="sync-2")
    assert (again["updated"], again["unchanged"], again["flagged"]) == (0, 7, 4)  # idempotent, flags and all


def test_a_query_without_the_column_still_syncs_and_flags_every_alert_that_needs_one(databases, tmp_path):
    config = deployment(databases, tmp_path, 2525)
    databases.write_source(ROWS)
    first = run_sync(without_the_column(config, tmp_path), as_of=AS_OF, run_id="without")
    assert (first["read"], first["inserted"], first["quarantined"], first["flagged"]) == (5, 5, 0, 3)
    alerts = stored(databases)
    assert {a: alerts[a]["dq_flags"] for a in ("SP1", "CM1", "DN1", "VP1")} == {
        "SP1": SPOC_MISSING, "CM1": CM_MISSING, "DN1": DNV_MISSING, "VP1": None}
    assert {a["contact_instruction"] for a in alerts.values()} == {None}

    # The landlord maps the column: only the alert that has an instruction changes, and its flag goes.
    second = run_sync(config, as_of=NEXT_DAY, run_id="with")
    assert (second["updated"], second["unchanged"], second["flagged"]) == (1, 4, 2)
    alerts = stored(databases)
    assert (alerts["CM1"]["contact_instruction"], alerts["CM1"]["dq_flags"]) == (LETTERS_ONLY, None)
    assert history(databases, "with") == {"CM1": ("updated", {"contact_instruction": [None, LETTERS_ONLY]})}


def test_an_alert_synced_before_the_rule_gets_the_flag_at_the_next_sync(databases, tmp_path, monkeypatch):
    """The register compares fingerprints, not flags: without the flag in the fingerprint the alerts
    already in the register (whose content did not change) would never show it to officers."""
    config = deployment(databases, tmp_path, 2525)
    databases.write_source(ROWS)
    with monkeypatch.context() as before_the_rule:  # the release before: no such check
        before_the_rule.setattr(validation, "INSTRUCTION_NEEDED", {})
        old = run_sync(config, as_of=AS_OF, run_id="before")
        assert old["flagged"] == 0
        assert run_sync(config, as_of=AS_OF, run_id="before-again")["unchanged"] == 5
    assert {a["dq_flags"] for a in stored(databases).values()} == {None}

    upgraded = run_sync(config, as_of=NEXT_DAY, run_id="upgraded")
    assert (upgraded["updated"], upgraded["unchanged"], upgraded["flagged"]) == (2, 3, 2)
    alerts = stored(databases)
    assert (alerts["SP1"]["dq_flags"], alerts["DN1"]["dq_flags"]) == (SPOC_MISSING, DNV_MISSING)
    assert alerts["SP1"]["last_changed_on"] in (NEXT_DAY, NEXT_DAY.isoformat())
    # No field of the alert changed (the history says so); the alert that needs none is untouched.
    assert history(databases, "upgraded") == {"SP1": ("updated", {}), "DN1": ("updated", {})}
    assert alerts["VP1"]["last_changed_run"] == "before"
    assert run_sync(config, as_of=NEXT_DAY, run_id="upgraded-again")["unchanged"] == 5
    status, _ = register_status(config)
    assert status["active_flagged"] == 2

    # An officer records the instruction in the housing system: the next sync clears the flag.
    told = "Single point of contact: Priya Shah, Tenancy Officer, 01632 960345, weekdays 9-5"
    databases.write_source([{**r, "contact_instruction": told} if r["alert_id"] == "SP1" else r for r in ROWS])
    recorded = run_sync(config, as_of=NEXT_DAY + dt.timedelta(days=1), run_id="recorded")
    assert (recorded["updated"], recorded["flagged"]) == (1, 1)
    assert stored(databases)["SP1"]["dq_flags"] is None
    assert history(databases, "recorded") == {"SP1": ("updated", {"contact_instruction": [None, told]})}
