"""The test deployment every delivery test shares: one organisation ("Example Homes", Dover policy)
with its recipients and a housing export, configured over a `databases` pair (tests/conftest.py)
and a real SMTP server's port (tests/smtp_server.py); the day synced and its deadlines computed;
and readers of what the register then holds. Synthetic data only.

Plain helpers, not fixtures: a test builds the deployment it is about (other recipients, another
policy, extra config) by calling `deployment(...)` with what differs.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import create_engine, select, text

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import normalise_url
from cautionflow.adapters.letters import LetterQueue
from cautionflow.adapters.mail import RetryPolicy
from cautionflow.adapters.register import Register
from cautionflow.config import CautionflowConfig, parse_config
from cautionflow.services.governance_reports import REPORTS, run_governance_reports
from tests.support import AS_OF, REPO, alert_row, write_sqlite_source

MOMENT = dt.datetime(2026, 11, 23, 6, 0, tzinfo=dt.UTC)  # when the outbox is told things happened
FAST = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)  # retries that do not slow the suite

ACME, SOUTHSIDE, NIGHT_DESK = "rota@acme.example", "bookings@southside-gas.example", "ooh@callcentre.example"
WEEKLY, OFFICERS = "jobs@windows.example", "officers@example.org"
RECIPIENTS = [
    {"name": "Acme Repairs", "email": ACME, "role": "contractor", "areas": ["NORTH"]},
    {"name": "Southside Gas", "email": SOUTHSIDE, "role": "contractor", "areas": ["SOUTH", "EAST"]},
    {"name": "Night Desk", "email": NIGHT_DESK, "role": "out_of_hours"},
    {"name": "Weekly Windows", "email": WEEKLY, "role": "contractor", "areas": ["NORTH"], "schedule": "weekly",
     "weekday": "friday"},
    {"name": "Housing Officers", "email": OFFICERS, "role": "officer"},
]
DUE = {ACME, SOUTHSIDE, NIGHT_DESK}  # digests due on AS_OF (a Monday): not the Friday contractor's
SCRIPT_ADDRESS = "<script>alert(1)</script> 2 Larkspur Close"
# The landlord's contact block every letters section carries (config letters.contact; synthetic, the
# phone number from Ofcom's range for drama). `deployment` adds it to a `letters` section that names none.
APPEALS_EMAIL = "appeals@example-homes.example"
CONTACT = {
    "address": ["Civic Offices", "1 Harbour Way", "Westford", "WF1 1AA"],
    "phone": "01632 960123",
    "appeals_email": APPEALS_EMAIL,
    "signed_by": "Jordan Example",
    "signed_title": "Tenancy Services Manager",
}

SOURCE = [
    alert_row(alert_id="N1", area="NORTH", address="1 Larkspur Close, Eastwick", person_name="Alex Example",
              note="NOTE-SECRET-N1 threatened an operative"),
    alert_row(alert_id="N2", area="NORTH", alert_code="DOG", subject_type="address", person_ref=None,
              person_name=None, address=SCRIPT_ADDRESS, note="NOTE-SECRET-N2"),
    alert_row(alert_id="S1", area="SOUTH", alert_code="NFO", person_ref="P0002", person_name="Sam Sample",
              address="5 Mill Lane", postcode="EW3 1CD", note="NOTE-SECRET-S1"),
    # Flagged: unknown code and an impossible date. Still a live warning (safety first).
    alert_row(alert_id="E1", area="EAST", alert_code="XXZ", effective_from="31/02/2025", person_ref="P0003",
              person_name="Eve Example", address="9 Quay Street", postcode="EW4 5EF", note="NOTE-SECRET-E1"),
    alert_row(alert_id="X1", area="NORTH", status="ended", address="7 Ended Row", person_name="Olly Ended",
              note="NOTE-SECRET-X1"),
]
NAMES = ("Alex Example", "Sam Sample", "Eve Example", "Olly Ended")


# --- the deployment -------------------------------------------------------------------------------


def deployment(dbs, tmp_path, port, *, smtp=None, recipients=RECIPIENTS, **extra) -> CautionflowConfig:
    """Example Homes' parsed config over `dbs`, mailing through the server on `port`; `extra`
    replaces or adds whole top-level keys (a `letters` section gets CONTACT unless it names a contact)."""
    if extra.get("letters") is not None:
        extra["letters"] = {"contact": CONTACT, **extra["letters"]}
    return parse_config(
        {
            "organisation": "Example Homes",
            "policy": "dover",
            "register_url": dbs.register_url,
            "source": {"url": dbs.source_url},
            "output_dir": str(tmp_path / "reports"),
            "smtp": {"host": "127.0.0.1", "port": port, "security": "none",
                     "sender": "Example Homes <alerts@example.org>", **(smtp or {})},
            "recipients": recipients,
            **extra,
        },
        home=REPO,
    )


def prepare(dbs, config, rows=SOURCE, as_of=AS_OF) -> None:
    """The housing export holds `rows`; the day is synced and its deadlines computed."""
    from cautionflow.steps import run_deadlines, run_sync

    dbs.write_source(rows)
    run_sync(config, as_of=as_of, run_id=f"sync-{as_of}")
    run_deadlines(config, as_of=as_of, run_id=f"deadlines-{as_of}")


def write_config(config: CautionflowConfig | Mapping[str, Any], folder: Path) -> str:
    """`config` (parsed, or as the file's mapping) as the cautionflow.yaml in `folder` that an
    officer or cron passes to `--config`; returns its path as the command line takes it."""
    data = config if isinstance(config, Mapping) else config.model_dump(mode="json", exclude={"home"})
    path = folder / "cautionflow.yaml"
    path.write_text(yaml.safe_dump(dict(data)))
    return str(path)


def command_config(tmp_path, port, recipients=RECIPIENTS) -> Path:
    """A config file for the command line, beside a SQLite source holding SOURCE."""
    write_sqlite_source(tmp_path / "housing.db", SOURCE)
    return Path(write_config({
        "organisation": "Example Homes", "policy": "dover", "register_url": f"sqlite:///{tmp_path / 'register.db'}",
        "source": {"url": f"sqlite:///{tmp_path / 'housing.db'}"}, "output_dir": str(tmp_path / "reports"),
        "smtp": {"host": "127.0.0.1", "port": port, "security": "none", "sender": "Example Homes <alerts@example.org>"},
        "recipients": recipients,
    }, tmp_path))


def resend_failed(capsys, path, *extra) -> tuple[int, dict]:
    """`cautionflow digests resend-failed`: its exit code and the summary it prints last."""
    from cautionflow.cli import main

    code = main(["digests", "resend-failed", "--config", str(path), *extra])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def text_of(part: EmailMessage) -> str:
    return part.get_content().replace("\r\n", "\n")



# --- letters (Teign: the resident letters queue) ---------------------------------------------------


def letters_config(databases, tmp_path, port, **letters):
    return deployment(databases, tmp_path, port, recipients=[], policy="teign",
                      letters={"output_dir": str(tmp_path / "letters"), **letters})


def cli(capsys, *args) -> tuple[int, str]:
    from cautionflow.cli import main

    code = main(list(args))
    return code, capsys.readouterr().out


def queued(databases):
    register = Register(databases.register_url)
    try:
        return {x.alert_id: x for x in LetterQueue(register.engine).list()}
    finally:
        register.dispose()


def translated_pdf(path: Path, words: str) -> Path:
    """A stand-in for the translation an officer had made (synthetic words, one page)."""
    from fpdf import FPDF

    pdf = FPDF(format="A4")
    pdf.add_page()
    pdf.set_font("helvetica", size=12)
    pdf.text(20, 30, words)
    path.write_bytes(bytes(pdf.output()))
    return path


# --- governance reports (Karbon, with an equality section) -----------------------------------------

# Aggregate equality counts, as the landlord's query would return them (no individuals).
EQUALITY = [
    ("Age band", "16-34", 400, 30),
    ("Age band", "35-64", 1000, 40),
    ("Age band", "65 and over", 580, 3),  # fewer than 5 flagged
    ("Age band", "Not recorded", 20, 2),  # fewer than 5 flagged: with 65+, two hidden cells
    ("Sex", "Female", 1100, 40),
    ("Sex", "Male", 880, 33),  # hidden as well: otherwise Not recorded = 75 - 40 - 33
    ("Sex", "Not recorded", 20, 2),
]
# Summed per group so that PostgreSQL returns Decimal counts, as a real GROUP BY query does.
EQUALITY_SQL = """
SELECT characteristic, group_label, SUM(households) AS households, SUM(flagged_households) AS flagged_households
FROM equality_counts GROUP BY characteristic, group_label ORDER BY MIN(seq)
"""


def write_equality_table(url: str) -> None:
    engine = create_engine(normalise_url(url))
    with engine.begin() as conn:
        conn.execute(text("DROP TABLE IF EXISTS equality_counts"))
        conn.execute(text(
            "CREATE TABLE equality_counts (seq integer, characteristic text, group_label text, "
            "households integer, flagged_households integer)"
        ))
        conn.execute(
            text("INSERT INTO equality_counts VALUES (:seq, :c, :g, :n, :a)"),
            [{"seq": i, "c": c, "g": g, "n": n, "a": a} for i, (c, g, n, a) in enumerate(EQUALITY)],
        )
    engine.dispose()


def governance_config(dbs, tmp_path: Path, *, equality: bool = True):
    query = tmp_path / "equality_counts.sql"
    query.write_text(EQUALITY_SQL)
    data = {
        "organisation": "Example Homes",
        "policy": "karbon",
        "register_url": dbs.register_url,
        "source": {"url": dbs.source_url},
        "output_dir": str(tmp_path / "reports"),
    }
    if equality:
        data["equality"] = {"query": str(query)}
    return parse_config(data, home=REPO)


def run_reports(config, register, as_of, output_dir: Path | None = None, *, reports=REPORTS):
    """`run_governance_reports` given what the wiring layer takes from the config."""
    from cautionflow.adapters.equality_source import configured_equality
    from cautionflow.adapters.templates import renderer
    from cautionflow.steps import policy_profile

    return run_governance_reports(
        register, as_of, organisation=config.organisation,
        folder=Path(output_dir) if output_dir is not None else config.path(config.output_dir),
        render=renderer(config), profile=policy_profile(config), equality=configured_equality(config),
        reports=reports,
    )


def write_governance_reports(config, register, as_of, output_dir: Path | None = None) -> dict[str, Path]:
    """Every governance report from the config, as the housekeeping step writes them; their paths."""
    return run_reports(config, register, as_of, output_dir).paths


# --- what the register holds (read directly, not through the code under test) ---------------------


def _rows(register_url: str, table) -> list[dict]:
    engine = create_engine(normalise_url(register_url))
    with engine.connect() as conn:
        rows = [r._asdict() for r in conn.execute(select(table).order_by(table.c.id))]
    engine.dispose()
    return rows


def outbox_rows(dbs) -> list[dict]:
    return _rows(dbs.register_url, schema.outbox)


def disclosures(dbs) -> list[dict]:
    return _rows(dbs.register_url, schema.disclosures)


def outbox_rows_at(tmp_path) -> list[dict]:
    """The outbox of the SQLite register `command_config` put in `tmp_path`."""
    return _rows(f"sqlite:///{tmp_path / 'register.db'}", schema.outbox)


def disclosures_at(tmp_path) -> list[dict]:
    return _rows(f"sqlite:///{tmp_path / 'register.db'}", schema.disclosures)
