"""The reason for the resident (issue 14), pure parts: the optional source column's validation, and
which decision letters it holds (Hexagon 5.3, Karbon 5.2, Teign Appendix E). Synthetic data only."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pandas as pd
import pytest

from cautionflow.domain import letters as d
from cautionflow.domain.contract import SOURCE_COLUMNS
from cautionflow.domain.validation import SourceShapeError, validate_source_rows
from cautionflow.profiles import load_profile
from tests.support import AS_OF, alert_row

WITHOUT = [c for c in SOURCE_COLUMNS if c != "resident_reason"]
TOLD = {"effective_from": "2025-11-01", "notified_on": "2025-11-02"}
REASON = "On 14 November 2026 you shouted at our repairs operative at your door."


def frame(rows, columns=SOURCE_COLUMNS):
    return pd.DataFrame([alert_row(**r) for r in rows], columns=list(columns))


# --- the source contract -----------------------------------------------------------------------------


def test_a_source_without_the_column_is_read_as_no_reason_for_every_row():
    batch = validate_source_rows(frame([{"alert_id": "A"}, {"alert_id": "B"}], WITHOUT))
    assert batch.alerts["resident_reason"].tolist() == [None, None]
    assert batch.alerts["dq_flags"].tolist() == [None, None]  # not a fault: the column is optional
    # Given as plain columns, as the source adapter returns them, too.
    raw = {c: [alert_row()[c]] for c in WITHOUT}
    assert validate_source_rows(raw).alerts["resident_reason"].tolist() == [None]


def test_only_the_optional_column_may_be_missing():
    with pytest.raises(SourceShapeError, match=r"column\(s\) note \("):
        validate_source_rows(frame([{}], [c for c in WITHOUT if c != "note"]))


def test_no_reason_hashes_as_before_the_column_and_a_reason_is_a_change():
    # An alert without a reason keeps the fingerprint it had when the contract had no such column:
    # the first sync after the upgrade changes nothing for a landlord who records none.
    without = validate_source_rows(frame([{}], WITHOUT)).alerts["row_hash"].iloc[0]
    empty = validate_source_rows(frame([{"resident_reason": "  "}])).alerts["row_hash"].iloc[0]
    told = validate_source_rows(frame([{"resident_reason": REASON}])).alerts["row_hash"].iloc[0]
    other = validate_source_rows(frame([{"resident_reason": REASON + " Again."}])).alerts["row_hash"].iloc[0]
    assert without == empty
    assert len({without, told, other}) == 3


def test_a_quarantined_row_shows_the_reason_only_when_it_has_one():
    batch = validate_source_rows(frame([{"alert_id": None, "resident_reason": None}, {"alert_id": None, "resident_reason": REASON}]))
    raw = [json.loads(r) for r in batch.quarantine["raw_row"]]
    assert "resident_reason" not in raw[0] and raw[1]["resident_reason"] == REASON


def test_the_reason_is_multi_line_free_text_capped_like_a_recorded_reason():
    batch = validate_source_rows(frame([
        {"alert_id": "LINES", "resident_reason": "First.\r\nSecond.\tThird.\x00"},
        {"alert_id": "LONG", "resident_reason": "y" * 2_001},
    ]))
    rows = batch.alerts.set_index("alert_id")
    assert rows.loc["LINES", "resident_reason"] == "First.\nSecond. Third."
    assert rows.loc["LINES", "dq_flags"] == "resident_reason: control characters removed"
    assert len(rows.loc["LONG", "resident_reason"]) == 2_000
    assert rows.loc["LONG", "dq_flags"] == "resident_reason: longer than 2000 characters, only the first 2000 kept"


# --- which letters it holds --------------------------------------------------------------------------


def alert(**overrides):
    row = alert_row(effective_from="2026-11-20", register_state="active", review_due="2027-11-20", expires_on=None)
    row.update(overrides)
    return row


ONE_OF_EACH = [
    alert(alert_id="A"),
    alert(alert_id="K", last_reviewed_on="2026-11-02", review_outcome="retained", **TOLD),
    alert(alert_id="R", last_reviewed_on="2026-11-02", review_outcome="removed", **TOLD),
    alert(alert_id="U", appeal_decided_on="2026-11-10", appeal_outcome="upheld", **TOLD),
    alert(alert_id="D", appeal_decided_on="2026-11-10", appeal_outcome="dismissed", **TOLD),
]


@pytest.mark.parametrize("policy", ["hexagon", "karbon", "teign", "wandle", "dover"])
def test_every_decision_letter_without_a_reason_is_held_and_with_one_carries_it(policy):
    profile = load_profile(policy)
    # Every code the profile writes about, so each kind is owed whatever the profile's code list.
    code = sorted(profile.decision_letter_codes)[0]
    rows = [{**r, "alert_code": code} for r in ONE_OF_EACH]
    held = d.owed_letters([{**r, "resident_reason": None} for r in rows], profile, AS_OF).letters
    assert {x.kind for x in held} == set(d.KINDS)
    assert {(x.kind, x.hold_reason) for x in held} == {(k, d.HOLD_NO_REASON) for k in d.KINDS}
    told = d.owed_letters([{**r, "resident_reason": f" {REASON}\n"} for r in rows], profile, AS_OF).letters
    assert {(x.held, x.resident_reason) for x in told} == {(False, REASON)}


def test_no_reason_comes_before_a_translation_and_then_the_translation_holds():
    profile = load_profile("teign")
    [polish] = d.owed_letters([alert(language="pl", resident_reason=None)], profile, AS_OF).letters
    assert polish.hold_reason == d.HOLD_NO_REASON
    [later] = d.owed_letters([alert(language="pl", resident_reason=REASON)], profile, AS_OF).letters
    assert later.hold_reason == "translation needed (pl)" and later.key == polish.key


def test_the_flag_for_a_held_letter_reads_plainly():
    item = d.OfficerItem.of("A", "Alex Example", d.FLAG_RESIDENT_REASON)
    assert (item.code, item.reason) == (
        "resident_reason_missing", "decision letter held: no reason recorded for the resident")


def test_the_reason_is_printed_paragraph_by_paragraph_as_text_never_markup():
    from cautionflow.adapters.templates import renderer
    from cautionflow.config import parse_config

    config = parse_config({"organisation": "Example Homes", "policy": "teign", "register_url": "sqlite://",
                           "source": {"url": "sqlite://"}}, home=Path(__file__).resolve().parents[2])
    render = renderer(config)
    reason = "You shouted at our operative.\n\nYou threw a <b>cup</b> at the van."
    letters = d.owed_letters([{**r, "resident_reason": reason} for r in ONE_OF_EACH], load_profile("teign"),
                             AS_OF).letters
    for letter in letters:
        html = render(f"letters/{letter.kind}.html", pdf=True, letter=letter, organisation="Example Homes",
                      as_of=AS_OF, reply_email=None)
        assert html.count("Why we have made this decision") == 1, letter.kind
        assert "<p>You shouted at our operative.</p>" in html, letter.kind
        assert "<p>You threw a &lt;b&gt;cup&lt;/b&gt; at the van.</p>" in html, letter.kind
        unreasoned = dataclasses.replace(letter, resident_reason="")
        bare = render(f"letters/{letter.kind}.html", pdf=True, letter=unreasoned, organisation="Example Homes",
                      as_of=AS_OF, reply_email=None)
        assert "Why we have made this decision" not in bare  # a held letter says nothing it does not know
