"""Resend anything failed (issue 15): `cautionflow mail resend-failed` for every kind of outgoing mail,
not only digests, against a real SMTP server that refuses a mailbox for good (550) and later accepts
it, on SQLite and PostgreSQL. Synthetic data only.

Issue 15's test: "A permanently refused reminder is resent by `mail resend-failed` once the server
accepts", exactly once: a second resend, and a rerun of the step, send nothing. The same for an
appeals list, an operations summary and a resident's letter by email; `--kind` filters; `--dry-run`
lists without sending or changing anything. The digests' own tests of `digests resend-failed`
(tests/integration/test_digests_delivery.py, test_smtp_uncertain_window.py) run the same service.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json

from cautionflow.steps import run_appeals, run_reminders, run_summary_async
from cautionflow.steps.letters import run_letters
from tests.deployment import (
    FAST,
    deployment,
    disclosures,
    letters_config,
    outbox_rows,
    prepare,
    queued,
    write_config,
)
from tests.support import AS_OF, alert_row

MONDAY = AS_OF  # 2026-11-23: the officers' reminder and the appeals manager's list are due
OFFICERS, MANAGER, OPS = "officers@example.org", "appeals.manager@example.org", "ops@example.org"
REFUSED = "550 5.1.1 <{}>: Mailbox unavailable"
OFFICER = {"name": "Housing Officers", "email": OFFICERS, "role": "officer"}
APPEALS = {"name": "Appeals Manager", "email": MANAGER, "role": "appeals"}
OPERATIONS = {"name": "Operations", "email": OPS, "role": "operations"}
TOLD = {"effective_from": "2026-10-01", "notified_on": "2026-10-05"}
SOURCE = [
    # Dover 6.16: reviewed 12 months from effective_from; OVER is overdue on 23 November 2026.
    alert_row(alert_id="OVER", effective_from="2025-11-01", person_name="Olive Overdue", note="NOTE-SECRET-1"),
    # Dover 6.35: an appeal received on 6 November is answered by 20 November: overdue, so listed.
    alert_row(alert_id="LATE", person_ref="P1", person_name="Lena Late", appeal_received_on="2026-11-06",
              note="NOTE-SECRET-LATE", **TOLD),
]
ERIN = "erin@example.com"
# Teign: an alert added with the resident's preferred channel email gets its letter by email.
MAIL = alert_row(alert_id="MAIL", alert_code="DOG", person_ref="P2", person_name="Erin Email", address="2 Mill Lane",
                 postcode="EW3 1CD", effective_from="2026-11-16", preferred_channel="email", email=ERIN,
                 resident_reason="You shouted at and threatened a gas engineer at your home on 2 November 2026.")


def resend(capsys, path, *extra) -> tuple[int, dict, str]:
    """`cautionflow mail resend-failed`: exit code, the JSON summary it prints last, and stderr."""
    from cautionflow.cli import main

    code = main(["mail", "resend-failed", "--config", str(path), *extra])
    out, err = capsys.readouterr()
    return code, json.loads(out.strip().splitlines()[-1]), err


def statuses(databases) -> dict[tuple[str, str], str]:
    return {(r["kind"], r["recipient_email"]): r["status"] for r in outbox_rows(databases)}


def the_one_message(mail_server, email, databases, kind):
    """The one message `email` received, checked to be the outbox's message (same Message-ID)."""
    [message] = mail_server.handler.messages_for(email)
    [row] = [r for r in outbox_rows(databases) if r["recipient_email"] == email and r["kind"] == kind]
    assert message["Message-ID"].strip() == row["message_id"]  # the letter's header is folded: a leading space
    return message, row


