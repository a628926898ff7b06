"""The landlord's contact block (`letters.contact`) is validated on load: once a config has a
`letters` section the block is required, and every error is one line naming the field (Dover 6.34:
an appeal email and a postal address; Wandle 3.10: how to submit an appeal). Synthetic data only."""

from __future__ import annotations

import pytest

from cautionflow.config import ConfigError, parse_config
from tests.deployment import CONTACT
from tests.support import REPO

MINIMAL = {
    "organisation": "Example Homes",
    "policy": "dover",
    "register_url": "sqlite:///var/cautionflow.db",
    "source": {"url": "sqlite:///var/demo/housing.db"},
}
PNG = b"\x89PNG\r\n\x1a\n"


def letters(**contact):
    return {**MINIMAL, "letters": {"output_dir": "var/letters", "contact": {**CONTACT, **contact}}}


def error(data, tmp_path) -> str:
    with pytest.raises(ConfigError) as caught:
        parse_config(data, origin="deploy.yaml", home=tmp_path)
    message = str(caught.value)
    assert "\n" not in message  # one line
    return message


def test_a_letters_section_without_the_contact_block_is_one_line_naming_it(tmp_path):
    message = error({**MINIMAL, "letters": {"output_dir": "var/letters"}}, tmp_path)
    assert message == (
        "deploy.yaml: letters.contact: required: the landlord's address, phone and appeals contact printed "
        "on every letter"
    )
    assert error({**MINIMAL, "letters": {}}, tmp_path).endswith("printed on every letter")


def test_without_a_letters_section_there_are_no_letters_and_no_contact_is_needed(tmp_path):
    assert parse_config(MINIMAL, home=tmp_path).letters is None
    assert parse_config({**MINIMAL, "letters": None}, home=tmp_path).letters is None
    # Retention still knows where letters were written when there was a section.
    assert parse_config(MINIMAL, home=tmp_path).letters_output_dir() == "var/letters"


def test_the_appeals_address_is_the_postal_address_unless_given(tmp_path):
    contact = parse_config(letters(), home=tmp_path).letters.contact
    assert contact.appeals_address == contact.address == tuple(CONTACT["address"])
    given = parse_config(letters(appeals_address=["Appeals Panel", "PO Box 12", "Eastwick", "EW1 9ZZ"]),
                         home=tmp_path).letters.contact
    assert given.appeals_address == ("Appeals Panel", "PO Box 12", "Eastwick", "EW1 9ZZ")
    assert given.address == tuple(CONTACT["address"])


@pytest.mark.parametrize(
    ("change", "field", "problem"),
    [
        ({"appeals_email": "not-an-address"}, "letters.contact.appeals_email", "not one email address"),
        ({"appeals_email": "Appeals <appeals@example.org>"}, "letters.contact.appeals_email", "not one email address"),
        ({"appeals_email": "a@example.org, b@example.org"}, "letters.contact.appeals_email", "not one email address"),
        ({"phone": "call us"}, "letters.contact.phone", "not a phone number"),
        ({"address": []}, "letters.contact.address", "at least one line"),
        ({"address": ["x" * 61]}, "letters.contact.address", "longer than 60 characters"),
        ({"appeals_address": ["x" * 61]}, "letters.contact.appeals_address", "longer than 60 characters"),
        ({"signed_by": ""}, "letters.contact.signed_by", "at least 1 character"),
        ({"signed_title": None}, "letters.contact.signed_title", "valid string"),
        ({"fax": "0300"}, "letters.contact.fax", "Extra inputs are not permitted"),
    ],
)
def test_a_bad_contact_setting_is_one_line_naming_the_field(change, field, problem, tmp_path):
    message = error(letters(**change), tmp_path)
    assert message.startswith(f"deploy.yaml: {field}: "), message
    assert problem in message


def test_a_missing_key_of_the_block_is_named(tmp_path):
    data = letters()
    del data["letters"]["contact"]["phone"]
    assert error(data, tmp_path) == "deploy.yaml: letters.contact.phone: Field required"


def test_the_letterhead_must_exist_and_be_a_png_or_jpeg(tmp_path):
    message = error(letters(letterhead="include/letterhead.png"), tmp_path)
    assert message.startswith("deploy.yaml: letters.contact.letterhead: cannot read ")
    assert str(tmp_path / "include/letterhead.png") in message
    (tmp_path / "logo.gif").write_bytes(b"GIF89a" + b"\0" * 20)
    assert error(letters(letterhead="logo.gif"), tmp_path) == (
        f"deploy.yaml: letters.contact.letterhead: '{tmp_path / 'logo.gif'}' is not a PNG or JPEG image"
    )
    assert "Is a directory" in error(letters(letterhead="."), tmp_path)


def test_the_letterhead_resolves_against_the_project_home(tmp_path):
    (tmp_path / "brand").mkdir()
    (tmp_path / "brand" / "head.png").write_bytes(PNG + b"\0" * 16)
    (tmp_path / "head.jpg").write_bytes(b"\xff\xd8\xff\xe0" + b"\0" * 16)
    assert parse_config(letters(letterhead="brand/head.png"), home=tmp_path).letters.contact.letterhead == str(
        tmp_path / "brand" / "head.png"
    )
    assert parse_config(letters(letterhead=str(tmp_path / "head.jpg")), home=REPO).letters.contact.letterhead == str(
        tmp_path / "head.jpg"
    )


def test_the_example_and_demo_files_carry_a_contact_block_apart_from_the_smtp_sender():
    from email.utils import parseaddr

    from cautionflow.config import load_config

    for name in ("cautionflow.example.yaml", "cautionflow.demo.yaml"):
        config = load_config(REPO / "include" / "config" / name, home=REPO)
        contact = config.letters.contact
        assert contact.address and contact.phone and contact.signed_by and contact.signed_title, name
        # Dover 6.34: an appeal email people read, not the sender of the emails.
        assert contact.appeals_email != parseaddr(config.smtp.sender)[1], name
