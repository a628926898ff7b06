"""Which resident letters are owed: the pure rules of `cautionflow.domain.letters` (synthetic data only)."""

from __future__ import annotations

import datetime as dt

import pytest

from cautionflow.domain import letters as d
from cautionflow.profiles import load_profile
from tests.support import AS_OF, alert_row

RECENT = "2026-11-20"


def alert(**overrides):
    """A register row: the source columns plus register_state and the stored deadlines."""
    row = alert_row(effective_from=RECENT, register_state="active", review_due="2027-11-20", expires_on=None)
    row.update(overrides)
    return row


def plan(rows, policy="teign", as_of=AS_OF):
    return d.owed_letters(rows, load_profile(policy), as_of)


def only(rows, policy="teign", as_of=AS_OF):
    result = plan(rows, policy, as_of)
    [letter] = result.letters
    return letter


# --- alert added: the decision letter ---------------------------------------------------------------


def test_a_new_untold_alert_whose_code_needs_a_letter_is_owed_a_decision_letter():
    letter = only([alert()])
    assert (letter.kind, letter.outcome, letter.decision_date) == ("alert_added", "added", dt.date(2026, 11, 20))
    assert letter.code_title == "Visit in pairs" and letter.required_action.startswith("Visit in pairs")
    assert letter.address_lines == ("Alex Example", "1 Larkspur Close", "Eastwick", "EW1 2AB")
    assert letter.channels == ("post",) and not letter.held


def test_the_appeal_date_counts_from_the_letter_under_the_profiles_rule():
    # Teign 9: within 28 calendar days of receiving notification.
    assert only([alert()]).appeal_by == dt.date(2026, 12, 21)
    assert only([alert()]).appeal_window == "28 days"
    # Dover 6.34: 20 working days; over Christmas the bank holidays (and Boxing Day's substitute,
    # Monday 28 December) are not counted.
    dover = only([alert(effective_from="2026-11-20")], policy="dover")
    assert dover.appeal_by == dt.date(2026, 12, 21) and dover.appeal_window == "20 working days"
    christmas = only([alert(effective_from="2026-12-10")], policy="dover", as_of=dt.date(2026, 12, 14))
    assert christmas.appeal_by == dt.date(2027, 1, 14)
    # Hexagon 5.3: an opportunity to appeal with no time limit.
    assert only([alert()], policy="hexagon").appeal_by is None


def test_only_the_codes_the_policy_lists_get_a_decision_letter():
    # Teign 7: only alerts needing two people or a change to how we communicate.
    result = plan([alert(alert_code="NFO")])
    assert result.letters == ()
    assert result.suppressed_by_reason == {d.CODE_NEEDS_NO_LETTER: 1}
    assert only([alert(alert_code="NFO")], policy="hexagon").kind == "alert_added"  # Hexagon 5.3: every alert


def test_a_resident_already_told_gets_no_second_decision_letter():
    assert plan([alert(notified_on="2026-11-21")]).letters == ()


def test_the_look_back_window_by_state_not_first_sight():
    # Within 60 days (inclusive) the letter is still owed: a day missed is caught up next day.
    assert only([alert(effective_from="2026-09-24")]).kind == "alert_added"
    older = plan([alert(effective_from="2026-09-23", person_name="Olive Older")])
    assert older.letters == ()
    # Older untold alerts go to an officer, not a letter months late.
    assert [(o.alert_id, o.person_name) for o in older.officers] == [("CX-0001", "Olive Older")]
    assert plan([alert(effective_from="2026-11-24")]).letters == ()  # not yet in force


# --- review and appeal outcomes ---------------------------------------------------------------------


def test_a_kept_review_says_when_the_next_review_is_and_offers_an_appeal():
    # Hexagon 5.11, Wandle 3.9: every review outcome is told; Wandle 3.10: right of appeal.
    letter = only([alert(effective_from="2025-11-01", notified_on="2025-11-02", last_reviewed_on="2026-11-02",
                         review_outcome="retained", review_due="2027-11-02")])
    assert (letter.kind, letter.outcome, letter.decision_date) == ("review_kept", "retained", dt.date(2026, 11, 2))
    assert letter.review_due == dt.date(2027, 11, 2) and letter.appeal_by == dt.date(2026, 12, 21)


