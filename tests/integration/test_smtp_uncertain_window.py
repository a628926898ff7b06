"""SMTP's uncertain window (issue 18, finding 6): the reply to the end of DATA.

Once the final "." has gone, the server may have stored the message even if its reply never comes.
RFC 5321 4.5.3.2.6 gives that reply 10 minutes ("DATA Termination"), not the command timeout; a
client that gives up sooner and sends again makes copies (the probe: 5 copies of one digest to each
of 40 recipients, a server answering after 5 s and `timeout_seconds: 3`). These tests use a real
aiosmtpd server that stores each message and then answers late, or never, on SQLite and PostgreSQL.

Policy: the policies README's "Principles" want a warning about a risk to staff to reach the people
who visit, once and dependably: a contractor sent five copies of a list it is told to delete when
superseded cannot tell which is current, and a person has to decide when delivery is uncertain.
"""

from __future__ import annotations

import asyncio
import json
import re

import pytest
import yaml

from cautionflow.adapters.register import Register
from cautionflow.clock import FixedClock
from cautionflow.config import ConfigError, load_config, parse_config
from cautionflow.steps import run_deadlines, run_digests, run_sync
from tests.deployment import (
    ACME,
    DUE,
    FAST,
    MOMENT,
    NIGHT_DESK,
    SOUTHSIDE,
    command_config,
    deployment,
    disclosures,
    outbox_rows,
    outbox_rows_at,
    prepare,
    resend_failed,
)
from tests.support import AS_OF


def copies(server, recipients=DUE) -> dict[str, int]:
    """Messages each recipient's mailbox holds (a copy with the same Message-ID counts too)."""
    return {r: len(server.handler.messages_for(r)) for r in recipients}


def test_a_slow_reply_to_the_end_of_data_is_waited_for_and_each_recipient_gets_one_copy(
    databases, tmp_path, mail_server
):
    # Commands time out after 1 s; the end of DATA is answered after 2 s. Today's main gave up
    # after 1 s and sent again: one copy per attempt.
    config = deployment(databases, tmp_path, mail_server.port, smtp={"timeout_seconds": 1})
    prepare(databases, config)
    mail_server.handler.delay_data_reply = 2.0

    summary = run_digests(config, as_of=AS_OF, run_id="slow", retry=FAST, clock=FixedClock(MOMENT))

    assert copies(mail_server) == {ACME: 1, SOUTHSIDE: 1, NIGHT_DESK: 1}
    assert (summary["sent"], summary["pending"], summary["failed"], summary["complete"]) == (3, 0, 0, True)
    assert {(r["recipient_email"], r["status"], r["attempts"]) for r in outbox_rows(databases)} == {
        (e, "sent", 1) for e in DUE
    }