def test_a_permanently_refused_reminder_is_resent_by_mail_resend_failed_once_the_server_accepts(
    databases, tmp_path, mail_server, capsys,
):
    config = deployment(databases, tmp_path, mail_server.port, recipients=[OFFICER])
    path = write_config(config, tmp_path)
    prepare(databases, config, rows=SOURCE, as_of=MONDAY)
    mail_server.handler.refuse[OFFICERS] = REFUSED.format(OFFICERS)
    first = run_reminders(config, as_of=MONDAY, run_id="monday", retry=FAST)
    assert (first["sent"], first["failed"], first["pending"]) == (0, 1, 0)

    code, still, _ = resend(capsys, path)  # the mailbox is not back yet: tried once more, refused again
    assert code == 3 and (still["requeued"], still["sent"], still["failed"]) == (1, 0, 1)
    assert still["failures"][0]["kind"] == "reminder" and still["failures"][0]["error"].startswith("550 5.1.1")
    assert statuses(databases) == {("reminder", OFFICERS): "failed"}

    mail_server.handler.refuse.clear()  # the officers' mailbox is back
    code, fixed, _ = resend(capsys, path)

    assert code == 0, fixed
    assert (fixed["requeued"], fixed["retired"], fixed["sent"], fixed["failed"], fixed["pending"]) == (1, 0, 1, 0, 0)
    assert fixed["kinds"] == ["reminder"] and fixed["requeued_messages"][0]["kind"] == "reminder"
    message, _ = the_one_message(mail_server, OFFICERS, databases, "reminder")
    assert "caution alert reviews" in message["Subject"]
    assert "NOTE-SECRET" not in message.as_string()  # the reminder as composed: never the note
    # The disclosure log records the reminder once, now that the server accepted it.
    told = [(x["kind"], x["alert_id"], x["recipient_email"]) for x in disclosures(databases)]
    assert told == [("reminder", "OVER", OFFICERS)]

    # Exactly once: a second resend and a rerun of the day's reminder send nothing.
    code, again, _ = resend(capsys, path)
    assert code == 0 and (again["requeued"], again["retired"], again["sent"]) == (0, 0, 0)
    rerun = run_reminders(config, as_of=MONDAY, run_id="rerun", retry=FAST)
    assert (rerun["sent"], rerun["already_sent"]) == (0, 1)
    assert len(mail_server.handler.messages_for(OFFICERS)) == 1
    assert len(disclosures(databases)) == 1


def test_an_appeals_list_and_an_operations_summary_refused_are_resent_once(databases, tmp_path, mail_server, capsys):
    config = deployment(databases, tmp_path, mail_server.port, recipients=[APPEALS, OPERATIONS],
                        operations={"daily_summary": True})
    path = write_config(config, tmp_path)
    prepare(databases, config, rows=SOURCE, as_of=MONDAY)
    for email in (MANAGER, OPS):
        mail_server.handler.refuse[email] = REFUSED.format(email)
    assert run_appeals(config, as_of=MONDAY, run_id="appeals", retry=FAST)["failed"] == 1
    summary = asyncio.run(run_summary_async(config, as_of=MONDAY, run_id="summary", retry=FAST))
    assert summary["failed"] == 1
    assert statuses(databases) == {("appeals", MANAGER): "failed", ("operations", OPS): "failed"}
    mail_server.handler.refuse.clear()

    code, fixed, _ = resend(capsys, path)

    assert code == 0, fixed
    assert (fixed["requeued"], fixed["sent"], fixed["failed"], fixed["pending"]) == (2, 2, 0, 0)
    assert sorted(fixed["kinds"]) == ["appeals", "operations"]
    listing, _ = the_one_message(mail_server, MANAGER, databases, "appeals")
    assert "Lena Late" in listing.get_body(("plain",)).get_content()  # the list as composed on Monday
    notice, _ = the_one_message(mail_server, OPS, databases, "operations")
    assert notice["X-Cautionflow-Kind"] == "operations-summary"
    assert statuses(databases) == {("appeals", MANAGER): "sent", ("operations", OPS): "sent"}

    code, again, _ = resend(capsys, path)
    assert code == 0 and (again["requeued"], again["sent"]) == (0, 0)
    assert run_appeals(config, as_of=MONDAY, run_id="rerun", retry=FAST)["sent"] == 0
    assert len(mail_server.handler.received) == 2


def test_a_refused_letter_email_is_resent_once_and_its_queue_row_stays_dispatched(
    databases, tmp_path, mail_server, capsys,
):
    config = letters_config(databases, tmp_path, mail_server.port, auto_approve=True)
    path = write_config(config, tmp_path)
    prepare(databases, config, rows=[MAIL], as_of=AS_OF)
    mail_server.handler.refuse[ERIN] = REFUSED.format(ERIN)
    first = run_letters(config, as_of=AS_OF, run_id="letters", retry=FAST)
    assert (first["dispatch"]["sent"], first["dispatch"]["failed"]) == (0, 1)
    [before] = queued(databases).values()
    assert before.status == "dispatched"  # marked when its email was queued in the outbox
    mail_server.handler.refuse.clear()

    code, fixed, _ = resend(capsys, path, "--kind", "letter")

    assert code == 0, fixed
    assert (fixed["requeued"], fixed["retired"], fixed["sent"]) == (1, 0, 1)
    message, row = the_one_message(mail_server, ERIN, databases, "letter")
    [attachment] = list(message.iter_attachments())
    assert attachment.get_content_type() == "application/pdf"
    # The letter's queue row still names the message the resident now has: dispatched, same reference.
    [after] = queued(databases).values()
    assert (after.status, after.dispatch_ref, after.dated_on) == (before.status, before.dispatch_ref, before.dated_on)
    assert row["message_id"] in after.dispatch_ref
    assert [(x["kind"], x["alert_id"]) for x in disclosures(databases)] == [("letter", "MAIL")]

    # Exactly once: neither a second resend nor the next letters run sends it again.
    code, again, _ = resend(capsys, path)
    assert code == 0 and (again["requeued"], again["sent"]) == (0, 0)
    rerun = run_letters(config, as_of=AS_OF, run_id="rerun", retry=FAST)
    assert rerun.get("dispatch", {}).get("sent", 0) == 0
    assert len(mail_server.handler.messages_for(ERIN)) == 1


