"""Validating source rows: safety first, nothing lost (policies README, "Principles")."""

from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cautionflow.domain.contract import SOURCE_COLUMNS
from cautionflow.domain.validation import SourceShapeError, validate_in_chunks, validate_source_rows
from tests.support import alert_row


def validate(*rows):
    return validate_source_rows(pd.DataFrame([alert_row(**r) for r in rows], columns=list(SOURCE_COLUMNS)))


def flags_of(batch, alert_id):
    return batch.alerts.set_index("alert_id").loc[alert_id, "dq_flags"]


def test_a_clean_row_is_kept_unflagged_and_normalised():
    batch = validate({"alert_id": " A1 ", "alert_code": "vip", "area": "north", "postcode": "ew1   2ab",
                      "subject_type": "Person", "source": "Local Authority", "notify_resident": "1"})
    (row,) = batch.alerts.to_dict("records")
    assert row["alert_id"] == "A1" and row["alert_code"] == "VIP" and row["area"] == "NORTH"
    assert row["postcode"] == "EW1 2AB" and row["subject_type"] == "person" and row["source"] == "local_authority"
    assert row["notify_resident"] == 1 and row["dq_flags"] is None
    assert row["updated_at"] == "2026-03-02 09:15:00"
    assert batch.quarantine.empty and batch.read == 1 and batch.flagged == 0


@pytest.mark.parametrize(
    ("fault", "reason"),
    [
        ({"alert_id": None}, "missing alert_id"),
        ({"alert_id": "   "}, "missing alert_id"),
        ({"asset_ref": None, "address": ""}, "cannot be identified: neither asset_ref nor address"),
    ],
)
def test_rows_that_cannot_be_identified_are_quarantined_with_the_raw_row(fault, reason):
    batch = validate({"alert_id": "OK"}, fault)
    assert batch.alerts["alert_id"].tolist() == ["OK"]
    (q,) = batch.quarantine.to_dict("records")
    assert q["reason"] == reason
    assert json.loads(q["raw_row"])["note"] == "Threatened an operative on 1 March 2026."


def test_an_address_alone_identifies_a_place():
    # Hexagon 1.4: an alert may be about a location rather than a person.
    batch = validate({"asset_ref": None, "address": "Flat 2, 9 Mill Lane", "subject_type": "address",
                      "person_ref": None, "person_name": None})
    assert len(batch.alerts) == 1 and batch.quarantine.empty


def test_both_rows_of_a_duplicated_id_are_quarantined():
    batch = validate({"alert_id": "D1"}, {"alert_id": "D1", "area": "SOUTH"}, {"alert_id": "D2"})
    assert batch.alerts["alert_id"].tolist() == ["D2"]
    assert batch.quarantine["reason"].tolist() == ["duplicate alert_id in one read (2 rows)"] * 2


@pytest.mark.parametrize(
    ("fault", "flag"),
    [
        ({"alert_code": "XXZ"}, "alert_code: unknown code 'XXZ'"),
        ({"alert_code": None}, "alert_code: missing"),
        ({"effective_from": "31/02/2025"}, "effective_from: unparseable date '31/02/2025'"),
        ({"effective_from": "2025-02-30"}, "effective_from: impossible date '2025-02-30'"),
        ({"notified_on": "1066-10-14"}, "notified_on: impossible date '1066-10-14'"),
        ({"effective_from": None}, "effective_from: missing"),
        ({"ends_on": "2026-01-01"}, "ends_on is before effective_from"),
        ({"status": "paused"}, "status: unknown value 'paused'"),
        ({"status": None}, "status: missing, treated as active"),
        ({"subject_type": "person", "person_ref": None}, "subject_type is person but person_ref is missing"),
        ({"large_print": "maybe"}, "large_print: expected 0 or 1, got 'maybe'"),
        ({"updated_at": "last week"}, "updated_at: unparseable timestamp 'last week'"),
    ],
)
def test_rows_with_other_faults_are_kept_and_flagged(fault, flag):
    batch = validate(fault)
    assert batch.quarantine.empty, "an identifiable row is never quarantined for its paperwork"
    assert flag in flags_of(batch, "CX-0001")
    assert batch.flagged == 1