def test_no_reply_within_the_data_timeout_is_uncertain_and_never_resent_by_a_run(databases, tmp_path, mail_server):
    from cautionflow.services.resend import resend_failed as resend_failed_mail
    from cautionflow.services.run_summary import summary_counts, summary_message
    from cautionflow.services.status import format_status, register_status

    def resend_failed_service(*args, **kwargs):  # the digests' failed mail only, as `digests resend-failed`
        return resend_failed_mail(*args, kinds=("digest",), **kwargs)

    config = deployment(databases, tmp_path, mail_server.port,
                        smtp={"timeout_seconds": 1, "data_timeout_seconds": 1.5})
    prepare(databases, config)
    mail_server.handler.delay_data_reply = 4.0  # stored at once, answered after the client gave up

    first = run_digests(config, as_of=AS_OF, run_id="late", retry=FAST, clock=FixedClock(MOMENT))

    assert copies(mail_server) == {ACME: 1, SOUTHSIDE: 1, NIGHT_DESK: 1}  # never sent blindly again
    assert (first["sent"], first["pending"], first["failed"], first["uncertain"], first["complete"]) == (
        0, 0, 0, 3, False,
    )
    assert {m["email"] for m in first["uncertain_messages"]} == DUE
    assert all("may have accepted it" in m["error"] for m in first["uncertain_messages"]), first
    assert {(r["recipient_email"], r["status"]) for r in outbox_rows(databases)} == {(e, "uncertain") for e in DUE}
    assert disclosures(databases) == []  # the log records what the server is known to have taken

    # A rerun of the step (or an Airflow retry) sends nothing: uncertain mail is never claimed.
    mail_server.handler.delay_data_reply = 0.0
    rerun = run_digests(config, as_of=AS_OF, run_id="rerun", retry=FAST, clock=FixedClock(MOMENT))
    assert (rerun["queued"], rerun["sent"], rerun["uncertain"], rerun["complete"]) == (0, 0, 3, False)
    assert copies(mail_server) == {ACME: 1, SOUTHSIDE: 1, NIGHT_DESK: 1}

    # Operations see it: `cautionflow status` and the daily run summary.
    register = Register(config.register_url)
    try:
        status = register_status(register)
        assert status["outbox"]["digest"] == {"uncertain": 3}
        text = format_status(status, organisation="Example Homes")
        assert "digest emails: uncertain 3" in text
        assert "delivery is uncertain" in text and "--include-uncertain" in text
        counts = summary_counts(register, AS_OF)
        assert counts["emails_today"]["digest"] == {"uncertain": 3}
        subject, body = summary_message("Example Homes", AS_OF, counts)
        assert subject.endswith("(needs a look)")
        assert "delivery is uncertain" in body and "digest 3" in body
        # ...and the register page's per-recipient table.
        from cautionflow.services.register_page import deliveries

        with register.figures.reading() as read:
            shown = {(d.recipient_email, d.uncertain, d.sent) for d in deliveries(read) if d.kind == "digest"}
        assert shown == {(email, 1, 0) for email in DUE}

        # resend-failed leaves it without the flag; with it, resends each once.
        left = asyncio.run(resend_failed_service(register, _settings(config), config.recipients,
                                                 clock=FixedClock(MOMENT)))
        assert (left.requeued, left.sent, left.uncertain) == (0, 0, 3)
        assert copies(mail_server) == {ACME: 1, SOUTHSIDE: 1, NIGHT_DESK: 1}
        resent = asyncio.run(resend_failed_service(register, _settings(config), config.recipients,
                                                   include_uncertain=True, clock=FixedClock(MOMENT)))
        assert (resent.requeued, resent.sent, resent.uncertain, resent.complete) == (3, 3, 0, True)
        assert {m["status"] for m in resent.requeued_messages} == {"uncertain"}
        again = asyncio.run(resend_failed_service(register, _settings(config), config.recipients,
                                                  include_uncertain=True, clock=FixedClock(MOMENT)))
        assert (again.requeued, again.sent) == (0, 0)
    finally:
        register.dispose()
    assert copies(mail_server) == {ACME: 2, SOUTHSIDE: 2, NIGHT_DESK: 2}  # the one chosen resend each
    assert {r["status"] for r in outbox_rows(databases)} == {"sent"}
    assert {x["recipient_email"] for x in disclosures(databases)} == DUE


def _settings(config):
    from cautionflow.adapters.mail import SmtpSettings

    return SmtpSettings.from_config(config.smtp)


def test_a_connection_dropped_after_the_final_dot_is_uncertain(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, smtp={"max_concurrency": 1})
    prepare(databases, config)
    mail_server.handler.drop_data_reply = True  # stores the message, then hangs up instead of answering

    summary = run_digests(config, as_of=AS_OF, run_id="dropped", retry=FAST, clock=FixedClock(MOMENT))

    assert copies(mail_server) == {ACME: 1, SOUTHSIDE: 1, NIGHT_DESK: 1}
    assert (summary["sent"], summary["pending"], summary["uncertain"], summary["complete"]) == (0, 0, 3, False)
    assert {r["status"] for r in outbox_rows(databases)} == {"uncertain"}


