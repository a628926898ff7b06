"""Issue 14, the right remedy and the right sentences: the pure rules (synthetic data only).

- The remedy by policy: a profile says whether a decision can be appealed, with its window, or only
  complained about (Karbon names no appeal; its only route is the complaints process, 12.4).
- The survey sentence (Wandle 5.0) only for alerts on the survey exclusion list: one rule for both.
- Dover 6.21: a review date moved off a weekend or bank holiday is told to the resident.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from cautionflow.domain import letters as d
from cautionflow.domain.policy import DayCount
from cautionflow.domain.surveys import SURVEY_EXCLUSION_CODES, on_survey_exclusion_list
from cautionflow.profiles import ProfileError, load_profile
from tests.support import AS_OF, alert_row

TOLD = {"effective_from": "2025-11-01", "notified_on": "2025-11-02"}


def alert(**overrides):
    """A register row: the source columns plus register_state and the stored deadlines."""
    row = alert_row(effective_from="2026-11-20", register_state="active", review_due="2027-11-20", expires_on=None)
    row.update(overrides)
    return row


def only(rows, policy, as_of=AS_OF):
    [letter] = d.owed_letters(rows, load_profile(policy), as_of).letters
    return letter


# --- the remedy ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("policy", "remedy", "window"), [
    ("hexagon", "appeal", None),  # Hexagon 5.3: "An opportunity to appeal the decision will also be given"
    ("karbon", "complaint", None),  # Karbon 12.4: the complaints process; the policy names no appeal
    ("teign", "appeal", DayCount(days=28, kind="calendar")),  # Teign 9: within 28 days
    ("wandle", "appeal", None),  # Wandle 3.10: the right to appeal, no time limit to lodge it
    ("dover", "appeal", DayCount(days=20, kind="working")),  # Dover 6.34: within 20 working days
])
def test_each_shipped_profile_states_its_remedy(policy, remedy, window):
    profile = load_profile(policy)
    assert (profile.appeal.remedy, profile.appeal.lodge_within) == (remedy, window)


def test_every_shipped_profile_states_the_remedy_with_its_clause():
    from cautionflow.profiles import PROFILE_DIR, shipped_profiles

    for name in shipped_profiles():
        [line] = [x for x in (PROFILE_DIR / f"{name}.yaml").read_text().splitlines() if "remedy:" in x]
        assert "#" in line and "(" in line.split("#", 1)[1], f"{name}.yaml: the remedy cites no clause: {line!r}"


def test_a_profile_that_names_no_remedy_gives_an_appeal(tmp_path: Path):
    # The default is the right of appeal all but one of the five policies give; Karbon states otherwise.
    path = tmp_path / "acme.yaml"
    path.write_text("review:\n  interval_months: 12\n")
    assert load_profile(path).appeal.remedy == "appeal"


@pytest.mark.parametrize(("setting", "field"), [
    ("lodge_within: {days: 28, kind: calendar}", "appeal.lodge_within"),
    ("answer_within: {days: 28, kind: calendar}", "appeal.answer_within"),
    ("final: true", "appeal.final"),
])
def test_a_complaint_profile_has_no_appeal_window(tmp_path: Path, setting, field):
    path = tmp_path / "acme.yaml"
    path.write_text(f"review:\n  interval_months: 12\nappeal:\n  remedy: complaint\n  {setting}\n")
    with pytest.raises(ProfileError) as caught:
        load_profile(path)
    message = str(caught.value)
    assert message.startswith(f"profile 'acme.yaml': {field}: ") and "complaint" in message
    assert "\n" not in message  # one line, naming the field


def test_an_unknown_remedy_is_named(tmp_path: Path):
    path = tmp_path / "acme.yaml"
    path.write_text("review:\n  interval_months: 12\nappeal:\n  remedy: ombudsman\n")
    with pytest.raises(ProfileError, match=r"^profile 'acme.yaml': appeal.remedy: must be one of 'appeal' or 'complaint'$"):
        load_profile(path)


def test_a_karbon_decision_letter_offers_the_complaints_process_and_no_appeal_date():
    # Karbon 12.4: no appeal, so no deadline to appeal by.
    for row in (alert(), alert(last_reviewed_on="2026-11-02", review_outcome="retained", **TOLD)):
        letter = only([row], "karbon")
        assert (letter.remedy, letter.appeal_by, letter.appeal_window) == ("complaint", None, "")
    teign = only([alert()], "teign")
    assert (teign.remedy, teign.appeal_by) == ("appeal", dt.date(2026, 12, 21))  # Teign 9: 28 days


# --- the survey sentence: one rule ----------------------------------------------------------------


def test_the_survey_rule():
    # Wandle 5.0 and 3.3: active contact restrictions (CM, SPOC) of a tenancy, until lifted.
    assert SURVEY_EXCLUSION_CODES == ("CM", "SPOC")
    assert on_survey_exclusion_list(alert_code="CM", tenancy_ref="T1", active=True)
    assert on_survey_exclusion_list(alert_code=" spoc ", tenancy_ref="T1", active=True)  # as the SQL's UPPER
    assert not on_survey_exclusion_list(alert_code="CM", tenancy_ref="T1", active=False)  # lifted: surveys resume
    assert not on_survey_exclusion_list(alert_code="VIP", tenancy_ref="T1", active=True)  # a visit measure
    for missing in (None, "", "  ", float("nan")):
        assert not on_survey_exclusion_list(alert_code="CM", tenancy_ref=missing, active=True)  # nothing to exclude
    assert not on_survey_exclusion_list(alert_code=None, tenancy_ref="T1", active=True)


@pytest.mark.parametrize(("code", "tenancy", "said"), [
    ("CM", "T1", True), ("SPOC", "T1", True),
    ("VIP", "T1", False),  # the list leaves a visit-in-pairs alert out, so its letter does not say it
    ("CM", None, False),  # no tenancy on the list
])
def test_the_survey_sentence_only_for_alerts_on_the_list(code, tenancy, said):
    # Wandle 5.0: "Residents will be advised of this approach when they are notified of the contact restriction".
    assert only([alert(alert_code=code, tenancy_ref=tenancy)], "wandle").survey_exclusion is said
    kept = alert(alert_code=code, tenancy_ref=tenancy, last_reviewed_on="2026-11-02", review_outcome="retained", **TOLD)
    assert only([kept], "wandle").survey_exclusion is said
    # Lifted: the removal letter says surveys resume, for the alerts that were on the list.
    removed = {**kept, "review_outcome": "removed", "status": "ended", "register_state": "ended"}
    assert only([removed], "wandle").survey_exclusion is said


def test_no_survey_sentence_where_the_policy_says_nothing_about_surveys():
    for policy in ("hexagon", "karbon", "teign", "dover"):
        assert only([alert(alert_code="CM")], policy).survey_exclusion is False, policy


# --- Dover 6.21: a review date moved past a weekend or bank holiday -------------------------------


@pytest.mark.parametrize(("row", "as_of", "moved_from", "review_due"), [
    # 12 months from Friday 20 November 2026 is Saturday 20 November 2027: reviewed on Monday the 22nd.
    ({"effective_from": "2026-11-20"}, AS_OF, dt.date(2027, 11, 20), dt.date(2027, 11, 22)),
    # The restriction ends on Monday 3 May 2027, the early May bank holiday: reviewed on Tuesday the 4th.
    ({"effective_from": "2026-11-02", "ends_on": "2027-05-03"}, AS_OF, dt.date(2027, 5, 3), dt.date(2027, 5, 4)),
    # 28 December 2027 is the substitute for Boxing Day (a Sunday): reviewed on Wednesday the 29th.
    ({"effective_from": "2026-12-28"}, dt.date(2027, 1, 4), dt.date(2027, 12, 28), dt.date(2027, 12, 29)),
    # A kept review on Friday 6 November 2026: the next falls on Saturday 6 November 2027.
    ({"last_reviewed_on": "2026-11-06", "review_outcome": "retained", **TOLD}, AS_OF, dt.date(2027, 11, 6),
     dt.date(2027, 11, 8)),
])
def test_dover_tells_the_resident_when_the_review_moves_past_the_period(row, as_of, moved_from, review_due):
    # Dover 6.21: "There may be occasions where a review is conducted beyond the restriction period, for
    # example if the date falls on a bank holiday or weekend. We will inform the resident where this is the case."
    letter = only([alert(**row, review_due=review_due.isoformat())], "dover", as_of)
    assert letter.kind in ("alert_added", "review_kept")
    assert (letter.review_moved_from, letter.review_due) == (moved_from, review_due)


def test_no_moved_review_on_a_working_day_nor_under_profiles_that_keep_the_date():
    # 12 months from Thursday 19 November 2026 is Friday 19 November 2027, a working day.
    assert only([alert(effective_from="2026-11-19", review_due="2027-11-19")], "dover").review_moved_from is None
    # Hexagon and Wandle (12 months), Teign (open-ended, 12) and Karbon (6) leave a Saturday where it falls.
    for policy, due in (("hexagon", "2027-11-20"), ("wandle", "2027-11-20"), ("teign", "2027-11-20"),
                        ("karbon", "2027-05-20")):
        assert only([alert(review_due=due)], policy).review_moved_from is None, policy


def test_the_sentence_is_said_only_when_the_printed_review_date_is_the_moved_one():
    # A stale stored date (not yet recomputed) must not be explained by a date the letter does not print.
    assert only([alert(review_due="2027-11-20")], "dover").review_moved_from is None
    assert only([alert(review_due=None)], "dover").review_moved_from is None


def test_outcome_letters_about_appeals_and_removals_never_carry_it():
    row = alert(effective_from="2026-11-20", notified_on="2026-11-21", appeal_decided_on="2026-11-22",
                appeal_outcome="dismissed", review_due="2027-11-22")
    assert only([row], "dover").review_moved_from is None