def test_a_removed_review_is_answered_even_when_the_alert_has_ended():
    letter = only([alert(effective_from="2025-11-01", notified_on="2025-11-02", last_reviewed_on="2026-11-02",
                         review_outcome="removed", status="ended", register_state="ended", review_due=None)])
    assert (letter.kind, letter.appeal_by) == ("review_removed", None)


def test_what_goes_to_the_officers_list_and_why():
    # Untold alerts older than the look-back go to an officer, not a letter months late.
    old = plan([alert(alert_id="OLD", effective_from="2026-01-05")]).officers
    assert [(o.alert_id, o.code) for o in old] == [("OLD", d.FLAG_UNTOLD_OLD)]
    # Hexagon 5.4-5.5: a decision not to tell must be recorded, however old the alert.
    for effective_from in ("2026-11-20", "2025-06-01"):
        [item] = plan([alert(effective_from=effective_from, notify_resident=0)]).officers
        assert (item.code, item.reason) == (d.FLAG_NO_REASON, "not to be told, but no reason recorded")
    assert plan([alert(effective_from="2025-06-01", notify_resident=0, no_notify_reason="risk of harm")]).officers == ()
    # Hexagon 5.6: alerts from before the policy are never contacted, so no decision is owed either.
    assert plan([alert(effective_from="2025-01-06", notify_resident=0)], policy="hexagon").officers == ()
    # Teign 7: a code that needs no decision letter needs no officer either.
    assert plan([alert(alert_code="NFO", effective_from="2026-01-05")]).officers == ()


def test_one_officers_item_per_alert_and_flag():
    row = alert(effective_from="2025-06-01", notify_resident=0, notified_on=None, last_reviewed_on="2026-11-02",
                review_outcome="retained")
    assert [o.code for o in plan([row, row]).officers] == [d.FLAG_NO_REASON]


def test_a_review_without_an_outcome_goes_to_an_officer():
    result = plan([alert(effective_from="2025-11-01", notified_on="2025-11-02", last_reviewed_on="2026-11-02")])
    assert result.letters == () and "without an outcome" in result.officers[0].reason


@pytest.mark.parametrize(("outcome", "kind"), [("upheld", "appeal_upheld"), ("dismissed", "appeal_dismissed")])
def test_appeal_outcomes_and_whether_they_are_final(outcome, kind):
    row = alert(effective_from="2026-10-01", notified_on="2026-10-02", appeal_received_on="2026-10-10",
                appeal_decided_on="2026-10-20", appeal_outcome=outcome)
    teign, dover = only([row]), only([row], policy="dover")
    assert (teign.kind, teign.decision_date) == (kind, dt.date(2026, 10, 20))
    assert teign.appeal_final is False and dover.appeal_final is True  # Dover 6.35: "The outcome ... is final"
    assert teign.appeal_by is None  # no appeal against an appeal outcome


def test_a_review_and_an_appeal_in_the_window_are_two_letters():
    row = alert(effective_from="2025-11-01", notified_on="2025-11-02", last_reviewed_on="2026-11-02",
                review_outcome="retained", appeal_decided_on="2026-11-10", appeal_outcome="dismissed")
    assert sorted(x.kind for x in plan([row]).letters) == ["appeal_dismissed", "review_kept"]


# --- suppressed ----------------------------------------------------------------------------------


