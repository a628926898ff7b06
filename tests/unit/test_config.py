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
    ],
)
def test_invalid_settings_name_the_field(change, message, tmp_path):
    with pytest.raises(ConfigError) as caught:
        parse_config({**MINIMAL, **change}, origin="deploy.yaml", home=tmp_path)
    assert str(caught.value).startswith("deploy.yaml: ")
    assert message in str(caught.value)


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
