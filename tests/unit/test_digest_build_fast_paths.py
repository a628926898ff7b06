"""The shortcuts building a digest takes (issue 15's speed) give what the general code gives.

`mail._address` skips the email package's parser for a plain name and address, `mail._header`
folds an ASCII subject itself, `mail._body` normalises a quoted-printable part's line ends once,
and `templates.flag_columns` works out a list's columns in Python: each is compared here with the
general path it stands for, on fixed and seeded random inputs (synthetic names and domains)."""

from __future__ import annotations

import binascii
import email
import email.policy
import random
import string
from email.header import Header

from cautionflow.adapters.mail import HEADER_LINE_LENGTH, _address, _body, _crlf, _header, address_header
from cautionflow.adapters.templates import flag_columns
from cautionflow.domain.digests import CONTRACTOR_COLUMNS, Column


def general_address(name: str, email_address: str) -> str:
    try:
        return address_header(name, email_address)
    except ValueError:
        return "refused"


def fast_address(name: str, email_address: str) -> str:
    try:
        return _address(name, email_address)
    except ValueError:
        return "refused"


def test_a_plain_name_and_address_read_as_the_email_package_writes_them():
    assert _address("Contractor 16 Ltd", "rota16@contractor15.example") == "Contractor 16 Ltd <rota16@contractor15.example>"
    for name, address in [("O'Neill & Sons", "a.b@x-y.example"), ("Dr. Who", "who@example.org"),
                          ("Zoë Placeholder", "zoe@example.org"), ("a,b", "a@example.org"), ("", "a@example.org"),
                          ("Eve  Example", "eve@example.org"), ("Eve", "eve@localhost"), ("Eve", "a..b@example.org"),
                          ("Eve", "a@-bad.example"), ("Eve", "bad address@example.org"), ("=?utf-8?q?x?=", "a@b.example")]:
        assert fast_address(name, address) == general_address(name, address), (name, address)


def test_random_names_and_addresses_read_the_same_either_way():
    rng = random.Random(15)
    names = "ab Z9&'+_-.,\"<>@:;()\\=?é\t"
    locals_ = string.ascii_letters[:6] + "9._%+-\"@ "
    domains = ["example.org", "a-b.example", "b.c-", "x.y.z", "localhost", "a..b", "-x.example", "ex.org."]
    for _ in range(20000):
        name = "".join(rng.choice(names) for _ in range(rng.randint(0, 10)))
        address = "".join(rng.choice(locals_) for _ in range(rng.randint(0, 6))) + "@" + rng.choice(domains)
        assert fast_address(name, address) == general_address(name, address), (name, address)


def test_a_long_ascii_subject_is_folded_at_its_spaces_and_unfolds_to_itself():
    subject = "Confidential: Example Homes caution alerts for Contractor 16 Ltd, 23 November 2026 (60 flags)"
    assert _header("Subject", subject) == (
        "Subject: Confidential: Example Homes caution alerts for Contractor 16 Ltd, 23\r\n November 2026 (60 flags)")
    rng = random.Random(23)
    words = ["Confidential:", "Example", "Homes", "for", "16", "Ltd,", "(60", "flags)", "x" * 60, "y" * 69, "z" * 90]
    for _ in range(5000):
        value = " ".join(rng.choice(words) for _ in range(rng.randint(1, 15)))
        header = _header("Subject", value)
        if "z" * 90 in value:  # a word no line can hold: Header() folds it, as it always did
            assert header == "Subject: " + Header(value, "us-ascii", header_name="Subject").encode(linesep="\r\n")
            continue
        parsed = email.message_from_bytes(f"{header}\r\n\r\nbody".encode(), policy=email.policy.compat32)
        assert parsed["Subject"].replace("\r\n", "") == value
        assert all(len(line) <= HEADER_LINE_LENGTH for line in header.split("\r\n")), header


def test_a_quoted_printable_part_has_crlf_line_ends_as_before():
    for text in ["\ufeffa,b\nc,d\n", "\ufeff" + "x" * 200, "é\r\n" + "y" * 300 + "\n", "a\rb\nc\r\n" + "é" * 100,
                 "\ufeff" + ("abc," * 60 + "\n") * 5, "é"]:
        cte, body = _body(text)
        assert cte == "quoted-printable"
        assert body == _crlf(binascii.b2a_qp(_crlf(text).encode("utf-8"), istext=True).decode("ascii"))
        assert body.count("\n") == body.count("\r\n")


def test_a_lists_columns_as_the_layout_uses_them():
    code_at, heading, others, labels = flag_columns(CONTRACTOR_COLUMNS)
    keys = [c.key for c in CONTRACTOR_COLUMNS]
    assert code_at == keys.index("alert_code")
    assert [key for key, _ in heading] == [k for k in keys if k in ("area", "asset_ref")]
    assert [key for key, _ in others] == [
        k for k in keys if k not in ("address", "postcode", "alert_code", "required_action")]
    assert list(labels) == [c.label for c in CONTRACTOR_COLUMNS]
    assert flag_columns([Column("address", "Address")]) == (-1, (), (), ("Address",))