def test_not_to_be_told_is_suppressed_and_a_missing_reason_flagged():
    # Hexagon 5.4, Teign 7, Dover 6.33, Karbon 4.2: exceptional cases are not told.
    told_why = plan([alert(notify_resident=0, no_notify_reason="risk of domestic abuse")])
    assert told_why.letters == () and told_why.suppressed_by_reason == {d.NOT_TO_BE_NOTIFIED: 1}
    assert told_why.officers == ()
    # Hexagon 5.5: the decision not to tell is relied on (DSAR); without a reason an officer must record one.
    no_reason = plan([alert(notify_resident=0, no_notify_reason=None)])
    assert [o.reason for o in no_reason.officers] == ["not to be told, but no reason recorded"]


@pytest.mark.parametrize("source", ["police", "local_authority", "social_services"])
def test_agency_information_gets_no_letter_where_the_policy_says_so(source):
    # Teign 4: where agencies provide the information "we would not write to our tenant(s)".
    assert plan([alert(source=source)]).suppressed_by_reason == {d.AGENCY_INFORMATION: 1}
    assert only([alert(source=source)], policy="dover").kind == "alert_added"  # Dover has no such rule


def test_alerts_from_before_the_policy_are_never_contacted():
    # Hexagon 5.6: alerts in place before the policy: no letters about inclusion or removal.
    row = alert(effective_from="2025-02-01", last_reviewed_on="2026-11-02", review_outcome="removed",
                notified_on=None)
    assert plan([row], policy="hexagon").suppressed_by_reason == {d.BEFORE_POLICY: 1}


def test_address_only_alerts_have_nobody_to_write_to():
    row = alert(subject_type="address", person_ref=None, person_name=None)
    result = plan([row])
    assert result.letters == () and result.suppressed_by_reason == {d.ADDRESS_ONLY: 1}


# --- held and formats -------------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["en", "ENG", "English", "", None])
def test_english_in_any_spelling_is_not_held(language):
    assert not only([alert(language=language)]).held


def test_other_languages_are_held_for_translation_never_machine_translated():
    # Karbon 12, Hexagon Appendix 1: letters in the resident's language on request.
    letter = only([alert(language="pl")])
    assert letter.held and letter.hold_reason == "translation needed (pl)"


def test_no_postal_address_is_held_unless_the_letter_goes_by_email_only():
    assert only([alert(address=None, asset_ref="H1", postcode=None)]).hold_reason == d.HOLD_NO_ADDRESS
    by_email = only([alert(address=None, postcode=None, preferred_channel="email", email="alex@example.com")])
    assert not by_email.held and by_email.channels == ("email",)


def test_large_print_is_a_variant_not_a_hold():
    letter = only([alert(large_print=1)])
    assert letter.large_print and not letter.held


def test_channels_follow_the_profile_and_the_residents_choice():
    email = {"preferred_channel": "email", "email": "alex@example.com"}
    assert only([alert(**email)]).channels == ("email",)
    assert only([alert(preferred_channel="email", email=None)]).channels == ("post",)
    # Dover 6.12, 6.15, 6.19: by post and, where possible, email.
    assert only([alert(**email)], policy="dover").channels == ("post", "email")
    assert only([alert(preferred_channel="post", email="alex@example.com")], policy="dover").channels == (
        "post", "email")


def test_the_survey_notice_where_the_profile_says_so():
    # Wandle 5.0: residents are told they are left out of feedback surveys, for the alerts the survey
    # exclusion list includes (a contact restriction of a tenancy: tests/unit/test_letter_remedy.py).
    assert only([alert(alert_code="CM")], policy="wandle").survey_exclusion is True
    assert only([alert()], policy="wandle").survey_exclusion is False  # VIP: not on the list, so not said
    assert only([alert(alert_code="CM")]).survey_exclusion is False


# --- one letter per key, ever -------------------------------------------------------------------


def test_the_letter_key_is_deterministic_per_alert_kind_and_decision_date():
    key = d.letter_key("CX-0001", "alert_added", dt.date(2026, 11, 20))
    assert key == d.letter_key("CX-0001", "alert_added", dt.date(2026, 11, 20)) and len(key) == 64
    assert key != d.letter_key("CX-0001", "alert_added", dt.date(2026, 11, 21))
    assert key != d.letter_key("CX-0002", "alert_added", dt.date(2026, 11, 20))
    # The same state seen on later days owes the same letter (the queue keeps it once).
    assert only([alert()]).key == only([alert()], as_of=AS_OF + dt.timedelta(days=5)).key == key