def test_a_bad_date_is_emptied_not_guessed():
    batch = validate({"effective_from": "2025-02-30", "ends_on": "2027-01-01"})
    row = batch.alerts.iloc[0]
    assert row["effective_from"] is None and row["ends_on"] == "2027-01-01"


def test_an_unknown_status_stays_active():
    # Safety first: only an explicit "ended" lifts a warning.
    batch = validate({"status": None})
    assert batch.alerts.iloc[0]["status"] == "active"


def test_several_problems_are_all_reported():
    batch = validate({"alert_code": "ZZ", "effective_from": "soon"})
    assert flags_of(batch, "CX-0001") == "alert_code: unknown code 'ZZ'; effective_from: unparseable date 'soon'"


def test_dates_from_a_typed_database_are_accepted():
    raw = pd.DataFrame([alert_row(effective_from=dt.date(2026, 1, 31), updated_at=dt.datetime(2026, 2, 1, 8, 0))])
    row = validate_source_rows(raw).alerts.iloc[0]
    assert row["effective_from"] == "2026-01-31" and row["updated_at"] == "2026-02-01 08:00:00"


def test_the_same_content_hashes_the_same_and_any_change_does_not():
    a = validate({"alert_id": "A"}).alerts["row_hash"].iloc[0]
    same = validate({"alert_id": "A", "updated_at": "2026-11-01T00:00:00"}).alerts["row_hash"].iloc[0]
    changed = validate({"alert_id": "A", "note": "Different."}).alerts["row_hash"].iloc[0]
    assert a == same  # a bumped updated_at alone is not a change to the alert
    assert a != changed


def test_a_source_missing_contract_columns_is_refused_by_name():
    with pytest.raises(SourceShapeError, match="alert_code, subject_type"):
        validate_source_rows(pd.DataFrame({"alert_id": ["A"]}))


def test_every_row_is_accounted_for():
    rows = [{"alert_id": f"A{i}"} for i in range(50)] + [{"alert_id": None}, {"alert_id": "A7"}]
    batch = validate(*rows)
    assert len(batch.alerts) + len(batch.quarantine) == batch.read == 52


def test_a_row_with_many_problems_lists_them_in_the_order_of_its_columns():
    batch = validate({"alert_code": "ZZ", "subject_type": "person", "person_ref": None, "status": None,
                      "large_print": "maybe", "effective_from": None, "notified_on": "soon", "updated_at": "later"})
    assert flags_of(batch, "CX-0001").split("; ") == [
        "alert_code: unknown code 'ZZ'",
        "status: missing, treated as active",
        "subject_type is person but person_ref is missing",
        "large_print: expected 0 or 1, got 'maybe'",
        "notified_on: unparseable date 'soon'",
        "effective_from: missing",
        "updated_at: unparseable timestamp 'later'",
    ]


