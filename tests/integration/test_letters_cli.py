"""`cautionflow letters ...` as an officer runs it: real processes, a SQLite register, a real SMTP
server. Synthetic data only."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from tests.deployment import CONTACT, translated_pdf
from tests.support import AS_OF, alert_row, cautionflow, write_sqlite_source

ERIN = "erin@example.com"
DAY = AS_OF.isoformat()  # the day the officer approves and dispatches: the letters bear it
SOURCE = [
    alert_row(alert_id="ADD", person_ref="P1", person_name="Alex Added", address="1 Larkspur Close, Eastwick",
              effective_from="2026-11-20"),
    alert_row(alert_id="MAIL", alert_code="DOG", person_ref="P2", person_name="Erin Email", address="2 Mill Lane",
              postcode="EW3 1CD", effective_from="2026-11-16", preferred_channel="email", email=ERIN),
    alert_row(alert_id="KEPT", person_ref="P3", person_name="Kim Kept", address="3 Quay Street",
              effective_from="2025-11-01", notified_on="2025-11-02", last_reviewed_on="2026-11-02",
              review_outcome="retained"),
    alert_row(alert_id="POLSKI", person_ref="P4", person_name="Piotr Example", address="4 Bay View",
              effective_from="2026-11-18", language="pl"),
    alert_row(alert_id="OLD", person_ref="P5", person_name="Olive Older", address="5 Ash Row",
              effective_from="2026-01-05"),
]


def run(config: Path, *args: str):
    return cautionflow(*args, "--config", str(config), cwd=config.parent)


def last_json(result) -> dict:
    assert result.returncode in (0, 3), result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def rows(result) -> list[dict[str, str]]:
    """The tab-separated table before the JSON line, as dicts by header."""
    lines = result.stdout.strip().splitlines()[:-1]
    return list(csv.DictReader(lines, delimiter="\t"))


@pytest.fixture
def queued(tmp_path: Path, mail_server) -> Path:
    """A deployment whose letters step has queued today's letters, by the command line."""
    (tmp_path / "var").mkdir()
    write_sqlite_source(tmp_path / "var" / "housing.db", SOURCE)
    config = tmp_path / "cautionflow.yaml"
    config.write_text(yaml.safe_dump({
        "organisation": "Example Homes",
        "policy": "teign",
        "register_url": "sqlite:///var/register.db",
        "source": {"url": "sqlite:///var/housing.db"},
        "output_dir": "var/reports",
        "smtp": {"host": "127.0.0.1", "port": mail_server.port, "security": "none",
                 "sender": "Example Homes <alerts@example.org>"},
        "letters": {"output_dir": "var/letters", "contact": CONTACT},
    }))
    for step in ("sync", "deadlines", "letters"):
        done = cautionflow("run", step, "--config", str(config), "--as-of", AS_OF.isoformat(), cwd=tmp_path)
        assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert (summary["queued"], summary["held"], summary["flags"]["open"]) == (4, 1, 1)
    return config


def test_letters_list_shows_the_queue_and_filters_by_status(queued):
    everything = run(queued, "letters", "list")
    assert last_json(everything) == {"letters": 4, "status": None}
    listed = {r["alert"]: r for r in rows(everything)}
    assert {k: v["status"] for k, v in listed.items()} == {
        "ADD": "queued", "MAIL": "queued", "KEPT": "queued", "POLSKI": "held"}
    assert (listed["MAIL"]["channels"], listed["KEPT"]["kind"]) == ("email", "review_kept")
    assert listed["POLSKI"]["hold_reason"] == "translation needed (pl)"
    assert all(r["batch"] == AS_OF.isoformat() for r in listed.values())

    held = run(queued, "letters", "list", "--status", "held")
    assert last_json(held)["letters"] == 1 and [r["alert"] for r in rows(held)] == ["POLSKI"]
    refused = run(queued, "letters", "list", "--status", "lost")
    assert refused.returncode == 2 and "invalid choice" in refused.stderr