def test_kind_filters_and_dry_run_lists_without_sending(databases, tmp_path, mail_server, capsys):
    config = deployment(databases, tmp_path, mail_server.port, recipients=[OFFICER, APPEALS])
    path = write_config(config, tmp_path)
    prepare(databases, config, rows=SOURCE, as_of=MONDAY)
    for email in (OFFICERS, MANAGER):
        mail_server.handler.refuse[email] = REFUSED.format(email)
    assert run_reminders(config, as_of=MONDAY, run_id="reminders", retry=FAST)["failed"] == 1
    assert run_appeals(config, as_of=MONDAY, run_id="appeals", retry=FAST)["failed"] == 1
    mail_server.handler.refuse.clear()
    failed = {("reminder", OFFICERS): "failed", ("appeals", MANAGER): "failed"}

    code, preview, _ = resend(capsys, path, "--dry-run")
    assert code == 0 and (preview["requeued"], preview["sent"]) == (2, 0)
    assert preview["delivery"] == "dry run: nothing changed"
    assert {(m["kind"], m["email"]) for m in preview["requeued_messages"]} == set(failed)
    assert mail_server.handler.received == [] and statuses(databases) == failed

    code, typo, err = resend(capsys, path, "--kind", "reminders")  # no such kind: a warning, nothing sent
    assert code == 0 and (typo["requeued"], typo["sent"], typo["unknown_kinds"]) == (0, 0, ["reminders"])
    [warning] = [line for line in err.splitlines() if "warning:" in line]  # one line, beside the progress log
    assert "never held mail of kind reminders" in warning
    assert statuses(databases) == failed

    code, reminder, _ = resend(capsys, path, "--kind", "reminder")
    assert code == 0 and (reminder["kinds"], reminder["requeued"], reminder["sent"]) == (["reminder"], 1, 1)
    assert [r.recipient for r in mail_server.handler.received] == [OFFICERS]
    assert statuses(databases) == {("reminder", OFFICERS): "sent", ("appeals", MANAGER): "failed"}

    code, rest, _ = resend(capsys, path)
    assert code == 0 and (rest["requeued"], rest["sent"]) == (1, 1)
    assert sorted(r.recipient for r in mail_server.handler.received) == [MANAGER, OFFICERS]


def test_only_the_latest_reminder_is_resent_and_never_to_a_recipient_whose_role_changed(
    databases, tmp_path, mail_server, capsys,
):
    # The digests' superseding rule holds for every kind in SUPERSEDING_KINDS (adapters/outbox.py): a
    # later reminder replaces an older one. And a message goes only to the name, address and role it
    # was composed for: an officer's list is not sent to someone the config now names otherwise.
    config = deployment(databases, tmp_path, mail_server.port, recipients=[OFFICER])
    prepare(databases, config, rows=SOURCE, as_of=MONDAY)
    mail_server.handler.refuse[OFFICERS] = REFUSED.format(OFFICERS)
    later = MONDAY + dt.timedelta(days=7)
    for day in (MONDAY, later):
        prepare(databases, config, rows=SOURCE, as_of=day)
        assert run_reminders(config, as_of=day, run_id=f"reminders-{day}", retry=FAST)["failed"] == 1
    mail_server.handler.refuse.clear()

    path = write_config(config, tmp_path)
    code, preview, _ = resend(capsys, path, "--dry-run")
    assert code == 0 and (preview["requeued"], preview["retired"]) == (1, 1)
    assert preview["requeued_messages"][0]["as_of"] == later.isoformat()
    assert "a later review reminder" in preview["retired_messages"][0]["reason"]

    moved = deployment(databases, tmp_path, mail_server.port, recipients=[{**OFFICER, "role": "operations"}])
    code, summary, _ = resend(capsys, write_config(moved, tmp_path))
    assert code == 0 and (summary["requeued"], summary["retired"], summary["sent"]) == (0, 2, 0)
    assert "no longer a review reminder recipient" in summary["retired_messages"][-1]["reason"]
    assert mail_server.handler.received == []
    assert set(statuses(databases).values()) == {"superseded"}
