"""The look-up's rules (pure): postcodes as compared, what each reader may ask, and what it is shown.

Karbon 6.3 and Hexagon 1.2: staff check for an alert before every visit; Dover 6.30: the register
is for those whose duties require it. Karbon 7.1-7.2 and Dover 6.31: a contractor is told the
action required, for its own work only; Karbon 7.3: out-of-hours call handlers are told of all
flagged individuals. Synthetic data only.
"""

from __future__ import annotations

import datetime as dt

import pytest

from cautionflow.domain import lookup as d
from cautionflow.domain.digests import columns_for
from tests.support import AS_OF

ACME = d.Reader(kind="token", name="Acme Repairs", role="contractor", areas=("NORTH",), token_id=1)
NIGHT_DESK = d.Reader(kind="token", name="Night Desk", role="out_of_hours", token_id=2)
STAFF = d.Reader(kind="user", name="ops", role="staff")

ALERT = {
    "alert_id": "N1", "alert_code": "WPN", "subject_type": "person", "person_name": "Alex Example",
    "person_ref": "P0001", "address": "27 Yew Court, Eastwick", "postcode": "EW1 2AB", "area": "NORTH",
    "asset_ref": "H0027", "note": "NOTE-SECRET knife seen", "dq_flags": "effective_from: missing",
    "contact_instruction": "Call the SPOC first", "register_state": "active",
    "review_due": dt.date(2026, 11, 1),  # before AS_OF: contractors see "under review"
}


@pytest.mark.parametrize("text", ["ew1 2ab", "EW12AB", " Ew1  2aB ", "ew1\t2ab"])
def test_a_postcode_is_compared_upper_case_without_spaces(text):
    assert d.normalise_postcode(text) == "EW12AB"


@pytest.mark.parametrize("key, full", [
    ("EW12AB", True), ("M11AE", True), ("B338TH", True), ("CR26XH", True), ("DN551PT", True), ("W1A0AX", True),
    ("EC1A1BB", True), ("EW1", False), ("EW12A", False), ("12AB", False), ("EW12ABC", False), ("", False),
])
def test_a_full_postcode_has_an_outward_and_an_inward_code(key, full):
    assert d.is_full_postcode(key) is full


@pytest.mark.parametrize("asked", [
    {"postcode": "ew1 2ab"}, {"asset_ref": "H0027"}, {"q": "27 Yew Court"}, {"q": "27 yew"},
])
def test_a_token_may_ask_by_full_postcode_asset_reference_or_house_number_and_street(asked):
    query = d.validate_query(ACME, **asked)
    assert query.match_anywhere is False and query.postcode_prefix is False


@pytest.mark.parametrize("asked, why", [
    ({}, "ask by postcode"),
    ({"postcode": "EW1"}, "full UK postcode"),  # an outward code alone is a whole district
    ({"q": "Yew Court"}, "house number"),  # no digit: a street, not a home
    ({"q": "27 Y"}, "house number"),  # too short
    ({"q": "123456"}, "house number"),  # digits alone: no street
    ({"q": "Alex Example"}, "house number"),  # a name: staff only
    ({"q": "27 Yew Court", "page_size": 51}, "page_size"),
    ({"q": "27 Yew Court", "page": 0}, "page"),
    ({"q": "27 Yew Court " * 20}, "longer than"),
])
def test_anything_broader_is_refused_for_a_token_with_a_one_line_reason(asked, why):
    with pytest.raises(d.QueryRefused) as refused:
        d.validate_query(ACME, **asked)
    assert why in str(refused.value) and "\n" not in str(refused.value)


def test_staff_may_search_by_name_reference_or_part_of_a_postcode():
    assert d.validate_query(STAFF, q="al").match_anywhere is True
    assert d.validate_query(STAFF, q="P0001").q == "p0001"
    prefix = d.validate_query(STAFF, postcode="ew1")
    assert prefix.postcode_key == "EW1" and prefix.postcode_prefix is True
    with pytest.raises(d.QueryRefused, match="at least 2"):
        d.validate_query(STAFF, q="a")
    with pytest.raises(d.QueryRefused, match="page_size"):
        d.validate_query(STAFF, q="al", page_size=500)