def test_letters_approve_one_letter_then_the_rest_of_the_batch(queued):
    ids = {r["alert"]: r["id"] for r in rows(run(queued, "letters", "list"))}

    one = run(queued, "letters", "approve", "--id", ids["ADD"], "--as-of", DAY)
    assert last_json(one) == {"approved": 1, "ids": [int(ids["ADD"])], "batch": None, "id": int(ids["ADD"])}
    # The officer sees what was approved, a line a letter, before the JSON.
    assert [(r["id"], r["alert"], r["kind"], r["name"]) for r in rows(one)] == [
        (ids["ADD"], "ADD", "alert_added", "Alex Added")]
    assert last_json(run(queued, "letters", "approve", "--id", ids["ADD"], "--as-of", DAY))["approved"] == 0  # already approved
    assert last_json(run(queued, "letters", "approve", "--id", ids["POLSKI"], "--as-of", DAY))["approved"] == 0  # held stays held

    batch = run(queued, "letters", "approve", "--batch", DAY, "--as-of", DAY)
    assert last_json(batch) == {"approved": 2, "ids": sorted(int(ids[a]) for a in ("MAIL", "KEPT")),
                                "batch": AS_OF.isoformat(), "id": None}  # MAIL and KEPT; POLSKI held
    assert sorted(r["alert"] for r in rows(batch)) == ["KEPT", "MAIL"]
    approved = run(queued, "letters", "list", "--status", "approved")
    assert sorted(r["alert"] for r in rows(approved)) == ["ADD", "KEPT", "MAIL"]

    neither = run(queued, "letters", "approve")
    assert neither.returncode == 2 and "one of the arguments --batch --id is required" in neither.stderr
    bad_date = run(queued, "letters", "approve", "--batch", "23/11/2026")
    assert bad_date.returncode == 2 and "expected a date as YYYY-MM-DD" in bad_date.stderr


def test_letters_show_prints_the_letter_as_the_resident_reads_it(queued):
    ids = {r["alert"]: r["id"] for r in rows(run(queued, "letters", "list"))}

    shown = run(queued, "letters", "show", "--id", ids["ADD"])
    assert shown.returncode == 0, shown.stderr
    first, *rest = shown.stdout.splitlines()
    assert first == f"Letter {ids['ADD']}: alert_added for alert ADD, queued; by post; batch {AS_OF.isoformat()}"
    text = " ".join(" ".join(rest).split())
    assert "--- page 1 of" in text
    # The PDF's own words: the envelope window's name and address, and the letter's title.
    assert "Alex Added" in text and "1 Larkspur Close" in text
    assert "We have added a caution alert to your record" in text
    held = run(queued, "letters", "show", "--id", ids["POLSKI"])
    assert held.returncode == 0 and "held (translation needed (pl))" in held.stdout.splitlines()[0]

    missing = run(queued, "letters", "show", "--id", "999")
    assert missing.returncode == 2
    assert missing.stderr.strip() == (
        "cautionflow: error: letter 999: no such letter (cautionflow letters list shows the queue)")


def test_letters_dispatch_prints_and_emails_the_approved_letters_once(queued, mail_server):
    assert last_json(run(queued, "letters", "approve", "--batch", DAY, "--as-of", DAY))["approved"] == 3

    dispatched = run(queued, "letters", "dispatch", "--as-of", DAY)

    assert dispatched.returncode == 0, dispatched.stderr
    summary = last_json(dispatched)
    assert (summary["approved"], summary["printed"], summary["emailed"], summary["sent"]) == (3, 2, 1, 1)
    assert (summary["held_listed"], summary["complete"]) == (1, True)
    assert Path(summary["print_batch"]).is_file() and Path(summary["manifest"]).is_file()
    assert len(mail_server.handler.messages_for(ERIN)) == 1
    assert sorted(r["alert"] for r in rows(run(queued, "letters", "list", "--status", "dispatched"))) == [
        "ADD", "KEPT", "MAIL"]

    again = last_json(run(queued, "letters", "dispatch", "--as-of", DAY))
    assert (again["approved"], again["sent"], again["printed"]) == (0, 0, 0)
    assert len(mail_server.handler.messages_for(ERIN)) == 1  # never twice


def test_letters_flags_and_translated_by_the_command_line(queued, tmp_path):
    flags = run(queued, "letters", "flags")
    assert last_json(flags) == {"open": 1, "resolved": 0}
    [flag] = rows(flags)
    assert (flag["alert"], flag["name"], flag["flag"], flag["since"]) == (
        "OLD", "Olive Older", "untold_before_lookback", AS_OF.isoformat())

    held = {r["alert"]: r["id"] for r in rows(run(queued, "letters", "list"))}["POLSKI"]
    translation = translated_pdf(tmp_path / "piotr-pl.pdf", "TLUMACZENIE")
    attached = run(queued, "letters", "translated", "--id", held, "--file", str(translation))
    assert last_json(attached)["status"] == "queued" and last_json(attached)["translation_file"] == "piotr-pl.pdf"
    [row] = rows(run(queued, "letters", "list", "--status", "queued", ))[-1:]
    assert (row["alert"], row["translation"]) == ("POLSKI", "pl: piotr-pl.pdf")

    missing = run(queued, "letters", "translated", "--id", held, "--file", str(tmp_path / "nope.pdf"))
    assert missing.returncode == 2 and missing.stderr.startswith("cautionflow: error: ")