def test_the_command_line_shows_uncertain_mail_and_resends_it_only_when_asked(tmp_path, mail_server, capsys):
    from cautionflow.cli import main

    path = command_config(tmp_path, mail_server.port)
    data = yaml.safe_load(path.read_text())
    data["smtp"].update(timeout_seconds=1, data_timeout_seconds=1)
    path.write_text(yaml.safe_dump(data))
    config = load_config(path)
    run_sync(config, as_of=AS_OF, run_id="sync")
    run_deadlines(config, as_of=AS_OF, run_id="deadlines")
    mail_server.handler.delay_data_reply = 3.0

    code = main(["run", "digests", "--config", str(path), "--as-of", AS_OF.isoformat()])
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (code, summary["uncertain"], summary["complete"]) == (3, 3, False)
    mail_server.handler.delay_data_reply = 0.0

    assert main(["status", "--config", str(path)]) == 0
    shown = capsys.readouterr().out
    assert "digest emails: uncertain 3" in shown and "--include-uncertain" in shown

    code, left = resend_failed(capsys, path)
    assert code == 0 and (left["requeued"], left["sent"], left["uncertain"]) == (0, 0, 3)
    assert copies(mail_server) == {ACME: 1, SOUTHSIDE: 1, NIGHT_DESK: 1}
    code, resent = resend_failed(capsys, path, "--include-uncertain")
    assert code == 0, resent
    assert (resent["requeued"], resent["sent"], resent["uncertain"]) == (3, 3, 0)
    assert copies(mail_server) == {ACME: 2, SOUTHSIDE: 2, NIGHT_DESK: 2}
    assert {r["status"] for r in outbox_rows_at(tmp_path)} == {"sent"}

    with pytest.raises(SystemExit):
        main(["digests", "resend-failed", "--help"])
    assert "may get it twice" in " ".join(capsys.readouterr().out.split())


@pytest.mark.parametrize("value", [0, -1, 3601, "soon"])
def test_the_data_timeout_is_checked_when_the_config_is_loaded(value):
    with pytest.raises(ConfigError, match=r"^config: smtp\.data_timeout_seconds: ") as caught:
        parse_config({
            "organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///register.db",
            "source": {"url": "sqlite:///housing.db"},
            "smtp": {"host": "127.0.0.1", "port": 25, "security": "none", "sender": "alerts@example.org",
                     "data_timeout_seconds": value},
            "recipients": [],
        })
    assert "\n" not in str(caught.value)


# --- Airflow --------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def airflow_home(tmp_path_factory) -> dict[str, str]:
    from tests.support import migrated_airflow

    return migrated_airflow(tmp_path_factory.mktemp("airflow_uncertain"))


@pytest.mark.airflow
def test_the_airflow_task_fails_without_a_retry_when_delivery_is_uncertain(airflow_home, tmp_path, mail_server):
    import subprocess
    import sys
    from pathlib import Path

    from tests.deployment import RECIPIENTS, SOURCE, write_config
    from tests.support import write_sqlite_source

    write_sqlite_source(tmp_path / "housing.db", SOURCE)
    write_config({
        "organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///register.db",
        "source": {"url": "sqlite:///housing.db"}, "output_dir": "reports",
        "smtp": {"host": "127.0.0.1", "port": mail_server.port, "security": "none", "timeout_seconds": 1,
                 "data_timeout_seconds": 1, "sender": "Example Homes <alerts@example.org>"},
        "recipients": RECIPIENTS,
    }, tmp_path)
    env = {**airflow_home, "CAUTIONFLOW_HOME": str(tmp_path),
           "AIRFLOW_VAR_CAUTIONFLOW_CONFIG": str(tmp_path / "cautionflow.yaml")}
    for step in ("sync", "deadlines"):
        ran = subprocess.run([sys.executable, "-m", "cautionflow", "run", step, "--config", "cautionflow.yaml",
                              "--as-of", AS_OF.isoformat()], cwd=tmp_path, env=env, capture_output=True, text=True,
                             timeout=120)
        assert ran.returncode == 0, ran.stderr
    mail_server.handler.delay_data_reply = 3.0

    result = subprocess.run(
        [str(Path(sys.executable).parent / "airflow"), "dags", "test", "cautionflow_digests", AS_OF.isoformat()],
        env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600,
    )

    log_text = result.stdout + result.stderr
    (tmp_path / "airflow-dags-test.log").write_text(log_text)  # the whole log, for whoever reads a failure
    # The run itself ends "success" (its last task, the daily summary, runs whatever happened), so
    # the digests task's own state is read from the log: failed on its first try, no retry.
    [ti_id] = set(re.findall(r"TaskInstance: cautionflow_digests\.send_digests .*? ti_id=([0-9a-f-]+)", log_text))
    states = re.findall(rf"new_state=(\w+) rows_affected=1 ti_id={ti_id}", log_text)
    assert states == ["failed"], log_text[-4000:]
    assert "up_for_retry" not in log_text.lower()
    assert "AirflowFailException" in log_text and "never confirmed by the server" in log_text
    assert copies(mail_server) == {ACME: 1, SOUTHSIDE: 1, NIGHT_DESK: 1}
    assert {r["status"] for r in outbox_rows_at(tmp_path)} == {"uncertain"}
