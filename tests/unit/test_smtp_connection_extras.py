"""The `cautionflow_smtp` Connection's extra in the Airflow SMTP provider's conventions as well as
cautionflow's own (issue 12: the compose stack's staging mail set `disable_tls`, `disable_ssl` and
`from_email`, which cautionflow used to ignore silently and so tried STARTTLS against Mailpit)."""

from __future__ import annotations

import pytest

from cautionflow.adapters.mail import SmtpSettings
from cautionflow.config import ConfigError, SmtpConfig
from cautionflow.integrations.airflow.settings import connection_extra_overrides

FILE = SmtpConfig(host="127.0.0.1", port=587, security="starttls", sender="Example Homes <alerts@example.org>")


def settings(extra: dict, **fields) -> SmtpSettings:
    return SmtpSettings.from_config(FILE, overrides={**fields, **connection_extra_overrides(extra)}, environ={})


@pytest.mark.parametrize(
    ("extra", "security"),
    [
        # The provider: SSL from the first byte unless disable_ssl; then STARTTLS unless disable_tls.
        ({"disable_ssl": "true", "disable_tls": "true"}, "none"),
        ({"disable_ssl": "true"}, "starttls"),
        ({"disable_ssl": "true", "disable_tls": "false"}, "starttls"),
        ({"disable_ssl": False}, "tls"),
        ({"disable_tls": True}, "tls"),  # as Airflow reads it: SSL is on unless disabled
        ({}, "starttls"),  # nothing said: the file's own setting
        ({"security": "tls"}, "tls"),  # cautionflow's own key
    ],
)
def test_the_providers_tls_flags_map_to_security(extra, security):
    assert settings(extra).security == security


def test_from_email_keeps_the_files_display_name():
    assert settings({"from_email": "cautions@example.org"}).sender == "Example Homes <cautions@example.org>"
    assert settings({"from_email": "Ops <ops@example.org>"}).sender == "Ops <ops@example.org>"
    assert settings({"sender": "Other <x@example.org>"}).sender == "Other <x@example.org>"


def test_timeout_and_retry_limit():
    chosen = settings({"timeout": "12.5", "retry_limit": "2"})
    assert chosen.timeout == 12.5 and chosen.retry_attempts == 2
    assert settings({}).timeout == 30 and settings({}).retry_attempts is None


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"security": "starttls", "disable_ssl": "true", "disable_tls": "true"},
         "Airflow connection cautionflow_smtp: extra.security 'starttls' contradicts disable_ssl=true, "
         "disable_tls=true (which mean 'none'); keep one of them"),
        ({"sender": "A <a@example.org>", "from_email": "b@example.org"},
         "Airflow connection cautionflow_smtp: extra.sender 'A <a@example.org>' and extra.from_email "
         "'b@example.org' name different addresses; keep one of them"),
        ({"disable_tls": "maybe"}, "Airflow connection cautionflow_smtp: extra.disable_tls: expected true or false, got 'maybe'"),
        ({"timeout": "soon"}, "Airflow connection cautionflow_smtp: extra.timeout: expected a number of at least 1, got 'soon'"),
        ({"retry_limit": "0"}, "Airflow connection cautionflow_smtp: extra.retry_limit: expected a number of at least 1, got '0'"),
    ],
)
def test_a_contradiction_or_a_bad_value_is_one_clear_line(extra, message):
    with pytest.raises(ConfigError) as raised:
        connection_extra_overrides(extra)
    assert str(raised.value) == message


def test_the_same_address_twice_is_no_contradiction():
    assert connection_extra_overrides({"sender": "Ops <OPS@example.org>", "from_email": "ops@example.org"}) == {
        "sender": "Ops <OPS@example.org>"}


def test_clear_text_to_a_remote_host_still_needs_allow_insecure():
    with pytest.raises(ConfigError, match="cautionflow_smtp: smtp: Value error, security 'none' sends in clear text"):
        settings({"disable_ssl": "true", "disable_tls": "true"}, host="mailpit")
    assert settings({"disable_ssl": "true", "disable_tls": "true", "allow_insecure": "true"},
                    host="mailpit").security == "none"


def test_unknown_extras_are_logged_not_silently_dropped(caplog):
    connection_extra_overrides({"ssl_context": "none", "from_email": "a@example.org"})
    assert "extra field(s) ssl_context are not used by cautionflow" in caplog.text
