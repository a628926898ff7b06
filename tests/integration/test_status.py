"""`cautionflow status`: the register, the outbox and the letters queue at a glance (SQLite and PostgreSQL)."""

from __future__ import annotations

from cautionflow.adapters.register import Register
from cautionflow.services.status import format_status, register_status
from cautionflow.steps import run_digests, run_letters
from tests.integration.test_digests_delivery import AS_OF, FAST, SOURCE, deployment, prepare
from tests.support import alert_row

# A visit-in-pairs alert added a fortnight ago and not yet notified: a decision letter is owed (Teign 7).
NEW = alert_row(alert_id="NEW1", area="SOUTH", effective_from="2026-11-09", person_ref="P0009",
                person_name="Nia New", address="4 Mill Lane", postcode="EW3 1CD")


def test_status_counts_what_operations_needs_to_see(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, letters={"output_dir": str(tmp_path / "letters")})
    prepare(databases, config, rows=[*SOURCE, NEW])
    run_letters(config, as_of=AS_OF, run_id="letters")
    mail_server.handler.refuse["rota@acme.example"] = "550 5.1.1 no such mailbox"
    run_digests(config, as_of=AS_OF, run_id="digests", retry=FAST)

    register = Register(config.register_url)
    try:
        status = register_status(register)
    finally:
        register.dispose()

    assert status["active"] == 5 and status["ended"] == 1
    assert status["outbox"]["digest"] == {"failed": 1, "sent": 2}  # the refused contractor is shown, not lost
    assert status["letters"] == {"queued": 1}
    text = format_status(status, organisation="Example Homes")
    assert "digest emails: failed 1, sent 2" in text
    assert "resident letters:" in text
