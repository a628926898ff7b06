"""No report, email, letter or page shows "nan", "NaN", "NaT" or "None" as a value (issue 12, part 2).

The issue: the All Alerts report showed "nan" as the contact name (CSV and HTML) and the overdue list
an asset reference "nan", because pandas 3 reads a NULL text column as NaN, which is truthy
(`r.person_name or ...` kept it) and prints as "nan". So this test runs the real steps on the
synthetic demo housing database (`cautionflow.demo.housing`, fixed as-of dates, never today) and reads
back everything a person is shown:

- the reports: All Alerts and the overdue list (deadlines step), the governance reports, the print
  batch's manifest: every CSV cell (csv module) and every HTML text node;
- every email the real SMTP server (tests/smtp_server.py) accepted: digests to contractors and to an
  out-of-hours call handler, the officers' review reminder (the as-of date is a Monday, their day),
  the residents' letters by email, the daily run summary, the late-sync notice and a task failure
  notice: every header, every text part, CSV attachments cell by cell, PDF attachments read back;
- every letter: its stored HTML, and its PDF's text read back with pypdf;
- the subject access export (json, html, pdf, the resident's and the officer's copy) of people
  whose records have letters, disclosures, withheld alerts, quarantined rows, households;
- the register page and its review lists, as an Airflow user sees them (the page's app with a token
  from Airflow's SimpleAuthManager, as in test_register_page.py).

Each token counts as a whole word (`\\bnan\\b`, ...), and pandas' `<NA>` too. The test asserts it saw
every email kind and every letter kind, so it cannot pass by looking at nothing. It uses the demo
generator's seed 3: with the default seed the demo decides appeals one way only, and this one
produces all five letter kinds."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.smtp_server import serving
from tests.support import AS_OF, demo_config, migrated_airflow

LONDON = ZoneInfo("Europe/London")
CLOCK_AT = dt.datetime(2026, 11, 23, 9, 0, tzinfo=LONDON)  # when the day's steps "ran"
SEED = 3  # see the module's docstring
TOKEN = re.compile(r"\b(?:nan|NaN|NaT|None)\b|<NA>")
JWT_SECRET = "cautionflow-test-jwt-secret-" + "n" * 40

EMAIL_KINDS = {
    "digest to a contractor", "digest to out_of_hours", "reminder", "letter",
    "operations-summary", "operations-late", "operations-failure",
}


# --- reading back what a person sees ----------------------------------------------------------------


class _Text(HTMLParser):
    """The text of an HTML document as a reader sees it: every text node (entities decoded, so
    `&lt;NA&gt;` is `<NA>`), and the title attributes browsers show as tooltips."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.texts: list[str] = []

    def handle_data(self, data: str) -> None:
        if data.strip():
            self.texts.append(data.strip())

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.texts.extend(value for name, value in attrs if name in ("title", "alt", "aria-label") and value)


def html_texts(html: str) -> list[str]:
    parser = _Text()
    parser.feed(html)
    parser.close()
    return parser.texts


def csv_cells(text: str) -> list[str]:
    return [cell for row in csv.reader(io.StringIO(text)) for cell in row]


def pdf_text(data: bytes) -> str:
    from pypdf import PdfReader

    return "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)


@dataclass
class Seen:
    """Every piece of text checked, by where it was found, and the offending ones."""

    checked: dict[str, int] = field(default_factory=dict)
    found: list[str] = field(default_factory=list)

    def check(self, where: str, values: Iterable[str]) -> None:
        count = 0
        for value in values:
            count += 1
            if TOKEN.search(value):
                self.found.append(f"{where}: {value[:160]!r}")
        assert count, f"{where}: nothing to check"  # an empty reading would pass vacuously
        self.checked[where] = count

    def check_html(self, where: str, html: str) -> None:
        self.check(where, html_texts(html))

    def check_pdf(self, where: str, data: bytes) -> None:
        self.check(where, pdf_text(data).splitlines())


def email_kind(message: EmailMessage, roles: dict[str, str]) -> str:
    """The operations notices say their kind in a header; outbox messages in their Message-ID
    (`<cautionflow.KIND.DATE.KEY@domain>`); a digest's recipient's role tells the two digests apart."""
    if message["X-Cautionflow-Kind"]:
        return str(message["X-Cautionflow-Kind"])
    kind = str(message["Message-ID"]).strip("<>").split(".")[1]
    if kind == "digest":
        role = roles[str(message["To"].addresses[0].addr_spec)]
        return "digest to a contractor" if role == "contractor" else f"digest to {role}"
    return kind


