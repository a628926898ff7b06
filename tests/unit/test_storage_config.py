"""Output folders as local paths or object storage URLs (issue 17): what the loader accepts, the one
line it refuses with, and how a file's place is shown to people. Pure: no Airflow is imported."""

from __future__ import annotations

from pathlib import Path

import pytest

from cautionflow.config import ConfigError, is_object_store, parse_config, shown_path, storage_scheme

BASE = {"organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///var/r.db",
        "source": {"url": "sqlite:///var/housing.db"}}


@pytest.mark.parametrize(
    ("value", "scheme", "object_store"),
    [
        ("var/reports", None, False),
        ("/srv/cautionflow/reports", None, False),
        ("C:/cautionflow/reports", None, False),  # a drive letter is no scheme
        ("s3://cautionflow/reports", "s3", True),
        ("S3://cautionflow/reports", "s3", True),
        ("gs://bucket/reports", "gs", True),
        ("abfs://container/reports", "abfs", True),
        ("file:///srv/cautionflow/reports", "file", False),
    ],
)
def test_a_folder_is_a_local_path_or_a_url(value, scheme, object_store):
    assert storage_scheme(value) == scheme
    assert is_object_store(value) is object_store


def test_urls_load_with_a_storage_connection(tmp_path):
    config = parse_config({**BASE, "output_dir": "s3://cautionflow/reports", "storage_conn_id": "cautionflow_storage",
                           "letters": {"output_dir": "s3://cautionflow/letters", "contact": {
                               "address": ["1 Harbour Way"], "phone": "01632 960123",
                               "appeals_email": "appeals@example.org", "signed_by": "Jordan Example",
                               "signed_title": "Manager"}}}, home=tmp_path)
    assert (config.output_dir, config.letters.output_dir) == ("s3://cautionflow/reports", "s3://cautionflow/letters")
    assert config.storage_conn_id == "cautionflow_storage"
    assert parse_config(BASE, home=tmp_path).storage_conn_id is None  # the scheme's default connection


@pytest.mark.parametrize(
    ("field", "value", "problem"),
    [
        ("output_dir", "s3://", "the URL names no bucket (s3://bucket/prefix)"),
        ("output_dir", "s3:///reports", "the URL names no bucket (s3://bucket/prefix)"),
        ("output_dir", "file://var/reports", "a file URL names an absolute folder (file:///srv/cautionflow/letters)"),
        ("output_dir", "s3://bucket/reports/../letters", "'..' is not allowed in a storage URL"),
        ("output_dir", "  ", "an empty folder: give a local path or a URL such as s3://bucket/prefix"),
        ("storage_conn_id", "", "String should have at least 1 character"),
    ],
)
def test_a_url_that_names_no_place_is_one_line_naming_the_field(tmp_path, field, value, problem):
    with pytest.raises(ConfigError) as refused:
        parse_config({**BASE, field: value}, origin="cautionflow.yaml", home=tmp_path)
    assert str(refused.value).startswith(f"cautionflow.yaml: {field}: ")
    assert problem in str(refused.value)
    assert "\n" not in str(refused.value)


def test_the_letters_folder_is_checked_alike(tmp_path):
    with pytest.raises(ConfigError, match=r"^cautionflow.yaml: letters.output_dir: Value error, 'gs://'"):
        parse_config({**BASE, "letters": {"output_dir": "gs://"}}, origin="cautionflow.yaml", home=tmp_path)


class _StoredPath:
    """What shown_path reads of Airflow's ObjectStoragePath: its protocol and its path (bucket/key)."""

    def __init__(self, protocol: str, path: str) -> None:
        self.protocol, self.path = protocol, path

    def __str__(self) -> str:  # as ObjectStoragePath shows itself with a connection
        return f"{self.protocol}://cautionflow_storage@{self.path}"


def test_a_files_place_is_shown_without_the_connection():
    assert shown_path(Path("/srv/reports/a.csv")) == "/srv/reports/a.csv"
    assert shown_path(_StoredPath("file", "/srv/reports/a.csv")) == "/srv/reports/a.csv"
    assert shown_path(_StoredPath("s3", "cautionflow/reports/a.csv")) == "s3://cautionflow/reports/a.csv"
