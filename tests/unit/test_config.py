"""The deployment file: validated on load, errors name the field and the problem."""

from __future__ import annotations

import pytest

from cautionflow.config import ConfigError, load_config, parse_config
from tests.support import REPO

MINIMAL = {
    "organisation": "Example Homes",
    "policy": "dover",
    "register_url": "sqlite:///var/cautionflow.db",
    "source": {"url": "sqlite:///var/demo/housing.db"},
}


def test_the_example_and_demo_files_are_valid():
    for name in ("cautionflow.example.yaml", "cautionflow.demo.yaml"):
        config = load_config(REPO / "include" / "config" / name, home=REPO)
        assert config.organisation


def test_relative_sqlite_urls_and_paths_resolve_against_the_project_home(tmp_path):
    config = parse_config(MINIMAL, home=tmp_path)
    assert config.register_url == f"sqlite:///{tmp_path}/var/cautionflow.db"
    assert config.source.url == f"sqlite:///{tmp_path}/var/demo/housing.db"
    assert config.path("var/letters") == tmp_path / "var/letters"


def test_postgres_urls_pass_through(tmp_path):
    config = parse_config({**MINIMAL, "register_url": "postgresql://cf@db/register"}, home=tmp_path)
    assert config.register_url == "postgresql://cf@db/register"


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"organisation": None}, "organisation: Input should be a valid string"),
        ({"register_url": ""}, "register_url: String should have at least 1 character"),
        ({"source": {}}, "source.url: Field required"),
        ({"colour": "red"}, "colour: Extra inputs are not permitted"),
        ({"smtp": {"host": "mail.example.org", "security": "none", "sender": "a@example.org"}},
         "smtp: Value error, security 'none' sends in clear text"),
        ({"smtp": {"security": "ssl", "sender": "a@example.org"}}, "smtp.security: Input should be 'starttls', 'tls' or 'none'"),
        ({"recipients": [{"name": "Acme", "email": "rota@acme.example", "role": "contractor"}]},
         "recipients.0: Value error, a contractor must list the areas it works in"),
        ({"recipients": [{"name": "X", "email": "not-an-address", "role": "officer"}]}, "recipients.0.email"),
        ({"recipients": [{"name": "X", "email": "x@example.org", "role": "officer", "schedule": "weekly"}]},
         "a weekly schedule needs a weekday"),
        ({"recipients": [{"name": "X", "email": "x@example.org", "role": "officer", "weekday": ["monday", "fri"]}]},
         "recipients.0.weekday: Value error, 'fri' is not a day of the week"),
        # Issue 15's settings, worded like the others: the value as written, then what is allowed.
        ({"digests": {"duty_contact": {"name": "Duty manager", "phone": "ring the office"}}},
         "digests.duty_contact.phone: Value error, not a phone number (digits, spaces, + ( ) -; e.g. 01632 960123): "
         "'ring the office'"),
        ({"digests": {"duty_contact": {"name": "Duty manager"}}}, "digests.duty_contact.phone: Field required"),
        ({"digests": {"duty_contact": {"name": "", "phone": "01632 960999"}}},
         "digests.duty_contact.name: String should have at least 1 character"),
        ({"digests": {"duty_phone": "01632 960999"}}, "digests.duty_phone: Extra inputs are not permitted"),
        ({"digests": {"contractors_see_instructions": "sometimes"}},
         "digests.contractors_see_instructions: Input should be a valid boolean"),
        ({"urgent": {"codes": ["DNV", "GUN"]}},
         "urgent.codes: Value error, 'GUN' is not a canonical alert code (VIP, NFO, NMO, NLF, NLM, NFV, NMV, DOG, WPN, "),
        ({"urgent": {"codes": ["dnv", "Q1", "Q2"]}}, "urgent.codes: Value error, 'Q1', 'Q2' are not canonical alert codes ("),
        ({"urgent": {"code": ["DNV"]}}, "urgent.code: Extra inputs are not permitted"),
        ({"operations": {"failure_notice_repeat_hours": 0}},
         "operations.failure_notice_repeat_hours: Input should be greater than or equal to 1"),
    ],
)
def test_invalid_settings_name_the_field(change, message, tmp_path):
    with pytest.raises(ConfigError) as caught:
        parse_config({**MINIMAL, **change}, origin="deploy.yaml", home=tmp_path)
    assert str(caught.value).startswith("deploy.yaml: ")
    assert message in str(caught.value)


def test_config_errors_are_one_line(tmp_path):
    for change in ({"digests": {"duty_contact": {"name": "Duty", "phone": "x\ny"}}}, {"urgent": {"codes": ["A\nB"]}}):
        with pytest.raises(ConfigError) as caught:
            parse_config({**MINIMAL, **change}, origin="deploy.yaml", home=tmp_path)
        assert "\n" not in str(caught.value), str(caught.value)


def test_issue_15_settings_default_and_tidy(tmp_path):
    config = parse_config(MINIMAL, home=tmp_path)
    assert config.digests.duty_contact is None and config.digests.contractors_see_instructions is False
    assert config.urgent.codes == ("DNV", "WPN", "AGY")
    assert config.operations.failure_notice_repeat_hours == 4
    config = parse_config({**MINIMAL, "digests": {"duty_contact": {"name": "Duty manager", "phone": " 01632   960999 "}},
                           "urgent": {"codes": ["wpn", "WPN", " dnv "]}}, home=tmp_path)
    assert config.digests.duty_contact.phone == "01632 960999"
    assert config.urgent.codes == ("WPN", "DNV")  # canonical, each once


def test_insecure_smtp_is_allowed_to_loopback_or_when_said_explicitly(tmp_path):
    for smtp in (
        {"host": "127.0.0.1", "security": "none", "sender": "a@example.org"},
        {"host": "mail.example.org", "security": "none", "allow_insecure": True, "sender": "a@example.org"},
    ):
        assert parse_config({**MINIMAL, "smtp": smtp}, home=tmp_path).smtp.security == "none"


def test_a_missing_or_malformed_file_is_one_clear_line(tmp_path):
    with pytest.raises(ConfigError, match="cannot read config"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("organisation: [unclosed\n")
    with pytest.raises(ConfigError, match="is not valid YAML"):
        load_config(bad)
    listy = tmp_path / "list.yaml"
    listy.write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="expected a mapping"):
        load_config(listy)
