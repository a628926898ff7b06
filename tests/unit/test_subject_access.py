"""The subject access export's rules, pure (Hexagon 5.5, Karbon 9.1, Teign 13). Synthetic data only."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from cautionflow.domain.subject_access import (
    NO_REFERENCE,
    DisclosureEntry,
    LetterEntry,
    LookupEntry,
    UnknownPerson,
    build_export,
    is_withheld,
)

DAY = dt.date(2026, 11, 23)
TOLD = {"alert_id": "A1", "alert_code": "VIP", "person_ref": "P1", "person_name": "Alex Example",
        "effective_from": dt.date(2026, 1, 5), "notify_resident": 1, "note": "NOTE-A1", "register_state": "active"}
SECRET = {"alert_id": "S1", "alert_code": "WPN", "person_ref": "P1", "person_name": "Alex Example",
          "effective_from": dt.date(2026, 2, 1), "notify_resident": 0, "no_notify_reason": "DPA 2018 Sch 2 para 2",
          "note": "NOTE-S1", "register_state": "active"}


def disclosure(alert_id: str, name: str) -> DisclosureEntry:
    return DisclosureEntry(alert_id, name, "contractor", "x@example.org", "digest", "current", DAY,
                           dt.datetime(2026, 11, 23, 7, 0, tzinfo=dt.UTC), "<m@example.org>")


def letter(alert_id: str, letter_id: int = 1) -> LetterEntry:
    return LetterEntry(letter_id, alert_id, "alert_added", "added", DAY, DAY, "queued", None, "post",
                       "Alex Example", ("Alex Example", "1 Larkspur Close"), None, None)


def export(include_withheld: bool, **extra):
    return build_export(
        "P1", alerts=[SECRET, TOLD], include_withheld=include_withheld, produced_on=DAY,
        history=[{"alert_id": "A1", "as_of": DAY, "change": "updated", "changed_fields": '{"note": ["a", "b"]}'},
                 {"alert_id": "S1", "as_of": DAY, "change": "inserted", "changed_fields": None}],
        disclosures=[disclosure("A1", "Acme Repairs"), disclosure("S1", "Acme Repairs")],
        letters=[letter("A1")], **extra,
    )


def test_the_residents_copy_leaves_out_the_withheld_alert_and_names_the_exemption():
    # Hexagon 5.5: withheld, "reference must be made to the exemption".
    result = export(include_withheld=False)
    assert [a.alert_id for a in result.alerts] == ["A1"]
    assert result.exemption_references == ("DPA 2018 Sch 2 para 2",) and result.withheld_count == 1
    text = json.dumps(result.as_dict())
    assert "S1" not in text and "NOTE-S1" not in text and "WPN" not in text
    assert result.counts()["disclosures"] == 1  # the withheld alert's disclosures go with it


def test_the_officers_copy_marks_the_withheld_alert():
    result = export(include_withheld=True)
    by_id = {a.alert_id: a for a in result.alerts}
    assert by_id["S1"].withheld and by_id["S1"].exemption_reference == "DPA 2018 Sch 2 para 2"
    assert not by_id["A1"].withheld and by_id["A1"].exemption_reference is None
    assert [a.alert_id for a in result.alerts] == ["A1", "S1"]  # by start date
    assert by_id["A1"].history[0].changed_fields == {"note": ["a", "b"]}
    assert [x.alert_id for x in by_id["A1"].letters] == ["A1"]
    assert result.as_dict()["alerts"][1]["withheld"] is True


def test_a_withheld_alert_without_a_recorded_reference_is_reported_to_the_officer():
    unreasoned = {**SECRET, "no_notify_reason": "  "}
    result = build_export("P1", alerts=[unreasoned], produced_on=DAY)
    assert result.alerts == () and result.exemption_references == (NO_REFERENCE,)
    assert len(result.officer_warnings) == 1 and "Hexagon 5.5" in result.officer_warnings[0]
    assert "officer_warnings" not in result.as_dict()  # never in the resident's copy


def test_nothing_held_is_unknown_but_a_letter_alone_is_something():
    with pytest.raises(UnknownPerson):
        build_export("P9", alerts=[], produced_on=DAY)
    result = build_export("P1", alerts=[], letters=[letter("GONE-ELSEWHERE")], produced_on=DAY)
    assert [x.alert_id for x in result.other_letters] == ["GONE-ELSEWHERE"] and result.names == ("Alex Example",)


@pytest.mark.parametrize(("value", "withheld"), [(0, True), ("0", True), (1, False), (None, False), ("1", False)])
def test_only_a_recorded_decision_not_to_notify_withholds(value, withheld):
    assert is_withheld({"notify_resident": value}) is withheld  # no decision recorded: not withheld


def test_lookups_are_shown_beside_the_disclosures_and_withheld_with_their_alert():
    """Accountability: the person sees who looked their alert up, and what by; never what was typed."""
    moment = dt.datetime(2026, 11, 23, 9, 0, tzinfo=dt.UTC)
    reads = [LookupEntry("A1", moment, "token", "Acme Repairs", ("postcode",)),
             LookupEntry("S1", moment, "user", "ops", ("address, name or reference search",))]
    resident = export(include_withheld=False, lookups=reads)
    assert resident.counts()["lookups"] == 1
    assert resident.as_dict()["alerts"][0]["looked_up"] == [
        {"at": "2026-11-23T09:00:00+00:00", "reader_kind": "token", "reader": "Acme Repairs", "asked_by": ["postcode"]}]
    officer = export(include_withheld=True, lookups=reads)
    assert {a.alert_id: len(a.lookups) for a in officer.alerts} == {"A1": 1, "S1": 1}
