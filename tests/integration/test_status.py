"""`cautionflow status`: the register, the outbox and the letters queue at a glance (SQLite and PostgreSQL)."""

from __future__ import annotations

from cautionflow.adapters.register import Register
from cautionflow.services.status import format_status, register_status
from cautionflow.steps import run_digests, run_letters
from tests.deployment import FAST, SOURCE, deployment, prepare
from tests.support import AS_OF, alert_row

# A visit-in-pairs alert added a fortnight ago and not yet notified: a decision letter is owed (Teign 7).
NEW = alert_row(alert_id="NEW1", area="SOUTH", effective_from="2026-11-09", person_ref="P0009",
                person_name="Nia New", address="4 Mill Lane", postcode="EW3 1CD")
# Not to be told, but nobody recorded why: the decision must be recorded (Hexagon 5.4), so officers see it.
SILENT = alert_row(alert_id="SIL1", area="SOUTH", effective_from="2026-11-02", person_ref="P0010",
                   person_name="Sol Silent", address="6 Mill Lane", postcode="EW3 1CD", notify_resident=0,
                   no_notify_reason=None)


def test_status_counts_what_operations_needs_to_see(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, letters={"output_dir": str(tmp_path / "letters")})
    prepare(databases, config, rows=[*SOURCE, NEW, SILENT])
    run_letters(config, as_of=AS_OF, run_id="letters")
    mail_server.handler.refuse["rota@acme.example"] = "550 5.1.1 no such mailbox"
    run_digests(config, as_of=AS_OF, run_id="digests", retry=FAST)

    register = Register(config.register_url)
    try:
        status = register_status(register)
    finally:
        register.dispose()

    assert status["active"] == 6 and status["ended"] == 1
    # ...and two older alerts nobody was told about, past the look-back window (no letter now).
    assert status["officer_flags_open"] == {"no_notify_reason_missing": 1, "untold_before_lookback": 2}
    assert status["outbox"]["digest"] == {"failed": 1, "sent": 2}  # the refused contractor is shown, not lost
    assert status["letters"] == {"queued": 1}
    text = format_status(status, organisation="Example Homes")
    assert "digest emails: failed 1, sent 2" in text
    assert "resident letters:" in text
    assert "open for officers (cautionflow letters flags): no_notify_reason_missing 1, untold_before_lookback 2" in text



def test_status_says_when_the_last_sync_finished(databases, tmp_path):
    """Digests and reminders refuse a register whose last sync is too old (issue 18), so the status an
    operator reads first says when that sync finished, in UTC, as the clock that ran it said."""
    import datetime as dt

    from cautionflow.clock import FixedClock
    from cautionflow.steps import run_sync

    config = deployment(databases, tmp_path, 2525)  # no mail is sent: the port is never used
    databases.write_source(SOURCE)
    london_morning = dt.datetime(2026, 7, 1, 6, 41, tzinfo=dt.timezone(dt.timedelta(hours=1)))  # BST
    run_sync(config, as_of=dt.date(2026, 7, 1), run_id="summer", clock=FixedClock(london_morning))

    register = Register(config.register_url)
    try:
        status = register_status(register)
    finally:
        register.dispose()

    assert status["last_sync"]["finished_at"] == "2026-07-01 05:41 UTC"
    assert "last sync (as of 2026-07-01, finished 2026-07-01 05:41 UTC):" in format_status(status, organisation="X")