def check_email(seen: Seen, where: str, message: EmailMessage) -> None:
    seen.check(f"{where} headers", (f"{name}: {value}" for name, value in message.items()))
    for i, part in enumerate(message.walk()):
        if part.is_multipart():
            continue
        label = f"{where} part {i} ({part.get_content_type()})"
        if part.get_content_type() == "text/html":
            seen.check_html(label, part.get_content())
        elif part.get_content_type() == "text/csv":
            seen.check(label, csv_cells(part.get_payload(decode=True).decode("utf-8-sig")))
        elif part.get_content_type() == "application/pdf":
            seen.check_pdf(label, part.get_payload(decode=True))
        elif part.get_content_maintype() == "text":
            seen.check(label, part.get_content().splitlines() or [""])
        else:
            pytest.fail(f"{label}: an attachment this test cannot read")


# --- the day's run -------------------------------------------------------------------------------


@dataclass
class DemoDay:
    folder: Path
    config_path: Path
    config: object
    mail: list[tuple[str, EmailMessage]]
    airflow_env: dict[str, str]


@pytest.fixture(scope="module")
def demo_day(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DemoDay]:
    """The demo's day through the real steps and a real SMTP server; Airflow's metadata migrated
    for the register page's login."""
    from cautionflow.adapters.letters import LetterQueue
    from cautionflow.adapters.mail import RetryPolicy, SmtpSettings
    from cautionflow.adapters.register import Register
    from cautionflow.callbacks import notify_operations_of_failure
    from cautionflow.clock import FixedClock
    from cautionflow.config import load_config
    from cautionflow.demo.housing import build_housing_database
    from cautionflow.integrations.airflow.tasks import check_sync_finished_task
    from cautionflow.services.letter_dispatch import dispatch_letters
    from cautionflow.steps import (
        run_deadlines,
        run_digests,
        run_governance,
        run_letters,
        run_reminders,
        run_summary_async,
        run_sync,
    )

    fast = RetryPolicy(attempts=3, initial_delay=0.01, max_delay=0.05)
    folder = tmp_path_factory.mktemp("no_missing_tokens")
    build_housing_database(folder / "housing.db", as_of=AS_OF, seed=SEED)
    with serving() as server, pytest.MonkeyPatch.context() as mp:
        data = demo_config(folder, register_url="sqlite:///register.db", operations={"daily_summary": True})
        data["smtp"]["port"] = server.port
        config_path = folder / "cautionflow.yaml"
        config_path.write_text(yaml.safe_dump(data))
        # The Airflow side (the lateness watch, the failure callback) reads the config from the Variable.
        mp.setenv("CAUTIONFLOW_HOME", str(folder))
        mp.setenv("AIRFLOW_VAR_CAUTIONFLOW_CONFIG", str(config_path))
        for name in ("AIRFLOW_CONN_CAUTIONFLOW_SMTP", "AIRFLOW_CONN_CAUTIONFLOW_REGISTER", "AIRFLOW_CONN_HOUSING_DB"):
            mp.delenv(name, raising=False)
        config = load_config(config_path, home=folder)
        clock = FixedClock(CLOCK_AT)

        run_sync(config, as_of=AS_OF, run_id="test/sync", clock=clock)
        run_deadlines(config, as_of=AS_OF, run_id="test/deadlines")
        run_reminders(config, as_of=AS_OF, run_id="test/reminders", retry=fast, clock=clock)
        run_letters(config, as_of=AS_OF, run_id="test/letters")
        register = Register(config.register_url)
        try:  # an officer approves the day's batch and dispatches it: print batch, and letters by email
            LetterQueue(register.engine).approve(now=clock(), batch=AS_OF)
            asyncio.run(dispatch_letters(
                register, SmtpSettings.from_config(config.smtp), organisation=config.organisation,
                output_dir=config.path(config.letters.output_dir), retry=fast, clock=clock,
            ))
        finally:
            register.dispose()
        run_digests(config, as_of=AS_OF, run_id="test/digests", retry=fast, clock=clock)
        asyncio.run(run_summary_async(config, as_of=AS_OF, run_id="test/summary", retry=fast, clock=clock))
        run_governance(config, as_of=AS_OF, run_id="test/governance")
        # The next morning's watch at 07:00 finds no sync for that day: the late-sync notice.
        seven = dt.datetime(2026, 11, 24, 7, 0, tzinfo=LONDON)
        late = asyncio.run(check_sync_finished_task(
            {"logical_date": seven, "dag": SimpleNamespace(dag_id="cautionflow_sync_watch"),
             "run_id": f"scheduled__{seven.isoformat()}"},
            clock=FixedClock(seven + dt.timedelta(minutes=1)),
        ))
        assert late["late"] is True
        # A task of an asset-triggered DAG fails for good (no logical date, no log link): the failure notice.
        ti = SimpleNamespace(dag_id="cautionflow_deadlines", task_id="compute_deadlines", run_id="asset_triggered__x",
                             try_number=None)
        notify_operations_of_failure({
            "dag": SimpleNamespace(dag_id="cautionflow_deadlines"), "ti": ti, "task_instance": ti,
            "run_id": "asset_triggered__x", "logical_date": None, "exception": ValueError("the register is locked"),
        })
        airflow_env = migrated_airflow(folder / "airflow")
        yield DemoDay(folder, config_path, config, [(r.recipient, r.message) for r in server.handler.received],
                      airflow_env)


