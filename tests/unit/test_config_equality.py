"""The config's optional equality section (issue 7: equality monitoring, Hexagon Appendix 1, Teign 11)."""

from __future__ import annotations

from pathlib import Path

import pytest

from cautionflow.config import ConfigError, parse_config

BASE = {
    "organisation": "Example Homes",
    "policy": "hexagon",
    "register_url": "sqlite:///var/register.db",
    "source": {"url": "sqlite:///var/housing.db"},
}


def test_equality_is_optional():
    config = parse_config(BASE, home=Path("/srv/cf"))
    assert config.equality is None
    with pytest.raises(ConfigError, match="no equality section"):
        config.equality_query()


def test_equality_defaults_to_the_source_database_and_quarterly(tmp_path):
    (tmp_path / "eq.sql").write_text("SELECT 1")
    config = parse_config({**BASE, "equality": {"query": "eq.sql"}}, home=tmp_path)
    assert config.equality.period == "quarterly"
    assert config.equality_url() == f"sqlite:///{tmp_path}/var/housing.db"
    assert config.equality_query() == "SELECT 1"


def test_equality_url_resolves_like_the_others(tmp_path):
    config = parse_config(
        {**BASE, "equality": {"query": "eq.sql", "url": "sqlite:///var/equality.db", "period": "annual"}},
        home=tmp_path,
    )
    assert config.equality_url() == f"sqlite:///{tmp_path}/var/equality.db"
    with pytest.raises(ConfigError, match=r"equality.query: cannot read '.*eq.sql'"):
        config.equality_query()


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"query": "eq.sql", "period": "weekly"}, "equality.period"),
        ({"url": "sqlite:///x.db"}, "equality.query"),
        ({"query": "eq.sql", "columns": ["age"]}, "equality.columns"),
    ],
)
def test_equality_errors_name_the_field(section, message):
    with pytest.raises(ConfigError, match=message):
        parse_config({**BASE, "equality": section}, home=Path("/srv/cf"))
