"""Property: over random registers and random queries, a look-up never shows a contractor a name, a
note or an alert outside its areas, and never shows a call handler a note (pure projection; the
same property through the real service on SQLite is in tests/integration/test_lookup.py).

Karbon 7.1-7.2, Dover 6.31, Hexagon 1.2: contractors are given the action required for their own
work; Karbon 7.3: call handlers are told of every flagged individual, never the facts behind it.
"""

from __future__ import annotations

import datetime as dt

from hypothesis import given, settings
from hypothesis import strategies as st

from cautionflow.domain import lookup as d
from tests.support import AS_OF

AREAS = ("NORTH", "SOUTH", "EAST", "WEST", "")
CODES = ("VIP", "DOG", "WPN", "DNV", "NFO", "XXZ", None)
# Names and notes carry markers no other generated field can hold, so finding one in a result is a leak.
NAME = st.text(alphabet="abcdefghij ", min_size=0, max_size=8).map(lambda s: f"NAMEMARK{s}")
NOTE = st.text(alphabet="klmnopqrst ", min_size=0, max_size=8).map(lambda s: f"NOTEMARK{s}")
WORD = st.text(alphabet="ABCDEFGHJKLMNPRSTUWYZ", min_size=1, max_size=6)


@st.composite
def alerts(draw):
    count = draw(st.integers(min_value=0, max_value=25))
    rows = []
    for n in range(count):
        number = draw(st.integers(min_value=1, max_value=40))
        rows.append({
            "alert_id": f"A{n}",
            "alert_code": draw(st.sampled_from(CODES)),
            "subject_type": draw(st.sampled_from(("person", "household", "address"))),
            "person_name": draw(NAME),
            "person_ref": f"P{n}",
            "note": draw(NOTE),
            "address": f"{number} {draw(WORD)} Court",
            "postcode": draw(st.sampled_from(("EW1 2AB", "EW3 1CD", "QE10 4XY", "ew1 2ab"))),
            "area": draw(st.sampled_from(AREAS)),
            "asset_ref": f"H{number:04d}",
            "register_state": draw(st.sampled_from(("active", "active", "ended"))),
            "contact_instruction": draw(st.none() | st.just("Call the SPOC first")),
            "dq_flags": draw(st.none() | st.just("alert_code: unknown value")),
            "review_due": draw(st.none() | st.dates(dt.date(2025, 1, 1), dt.date(2028, 1, 1))),
        })
    return rows


READERS = st.one_of(
    st.builds(lambda areas, n: d.Reader("token", "Contractor", "contractor", tuple(sorted(areas)), n),
              st.sets(st.sampled_from(AREAS[:4]), min_size=1), st.integers(1, 9)),
    st.just(d.Reader("token", "Night Desk", "out_of_hours", (), 10)),
)
QUERIES = st.fixed_dictionaries({}, optional={
    "q": st.text(min_size=0, max_size=20),
    "postcode": st.text(alphabet="EWQ0123456789ABCDXY ", max_size=9),
    "asset_ref": st.text(max_size=8),
    "page_size": st.integers(-1, 80),
})


def _shown(reader, register, instructions):
    view = d.TokenView(contractors_see_instructions=instructions, fallback_instruction="Call the duty officer")
    return [d.project(reader, alert, as_of=AS_OF, view=view) for alert in register if d.may_see(reader, alert)]


@settings(max_examples=300, deadline=None)
@given(register=alerts(), reader=READERS, instructions=st.booleans())
def test_a_token_is_never_shown_a_note_nor_a_contractor_a_name_or_another_area(register, reader, instructions):
    by_id = {a["alert_id"]: a for a in register}
    for item in _shown(reader, register, instructions):
        text = repr(item)
        assert "NOTEMARK" not in text and "note" not in item
        assert "dq_flags" not in item  # the data-quality text is the register's, not the recipient's
        alert = by_id[item["alert_id"]]
        assert alert["register_state"] == "active"
        if reader.role == "contractor":
            assert "NAMEMARK" not in text and "person_name" not in item
            assert alert["area"] in reader.areas


@settings(max_examples=300, deadline=None)
@given(reader=READERS, asked=QUERIES)
def test_a_query_a_token_may_ask_is_always_narrow(reader, asked):
    """No token query reaches the whole register: a full postcode, an exact asset reference, or a
    house number and street; never a name, never a match anywhere, at most a page of 50."""
    try:
        query = d.validate_query(reader, **asked)
    except d.QueryRefused as refused:
        assert "\n" not in str(refused)
        return
    assert not query.match_anywhere and not query.postcode_prefix and query.page_size <= d.MAX_PAGE_SIZE
    assert query.postcode_key is None or d.is_full_postcode(query.postcode_key)
    if query.q is not None:
        assert len(query.q) >= d.TOKEN_Q_MIN and any(c.isdigit() for c in query.q)