# --- the checks ------------------------------------------------------------------------------------


def test_no_report_shows_a_missing_value_token(demo_day):
    seen = Seen()
    reports = demo_day.folder / "reports"
    names = sorted(p.name for p in reports.iterdir() if p.is_file())
    day = AS_OF.isoformat()
    for expected in (f"all-alerts-{day}.csv", f"all-alerts-{day}.html", f"overdue-reviews-{day}.csv",
                     f"non-notification-{day}.csv", f"stale-alerts-{day}.html", f"survey-exclusions-{day}.csv",
                     "equality-2026-Q4.csv", "equality-2026-Q4.html"):
        assert expected in names, (expected, names)
    manifests = sorted((demo_day.folder / "letters" / "dispatch").glob("*-manifest.csv"))
    assert len(manifests) == 1
    for path in [*(reports / n for n in names), *manifests]:
        text = path.read_text(encoding="utf-8-sig")  # a CSV's BOM is for Excel
        if path.suffix == ".csv":
            seen.check(path.name, csv_cells(text))
        else:
            seen.check_html(path.name, text)
    assert not seen.found, "\n".join(seen.found)

    # The rows the issue named are there, with what a reader should see instead.
    with (reports / f"all-alerts-{day}.csv").open(newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    no_name = [r for r in rows if r["Contact Name"].startswith("(")]
    assert no_name and {r["Contact Name"] for r in no_name} <= {"(household)", "(address alert)", "(name not recorded)"}
    assert any(r["Asset Reference"] == "" for r in rows)  # a blank cell, not "nan"


def test_no_email_shows_a_missing_value_token(demo_day):
    roles = {r.email: r.role for r in demo_day.config.recipients}
    seen = Seen()
    kinds: dict[str, int] = {}
    for recipient, message in demo_day.mail:
        kind = email_kind(message, roles)
        kinds[kind] = kinds.get(kind, 0) + 1
        check_email(seen, f"{kind} to {recipient}", message)
    assert set(kinds) == EMAIL_KINDS, kinds
    assert not seen.found, "\n".join(seen.found)


def test_no_letter_shows_a_missing_value_token(demo_day):
    from cautionflow.adapters.letters import LetterQueue
    from cautionflow.adapters.register import Register
    from cautionflow.domain.letters import KINDS
    from cautionflow.services.letters import stored_pdf

    config = demo_day.config
    output = config.path(config.letters.output_dir)
    seen = Seen()
    register = Register(config.register_url)
    try:
        queue = LetterQueue(register.engine)
        letters = queue.list()
        assert letters
        for letter in letters:
            where = f"letter {letter.id} ({letter.kind}, {letter.status})"
            seen.check_html(f"{where} html", queue.html(letter.id))
            seen.check_pdf(f"{where} pdf", stored_pdf(output, letter.pdf_path).read_bytes())
    finally:
        register.dispose()
    [batch] = (output / "dispatch").glob("print-batch-*.pdf")
    seen.check_pdf(batch.name, batch.read_bytes())
    assert {x.kind for x in letters} == set(KINDS)  # every kind of letter was read
    assert {"dispatched", "held"} <= {x.status for x in letters}
    assert not seen.found, "\n".join(seen.found)


def _dsar_people(db: Path) -> dict[str, str]:
    """A person for each kind of record a subject access export lays out differently."""
    import sqlite3

    queries = {
        "letter by email": "SELECT person_ref FROM letters WHERE channels LIKE '%email%' AND status = 'dispatched'",
        "held letter": "SELECT person_ref FROM letters WHERE status = 'held'",
        "withheld, no reason": "SELECT person_ref FROM alerts WHERE notify_resident = 0 AND no_notify_reason IS NULL "
                               "AND person_ref IS NOT NULL",
        "withheld, reason": "SELECT person_ref FROM alerts WHERE notify_resident = 0 AND no_notify_reason IS NOT NULL "
                            "AND person_ref IS NOT NULL",
        "household": "SELECT person_ref FROM alerts WHERE subject_type = 'household' AND person_ref IS NOT NULL",
        "ended": "SELECT person_ref FROM alerts WHERE register_state = 'ended' AND person_ref IS NOT NULL",
        "flagged": "SELECT person_ref FROM alerts WHERE dq_flags IS NOT NULL AND person_ref IS NOT NULL",
        "quarantined": "SELECT json_extract(raw_row, '$.person_ref') FROM quarantine "
                       "WHERE json_extract(raw_row, '$.person_ref') IS NOT NULL",
    }
    people = {}
    with sqlite3.connect(db) as conn:
        for what, sql in queries.items():
            row = conn.execute(sql + " ORDER BY 1 LIMIT 1").fetchone()
            assert row and row[0], f"the demo has no person with a {what} record"
            people[what] = row[0]
    return people


def test_no_subject_access_export_shows_a_missing_value_token(demo_day):
    from cautionflow.adapters.register import Register
    from cautionflow.adapters.templates import renderer
    from cautionflow.services import subject_access as sa

    config = demo_day.config
    render = renderer(config)
    seen = Seen()
    register = Register(config.register_url)
    try:
        for what, person_ref in _dsar_people(demo_day.folder / "register.db").items():
            for officer in (False, True):
                export = sa.gather_export(register, person_ref, include_withheld=officer,
                                          organisation=config.organisation, produced_on=AS_OF)
                for fmt in sa.FORMATS:
                    where = f"dsar {person_ref} ({what}, {'officer' if officer else 'resident'}) {fmt}"
                    path = sa.write_export(export, fmt, render, sa.default_path(demo_day.folder / "dsar", export, fmt))
                    data = path.read_bytes()
                    if fmt == "json":
                        seen.check(where, data.decode().splitlines())
                        json.loads(data)  # and it is JSON (NaN would not be)
                    elif fmt == "html":
                        seen.check_html(where, data.decode())
                    else:
                        seen.check_pdf(where, data)
    finally:
        register.dispose()
    assert not seen.found, "\n".join(seen.found)


@pytest.fixture(scope="module")
def page_client(demo_day):
    """The register page's app as the api-server mounts it, and an Airflow viewer's token signed by
    Airflow's own SimpleAuthManager (as test_register_page.py does)."""
    from airflow.api_fastapi.app import init_auth_manager, purge_cached_app
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from cautionflow.web.register_page import create_app
    from tests.integration.conftest import airflow_metadata

    mp = pytest.MonkeyPatch()
    mp.setenv("AIRFLOW__CORE__AUTH_MANAGER",
              "airflow.api_fastapi.auth.managers.simple.simple_auth_manager.SimpleAuthManager")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "ops:viewer")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS", "False")
    mp.setenv("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE", str(demo_day.folder / "passwords.json"))
    mp.setenv("AIRFLOW__API_AUTH__JWT_SECRET", JWT_SECRET)
    mp.setenv("CAUTIONFLOW_CONFIG", str(demo_day.config_path))
    mp.setenv("CAUTIONFLOW_HOME", str(demo_day.folder))
    mp.delenv("AIRFLOW_CONN_CAUTIONFLOW_REGISTER", raising=False)
    purge_cached_app()
    try:
        with airflow_metadata(demo_day.airflow_env):  # the DAG runs and token revocation are read there
            token = init_auth_manager().generate_jwt(SimpleAuthManagerUser(username="ops", role="viewer"))
            root = FastAPI()
            root.mount("/cautionflow", create_app())
            with TestClient(root, base_url="http://airflow.test") as client:
                client.headers["Authorization"] = f"Bearer {token}"
                yield client
    finally:
        purge_cached_app()
        mp.undo()


def test_the_register_page_shows_no_missing_value_token(page_client):
    seen = Seen()
    for path in ("/cautionflow/", "/cautionflow/reviews/overdue", "/cautionflow/reviews/due",
                 "/cautionflow/reviews/overdue?area=(none)", "/cautionflow/reviews/due?code=NOSUCH"):
        response = page_client.get(path)
        assert response.status_code == 200, (path, response.text[:300])
        seen.check_html(path, response.text)
    assert "overdue-count" in page_client.get("/cautionflow/").text  # the page itself, not a login page
    assert not seen.found, "\n".join(seen.found)


# --- the check itself ---------------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["nan", "NaN", "NaT", "None", "<NA>", "Dear None,", "AST0001, nan"])
def test_the_check_catches_each_token(text):
    assert TOKEN.search(text)


@pytest.mark.parametrize("text", ["Nancy", "Fernando", "Nantwich", "NATO", "none yet", "not recorded", ""])
def test_the_check_passes_ordinary_words(text):
    assert not TOKEN.search(text)