def test_a_duplicated_row_owes_one_letter():
    assert len(plan([alert(), alert()]).letters) == 1


@pytest.mark.parametrize(("odd", "letters", "suppressed"), [
    # No code: no code that needs a letter, so none is owed (and none invented).
    ({"alert_code": None}, [], []),
    # An impossible decision date: nothing dated in the look-back window, so nothing owed yet.
    ({"effective_from": "31/02/2025"}, [], []),
    # An unreadable flag is the default, which is to tell the resident (Teign 7).
    ({"notify_resident": "x"}, [("alert_added", "Alex Example", ("Alex Example", "1 Larkspur Close", "Eastwick",
                                                                 "EW1 2AB"))], []),
    # No person at all: address only, suppressed with that reason rather than a letter to nobody.
    ({"person_name": None, "person_ref": None, "subject_type": None}, [], [("alert_added", d.ADDRESS_ONLY)]),
])
def test_odd_values_never_crash(odd, letters, suppressed):
    result = plan([alert(**odd)])

    assert [(x.kind, x.person_name, x.address_lines) for x in result.letters] == letters
    assert [(s.kind, s.reason) for s in result.suppressed] == suppressed
    assert result.officers == ()


# --- which letters need the Unicode font ------------------------------------------------------------


@pytest.mark.parametrize(("text", "needed"), [
    ("Alex Example", False),
    ("Zoë Ó Briain, Siân", False),  # Latin-1: the core font shows them
    ("\u2018quoted\u2019 \u2013 and\u2026", False),  # typography the core font writes plainly
    ("Łukasiewicz", True),
    ("Ŵyn", True),
    ("Олена", True),
])
def test_only_text_beyond_latin_1_needs_the_embedded_font(text, needed):
    from cautionflow.adapters.pdf import needs_unicode

    assert needs_unicode("Example Homes", text) is needed


# --- templates: shared paragraphs are partials, each said once ------------------------------------


@pytest.mark.parametrize("survey", [True, False])
def test_each_kind_says_the_shared_paragraphs_once(survey):
    import dataclasses
    from pathlib import Path

    from cautionflow.adapters.templates import renderer
    from cautionflow.config import parse_config

    config = parse_config({"organisation": "Example Homes", "policy": "teign", "register_url": "sqlite://",
                           "source": {"url": "sqlite://"}}, home=Path(__file__).resolve().parents[2])
    render = renderer(config)
    told = {"effective_from": "2025-11-01", "notified_on": "2025-11-02"}
    rows = [alert(alert_id="A"), alert(alert_id="K", last_reviewed_on="2026-11-02", review_outcome="retained", **told),
            alert(alert_id="R", last_reviewed_on="2026-11-02", review_outcome="removed", **told),
            alert(alert_id="U", appeal_decided_on="2026-11-10", appeal_outcome="upheld", **told),
            alert(alert_id="D", appeal_decided_on="2026-11-10", appeal_outcome="dismissed", **told)]
    letters = {x.kind: dataclasses.replace(x, survey_exclusion=survey) for x in plan(rows).letters}
    assert set(letters) == set(d.KINDS)
    for kind, letter in letters.items():
        html = render(f"letters/{kind}.html", pdf=True, letter=letter, organisation="Example Homes",
                      as_of=AS_OF, reply_email=None)
        assert html.count("What it means for you") == 1, kind
        assert html.count("You can always contact us in an emergency") == 1  # Wandle 3.6
        surveys = html.count("feedback surveys")
        assert surveys == (1 if survey else 0), kind  # Wandle 5.0: told when left out, and when back in
        appeal = kind in ("alert_added", "review_kept")  # Wandle 3.10: the right to appeal a decision
        assert html.count("If you disagree with this decision") == (1 if appeal else 0), kind