def test_a_token_of_a_role_that_is_sent_no_alerts_may_ask_nothing():
    officer = d.Reader(kind="token", name="Officers", role="officer")
    with pytest.raises(d.QueryRefused, match="officer"):
        d.validate_query(officer, postcode="EW1 2AB")


def test_a_tokens_search_matching_more_than_a_page_is_refused_as_too_broad():
    assert d.too_broad(ACME, d.TOKEN_MAX_MATCHES) is None
    assert "narrow" in d.too_broad(ACME, d.TOKEN_MAX_MATCHES + 1)
    assert d.too_broad(STAFF, 100_000) is None


def test_a_contractor_is_shown_its_digests_columns_and_nothing_else():
    """One allow-list, shared with the digests (Karbon 7.1, Dover 6.31): never the name or the note."""
    item = d.project(ACME, ALERT, as_of=AS_OF)
    assert list(item) == [c.key for c in columns_for("contractor")] + ["alert_id"]
    assert item["review_due"] == "under review"  # a past review date is not "expired" (Dover 6.18)
    assert item["required_action"].lower().startswith("weapons")
    text = repr(item)
    assert "Alex Example" not in text and "NOTE-SECRET" not in text and "effective_from" not in text


def test_a_contractor_sees_the_instruction_only_where_the_landlord_says_so():
    shown = d.project(ACME, ALERT, as_of=AS_OF, view=d.TokenView(contractors_see_instructions=True))
    assert shown["contact_instruction"] == "Call the SPOC first"
    assert "contact_instruction" not in d.project(ACME, ALERT, as_of=AS_OF)


def test_out_of_hours_is_shown_the_name_and_the_date_but_never_the_note():
    """Karbon 7.3: call handlers are told of every flagged individual."""
    item = d.project(NIGHT_DESK, ALERT, as_of=AS_OF)
    assert item["person_name"] == "Alex Example" and item["review_due"] == "2026-11-01"
    assert "NOTE-SECRET" not in repr(item)


def test_staff_see_the_registers_view_but_never_the_note():
    item = d.project(STAFF, ALERT, as_of=AS_OF)
    assert item["dq_flags"] == "effective_from: missing" and item["person_name"] == "Alex Example"
    assert item["contact_instruction"] == "Call the SPOC first" and item["review_due"] == "2026-11-01"
    assert "NOTE-SECRET" not in repr(item) and "note" not in item


def test_a_token_may_see_only_active_alerts_in_its_recipients_scope():
    assert d.may_see(ACME, ALERT) and d.may_see(NIGHT_DESK, ALERT)
    south = {**ALERT, "area": "SOUTH"}
    assert not d.may_see(ACME, south) and d.may_see(NIGHT_DESK, south)
    ended = {**ALERT, "register_state": "ended"}
    assert not d.may_see(ACME, ended) and not d.may_see(NIGHT_DESK, ended) and d.may_see(STAFF, ended)


def test_a_token_reads_only_the_fields_its_columns_need():
    from cautionflow.domain.digests import ALERT_FIELDS

    assert "person_name" not in d.read_fields(ACME, ALERT_FIELDS)
    assert "person_name" in d.read_fields(NIGHT_DESK, ALERT_FIELDS)
    assert "note" not in d.read_fields(STAFF, ("note", *ALERT_FIELDS))


def test_retention_replaces_what_could_name_or_locate_the_resident_in_a_query():
    cleared, touched = d.anonymised_query({"q": "27 Yew Court", "postcode": "EW1 2AB", "page": 1, "alert_id": "N1"})
    assert touched and cleared == {"q": d.ANONYMISED, "postcode": d.ANONYMISED, "page": 1, "alert_id": "N1"}
    assert d.anonymised_query(cleared) == (cleared, False)  # a rerun changes nothing


def test_subject_access_shows_what_a_lookup_asked_by_never_the_values():
    assert d.asked_by({"q": "Jo Bloggs", "page": 1}) == ("address, name or reference search",)
    assert d.asked_by({"postcode": "EW1 2AB", "asset_ref": "H1"}) == ("postcode", "asset reference")