def test_validating_in_chunks_gives_exactly_what_validating_all_rows_gives():
    # The first sync validates a chunk at a time; a duplicate split across chunks is still a duplicate.
    rows = [alert_row(alert_id=f"A{i}", area="north" if i % 3 else " South ", updated_at=f"2026-03-{1 + i % 28:02d}T09:15:00Z")
            for i in range(23)]
    rows[4]["alert_id"] = rows[19]["alert_id"] = "DUP"
    rows[7].update(alert_code="XXZ", effective_from="2026-02-30")
    rows[11]["alert_id"] = None
    raw = pd.DataFrame(rows, columns=list(SOURCE_COLUMNS))
    whole = validate_source_rows(raw)

    chunks = list(validate_in_chunks(raw, rows_per_chunk=5))

    assert [c.read for c in chunks] == [5, 5, 5, 5, 3]
    pd.testing.assert_frame_equal(
        pd.concat([c.alerts for c in chunks], ignore_index=True), whole.alerts.reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(pd.concat([c.quarantine for c in chunks], ignore_index=True), whole.quarantine)
    assert whole.quarantine["reason"].tolist() == ["duplicate alert_id in one read (2 rows)", "missing alert_id",
                                                   "duplicate alert_id in one read (2 rows)"]
    for chunk in chunks:  # the factorised form holds the same values
        for column, (codes, distinct) in chunk.factorised.items():
            assert distinct[codes].tolist() == chunk.columns[column].tolist(), column


def test_an_empty_source_validates_to_one_empty_chunk():
    (chunk,) = validate_in_chunks(pd.DataFrame(columns=list(SOURCE_COLUMNS)), rows_per_chunk=10)
    assert (chunk.read, chunk.kept, chunk.flagged, len(chunk.quarantine)) == (0, 0, 0, 0)


_TIMESTAMP_SHAPES = st.one_of(
    st.tuples(
        st.integers(0, 2200), st.integers(0, 13), st.integers(0, 32), st.sampled_from([" ", "T", "  ", "t"]),
        st.integers(0, 24), st.integers(0, 60), st.integers(0, 60),
        st.sampled_from(["", "Z", "+00:00", "-00:00", "+0000", "-0000", "+01:00", ".5", ".123456Z", " ", "\n", "x"]),
    ).map(lambda p: f"{p[0]:04d}-{p[1]:02d}-{p[2]:02d}{p[3]}{p[4]:02d}:{p[5]:02d}:{p[6]:02d}{p[7]}"),
    st.sampled_from(["", "   ", "last week", "2024-02-29 10:00:00", "2026-02-29 10:00:00", " 2026-01-01 10:00:00"]),
    st.none(),
    st.just(float("nan")),
    st.datetimes(min_value=dt.datetime(1900, 1, 1), max_value=dt.datetime(2100, 1, 1)),
    st.dates(min_value=dt.date(1900, 1, 1), max_value=dt.date(2100, 1, 1)),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(_TIMESTAMP_SHAPES, max_size=30))
def test_timestamps_cleaned_a_column_at_a_time_match_cleaning_each_value(values):
    """The whole-column fast path for timestamps must agree with the one-value-at-a-time cleaner."""
    from cautionflow.domain.validation import _clean_each, _timestamp_cleaner, clean_column

    expected_problems: dict[int, str] = {}
    expected = _clean_each(values, range(len(values)), _timestamp_cleaner("updated_at"), expected_problems)

    column = clean_column("updated_at", tuple(values))

    assert column.values == expected
    assert column.problems.get("updated_at", {}) == expected_problems


def test_values_too_long_for_the_register_are_cut_and_flagged_and_an_overlong_id_is_quarantined():
    # Nothing crashes the run: PostgreSQL would refuse a value wider than its column.
    batch = validate({"alert_id": "A1", "postcode": "EW1 2AB AND THEN SOME", "asset_ref": "H" * 70},
                     {"alert_id": "B" * 65})
    (row,) = batch.alerts.to_dict("records")
    assert row["postcode"] == "EW1 2AB AND THEN" and row["asset_ref"] == "H" * 64
    assert row["dq_flags"] == ("asset_ref: longer than 64 characters, only the first 64 kept; "
                               "postcode: longer than 16 characters, only the first 16 kept")
    (q,) = batch.quarantine.to_dict("records")
    assert q["reason"] == "alert_id longer than 64 characters: the register cannot identify it"
    assert q["alert_id"] == "B" * 64 and json.loads(q["raw_row"])["alert_id"] == "B" * 65


def test_the_widths_validation_keeps_to_are_the_registers():
    from cautionflow.adapters.register_schema import alerts
    from cautionflow.domain.contract import MAX_LENGTHS

    widths = {c.name: c.type.length for c in alerts.columns if c.name in SOURCE_COLUMNS and getattr(c.type, "length", None)}
    from cautionflow.domain.contract import ENUMS

    assert {c: w for c, w in widths.items() if c not in ENUMS} == MAX_LENGTHS
    # enumerated columns hold only their canonical values, which fit
    assert all(len(value) <= widths[c] for c, allowed in ENUMS.items() for value in allowed)


# --- hostile values (issue 18): control characters and caps ----------------------------------------------

_CONTROLS = "".join(map(chr, [*range(0x20), *range(0x7F, 0xA0), 0x2028, 0x2029]))


@pytest.mark.parametrize(
    ("column", "raw", "kept"),
    [
        ("person_name", "Carla\r\nBcc: x@evil.example", "Carla Bcc: x@evil.example"),  # never a header of its own
        ("person_name", "Nina\x00 Nul", "Nina Nul"),  # PostgreSQL cannot store NUL
        ("alert_id", "CX-0001\x00", "CX-0001"),
        ("email", "erin@example.com\x1b", "erin@example.com"),
        ("area", "north\x00", "NORTH"),  # a distinct-value column, cleaned before its own check
        ("alert_code", "W\x7fPN", "WPN"),
        ("effective_from", "2026-03-02\x00", "2026-03-02"),
        ("note", "Line one\x00\x1b[31m\r\nLine\ttwo", "Line one[31m\nLine two"),  # a note keeps its lines
        ("no_notify_reason", "Risk\u2028to staff\x07", "Risk\nto staff"),
    ],
)
def test_control_characters_are_removed_and_the_row_flagged_naming_the_column(column, raw, kept):
    batch = validate({column: raw})
    (row,) = batch.alerts.to_dict("records")
    assert row[column] == kept
    assert row["dq_flags"] == f"{column}: control characters removed"
    assert batch.quarantine.empty  # still a warning that reaches the people who visit


def test_line_breaks_alone_are_no_fault_in_a_note_or_an_address():
    # A note's CR LF becomes LF; an address's lines become ", ", as its letter reads them anyway.
    batch = validate({"note": "First.\r\nSecond.\rThird.", "address": "Flat 2,\r\n9 Mill Lane\nEastwick"})
    (row,) = batch.alerts.to_dict("records")
    assert row["note"] == "First.\nSecond.\nThird." and row["address"] == "Flat 2, 9 Mill Lane, Eastwick"
    assert row["dq_flags"] is None


def test_spaces_of_other_kinds_are_no_fault():
    batch = validate({"person_name": "Zo\u00eb\u00a0M\u00fcller", "note": "\u00a0indented"})
    assert batch.alerts.iloc[0]["person_name"] == "Zo\u00eb\u00a0M\u00fcller" and batch.flagged == 0


def test_ids_that_are_the_same_once_cleaned_are_a_duplicate():
    batch = validate({"alert_id": "D1"}, {"alert_id": "D1\x00"})
    assert batch.alerts.empty and batch.quarantine["reason"].tolist() == ["duplicate alert_id in one read (2 rows)"] * 2


def test_a_flag_quoting_a_raw_value_shows_its_control_characters_escaped():
    batch = validate({"updated_at": "2026-03-0\x002 09:15:00"})
    assert flags_of(batch, "CX-0001") == "updated_at: unparseable timestamp '2026-03-0\\x002 09:15:00'"


def test_every_text_column_has_a_width_or_a_documented_cap():
    from cautionflow.domain.contract import ENUMS, FREE_TEXT_CAPS, MAX_LENGTHS, TEXT_COLUMNS

    assert set(TEXT_COLUMNS) == set(MAX_LENGTHS) | set(FREE_TEXT_CAPS) | set(ENUMS)
    assert FREE_TEXT_CAPS["email"] == 254  # RFC 5321 4.5.3.1.3's path, less its angle brackets


def test_free_text_longer_than_its_cap_is_cut_and_flagged_and_an_email_too_long_is_emptied():
    # Issue 18: a 12 MB value made two of three digests too big for the mail server.
    huge = "x" * (12 * 1024 * 1024)
    batch = validate({"alert_id": "N", "note": "Long. " + huge}, {"alert_id": "A", "address": "2 Road " + huge},
                     {"alert_id": "E", "email": "a" * 250 + "@example.com"})
    rows = batch.alerts.set_index("alert_id")
    assert len(rows.loc["N", "note"]) == 8_000 and len(rows.loc["A", "address"]) == 500
    assert rows.loc["N", "dq_flags"] == "note: longer than 8000 characters, only the first 8000 kept"
    assert rows.loc["A", "dq_flags"] == "address: longer than 500 characters, only the first 500 kept"
    assert rows.loc["E", "email"] is None  # cut, it could be someone else's address
    assert rows.loc["E", "dq_flags"] == "email: longer than 254 characters, not an address: emptied"


def test_a_quarantined_raw_row_keeps_a_value_whole_only_up_to_its_bound():
    from cautionflow.domain.contract import RAW_VALUE_LIMIT

    batch = validate({"alert_id": None, "note": "n" * 12_000, "person_name": "p" * RAW_VALUE_LIMIT})
    raw = json.loads(batch.quarantine["raw_row"].iloc[0])
    assert raw["person_name"] == "p" * RAW_VALUE_LIMIT  # fits: whole
    assert raw["note"] == "n" * RAW_VALUE_LIMIT + "[... cut here: 12,000 characters in all]"


@settings(max_examples=200, deadline=None)
@given(
    st.sampled_from(["alert_id", "person_name", "address", "email", "note", "no_notify_reason", "area", "postcode",
                     "status", "alert_code", "effective_from", "updated_at", "language", "person_ref"]),
    st.text(alphabet=st.sampled_from([*_CONTROLS, "a", "B", " ", "1", "-", ":", "\u00e9", "\udcff"]), max_size=12),
)
def test_no_control_character_reaches_the_register_or_its_flags(column, value):
    batch = validate({"alert_id": "KEEP"}, {"alert_id": "OTHER", column: value})
    multi_line = column in ("note", "no_notify_reason")
    for name, values in batch.columns.items():
        for v in values:
            if isinstance(v, str):
                allowed = "\n" if multi_line and name == column else ""
                assert not any(ch in _CONTROLS and ch not in allowed or "\ud800" <= ch <= "\udfff" for ch in v), (name, v)
    assert batch.kept + len(batch.quarantine) == 2


# --- contact instructions people can act on (issue 15) -------------------------------------------


@pytest.mark.parametrize(
    ("code", "flag"),
    [
        # Teign 8: "a named officer to be the sole point of contact": the instruction names them.
        ("SPOC", "contact_instruction is missing for a SPOC alert (who to contact and how)"),
        # Teign 8, Wandle 3.3: contact restricted to a form, times or days: the instruction says which.
        ("CM", "contact_instruction is missing for a CM alert (the agreed contact arrangements)"),
        # Karbon 8.1's "do not visit": the action allows an emergency visit only with a manager's
        # approval, so the instruction says who approves and how to reach them.
        ("DNV", "contact_instruction is missing for a DNV alert (who approves an emergency visit and how to reach them)"),
    ],
)
def test_an_alert_that_defers_to_an_arrangement_without_an_instruction_is_kept_and_flagged(code, flag):
    batch = validate({"alert_id": "BARE", "alert_code": code.lower()},
                     {"alert_id": "TOLD", "alert_code": code, "contact_instruction": "Contact by letter only"})
    assert batch.alerts["alert_id"].tolist() == ["BARE", "TOLD"] and batch.quarantine.empty  # safety first: kept
    assert flags_of(batch, "BARE") == flag
    assert flags_of(batch, "TOLD") is None  # an instruction clears it
    assert batch.flagged == 1


def test_other_codes_and_ended_alerts_need_no_instruction():
    batch = validate({"alert_id": "VIP", "alert_code": "VIP"}, {"alert_id": "WPN", "alert_code": "WPN"},
                     {"alert_id": "ENDED", "alert_code": "DNV", "status": "ended", "ends_on": "2026-06-01"})
    assert batch.alerts["dq_flags"].tolist() == [None, None, None]
    # A row without a status is treated as active (safety first), so it is checked.
    assert "contact_instruction is missing" in flags_of(validate({"alert_code": "DNV", "status": None}), "CX-0001")


def test_an_instruction_of_control_characters_alone_is_missing_and_both_are_said():
    batch = validate({"alert_code": "SPOC", "contact_instruction": " \x00\x1b "})
    assert batch.alerts["contact_instruction"].iloc[0] is None
    assert flags_of(batch, "CX-0001").split("; ") == [
        "contact_instruction: control characters removed",
        "contact_instruction is missing for a SPOC alert (who to contact and how)",
    ]


def test_a_source_without_the_column_flags_every_alert_that_needs_one():
    without = [c for c in SOURCE_COLUMNS if c != "contact_instruction"]
    rows = [alert_row(alert_id=a, alert_code=c) for a, c in (("S", "SPOC"), ("C", "CM"), ("D", "DNV"), ("V", "VIP"))]
    batch = validate_source_rows(pd.DataFrame(rows, columns=without))
    flags = batch.alerts.set_index("alert_id")["dq_flags"]
    assert [flags[a] is not None for a in "SCDV"] == [True, True, True, False]
    assert batch.alerts["contact_instruction"].tolist() == [None] * 4


def test_the_flag_is_part_of_the_fingerprint_so_alerts_synced_before_the_rule_get_it(monkeypatch):
    """The register compares fingerprints: an alert synced before the rule existed must hash
    differently once it carries the flag, or the sync would never write the flag onto it. An alert
    the rule does not touch keeps the fingerprint it had before the column existed."""
    from cautionflow.domain import validation

    without = [c for c in SOURCE_COLUMNS if c != "contact_instruction"]

    def fingerprints():
        rows = [alert_row(alert_id=a, alert_code=c) for a, c in (("S", "SPOC"), ("V", "VIP"))]
        hashes = validate_source_rows(pd.DataFrame(rows, columns=without)).alerts["row_hash"]
        return hashes.tolist()

    with monkeypatch.context() as before_the_rule:
        before_the_rule.setattr(validation, "INSTRUCTION_NEEDED", {})
        spoc_before, vip_before = fingerprints()
    spoc_after, vip_after = fingerprints()
    assert spoc_after != spoc_before  # flagged now: a change the merge writes
    assert vip_after == vip_before  # no spurious update for the rest
    assert fingerprints() == [spoc_after, vip_after]  # and stable from then on
    told = validate(
        {"alert_code": "SPOC", "contact_instruction": "Priya Shah, Tenancy Officer, 01632 960345"}
    ).alerts["row_hash"].iloc[0]
    assert told not in (spoc_before, spoc_after)  # recording the instruction is a change too


def test_the_instruction_is_one_line_capped_at_500_characters():
    batch = validate({"alert_id": "LINES", "alert_code": "CM", "contact_instruction": "Letters only.\r\nNo calls.\t"},
                     {"alert_id": "LONG", "alert_code": "CM", "contact_instruction": "z" * 501})
    rows = batch.alerts.set_index("alert_id")
    assert rows.loc["LINES", "contact_instruction"] == "Letters only. No calls."
    assert rows.loc["LINES", "dq_flags"] == "contact_instruction: control characters removed"
    assert rows.loc["LONG", "contact_instruction"] == "z" * 500
    assert rows.loc["LONG", "dq_flags"] == "contact_instruction: longer than 500 characters, only the first 500 kept"
