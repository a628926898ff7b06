"""Policy profiles: each landlord's rules as a small YAML file, checked on load."""

from __future__ import annotations

import re
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.policy import SERVICE_CHANGING_CODES, DayCount, PolicyProfile
from cautionflow.profiles import PROFILE_DIR, ProfileError, load_profile, shipped_profiles

SHIPPED = ("dover", "hexagon", "karbon", "teign", "wandle")


def write(tmp_path: Path, text: str, name: str = "acme.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_the_five_landlords_are_shipped() -> None:
    assert shipped_profiles() == SHIPPED


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_profile_loads_with_its_name_and_the_england_and_wales_calendar(name: str) -> None:
    profile = load_profile(name)
    assert profile.name == name
    assert profile.calendar == "england-and-wales"  # README: "England and Wales for all five"
    assert profile.retention_months_after_end is None  # no policy sets it; the landlord must
    assert profile.letters.lookback_days == 60


@pytest.mark.parametrize("name", SHIPPED)
def test_every_shipped_value_cites_a_clause_or_says_whose_choice_it_is(name: str) -> None:
    for line in (PROFILE_DIR / f"{name}.yaml").read_text().splitlines():
        setting = line.split("#")[0].strip()
        if setting.endswith(":") or not setting or setting.startswith(("decision_letter_codes", "landlord")):
            continue
        assert "#" in line, f"{name}.yaml: uncommented value: {line!r}"


def test_hexagon() -> None:
    p = load_profile("hexagon")
    assert p.review.interval_months == 12  # Hexagon 5.9
    assert p.review.interval_months_by_code == {}
    assert p.duration.default_months == 12  # Hexagon 5.8: most alerts for 12 months
    assert p.duration.min_months is None  # Hexagon 5.8: a shorter period is allowed
    assert p.duration.max_months == 12  # Hexagon 5.10
    assert p.review.window_opens_days_before == 30  # Hexagon 5.9: "ahead of their expiry"
    assert p.review.on_non_working_day == "stay"
    assert p.appeal.lodge_within is None and p.appeal.answer_within is None  # Hexagon 5.3: no time limits
    assert p.policy_start == date(2025, 3, 1)  # approved March 2025; Hexagon 5.6
    assert p.letters.channels == "preferred"
    assert p.decision_letter_codes == SERVICE_CHANGING_CODES


def test_karbon() -> None:
    p = load_profile("karbon")
    assert p.review.interval_months == 6  # Karbon 8.1: every 6 months
    assert p.review.interval_months_by_code == {"DNV": 1}  # Karbon 8.1: 'do not visit' monthly
    assert p.review.interval_for("DNV") == 1 and p.review.interval_for("VIP") == 6
    assert p.duration.default_months is None  # open-ended until a review removes it
    assert p.duration.min_months is None and p.duration.max_months is None
    assert p.review.window_opens_days_before == 14
    assert p.review.on_non_working_day == "stay"
    assert p.appeal.lodge_within is None and p.appeal.answer_within is None
    assert p.policy_start is None


def test_teign() -> None:
    p = load_profile("teign")
    assert p.review.interval_months == 12  # Teign 8: at least once annually
    assert p.duration.default_months is None and p.duration.max_months is None
    assert p.review.window_opens_days_before == 30
    assert p.review.on_non_working_day == "stay"
    assert p.appeal.lodge_within == DayCount(days=28, kind="calendar")  # Teign 9
    assert p.appeal.answer_within == DayCount(days=28, kind="calendar")  # Teign 9
    # Teign 7: only alerts needing two people or a change in communication get a decision letter.
    assert p.decision_letter_codes == {"VIP", "DOG", "CM", "NLF", "NLM", "NFV", "NMV", "WPN", "SPOC"}
    assert p.letters.agency_information_no_letter is True  # Teign 4


def test_wandle() -> None:
    p = load_profile("wandle")
    assert p.review.interval_months == 12  # Wandle 3.9: after no longer than 12 months
    assert p.duration.default_months == 12
    assert p.duration.min_months is None
    assert p.duration.max_months == 18  # Wandle 3.7/3.8: no longer than 18 months per determination
    assert p.review.window_opens_days_before == 30
    assert p.review.on_non_working_day == "stay"
    assert p.appeal.lodge_within is None  # Wandle 3.10 sets no time to lodge an appeal
    assert p.appeal.answer_within == DayCount(days=28, kind="calendar")  # Wandle 3.10
    assert p.letters.survey_exclusion_notice is True  # Wandle 5.0


def test_dover() -> None:
    p = load_profile("dover")
    assert p.review.interval_months == 12
    duration = p.duration
    assert (duration.min_months, duration.default_months, duration.max_months) == (6, 12, 12)  # Dover 6.16
    assert p.review.window_opens_days_before == 10
    assert p.review.on_non_working_day == "next_working_day"  # Dover 6.21
    assert p.appeal.lodge_within == DayCount(days=20, kind="working")  # Dover 6.34
    assert p.appeal.answer_within == DayCount(days=10, kind="working")  # Dover 6.35
    assert p.appeal.final is True  # Dover 6.35: "The outcome of an appeal is final"
    assert p.letters.channels == "post_and_email"  # Dover 6.12, 6.15, 6.19


def test_profiles_are_frozen() -> None:
    with pytest.raises(ValidationError):
        load_profile("dover").review.interval_months = 3  # type: ignore[misc]


def test_a_minimal_profile_needs_only_the_review_interval(tmp_path: Path) -> None:
    profile = load_profile(write(tmp_path, "review:\n  interval_months: 12\n"))
    assert profile.name == "acme"
    assert profile.review.window_opens_days_before == 30
    assert profile.review.on_non_working_day == "stay"
    assert profile.duration.default_months is None
    assert profile.appeal.lodge_within is None
    assert profile.decision_letter_codes == SERVICE_CHANGING_CODES
    assert profile.letters.channels == "preferred"
    assert profile.retention_months_after_end is None


def test_a_new_landlord_copies_a_shipped_file_edits_it_and_loads_it_by_path(tmp_path: Path) -> None:
    text = (PROFILE_DIR / "dover.yaml").read_text()
    text = text.replace("interval_months: 12 ", "interval_months: 9 ").replace("{days: 20, kind: working}",
                                                                                "{days: 15, kind: working}")
    path = write(tmp_path, text, "riverside.yaml")
    profile = load_profile(path)
    assert profile.name == "riverside"
    assert profile.review.interval_months == 9
    assert profile.appeal.lodge_within == DayCount(days=15, kind="working")
    assert load_profile(str(path)) == profile  # a path given as text works too


def test_an_unknown_name_lists_the_shipped_profiles() -> None:
    with pytest.raises(ProfileError, match="unknown policy profile 'dovr'; shipped profiles: "
                                           "dover, hexagon, karbon, teign, wandle"):
        load_profile("dovr")


def test_a_missing_file_is_a_profile_error(tmp_path: Path) -> None:
    with pytest.raises(ProfileError, match="profile file not found"):
        load_profile(tmp_path / "nowhere.yaml")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("review:\n  interval_months: 0\n", "review.interval_months: must be a positive integer"),
        ("review:\n  interval_months: -3\n", "review.interval_months: must be a positive integer"),
        ("review:\n  interval_months: '12'\n", "review.interval_months: must be a positive integer"),
        ("review:\n  interval_months: 1.5\n", "review.interval_months: must be a positive integer"),
        ("review:\n  interval_months: 600\n", "review.interval_months: must be at most 120"),
        ("review: {}\n", "review.interval_months: is required"),
        ("landlord: Acme\n", "review: is required"),
        ("review: 12\n", "review: must be a mapping of settings"),
        ("review:\n  interval_months: 12\n  intervall_months: 6\n",
         "review.intervall_months: is not a known setting"),
        ("review:\n  interval_months: 12\n  interval_months_by_code: {XYZ: 1}\n",
         "review.interval_months_by_code: unknown alert code 'XYZ'"),
        ("review:\n  interval_months: 12\n  interval_months_by_code: {DNV: 0}\n",
         "review.interval_months_by_code.DNV: must be a positive integer"),
        ("review:\n  interval_months: 12\n  on_non_working_day: monday\n",
         "review.on_non_working_day: must be one of 'stay' or 'next_working_day'"),
        ("review:\n  interval_months: 12\n  window_opens_days_before: -1\n",
         "review.window_opens_days_before: must be a whole number of days from 0 to 366"),
        ("review:\n  interval_months: 12\nduration:\n  min_months: 12\n  max_months: 6\n",
         "duration: min_months (12) is more than max_months (6)"),
        ("review:\n  interval_months: 12\nduration:\n  default_months: 24\n  max_months: 18\n",
         "duration: default_months (24) must be between min_months and max_months"),
        ("review:\n  interval_months: 12\nappeal:\n  lodge_within: {days: 20, kind: weekdays}\n",
         "appeal.lodge_within.kind: must be one of 'calendar' or 'working'"),
        ("review:\n  interval_months: 12\nappeal:\n  answer_within: {kind: working}\n",
         "appeal.answer_within.days: is required"),
        ("review:\n  interval_months: 12\nappeal:\n  final: 'yes'\n", "appeal.final: must be true or false"),
        ("review:\n  interval_months: 12\ncalendar: wales\n",
         "calendar: must be one of 'england-and-wales', 'scotland' or 'northern-ireland'"),
        ("review:\n  interval_months: 12\npolicy_start: March 2025\n",
         "policy_start: must be a date written YYYY-MM-DD"),
        ("review:\n  interval_months: 12\npolicy_start: 2025-02-30\n",
         "policy_start: must be a date written YYYY-MM-DD"),
        ("review:\n  interval_months: 12\nletters:\n  channels: fax\n",
         "letters.channels: must be one of 'preferred' or 'post_and_email'"),
        ("review:\n  interval_months: 12\nletters:\n  lookback_days: 0\n",
         "letters.lookback_days: must be a positive integer"),
        ("review:\n  interval_months: 12\nretention_months_after_end: 0\n",
         "retention_months_after_end: must be a positive integer"),
        ("review:\n  interval_months: 12\ndecision_letter_codes: [VIP, VPI]\n",
         "decision_letter_codes[1]: unknown alert code 'VPI'"),
        # YAML reads an unquoted OFF as false: say so rather than "unknown code False".
        ("review:\n  interval_months: 12\ndecision_letter_codes: [VIP, OFF]\n",
         "decision_letter_codes[1]: False is not an alert code (write codes in quotes, e.g. 'OFF')"),
        ("review:\n  interval_months: 12\nname: acme\n", "name: is taken from the file name"),
        ("- just\n- a list\n", "must be a mapping of settings"),
        ("review: [unclosed\n", "not valid YAML (line 2)"),
    ],
)
def test_invalid_profiles_are_refused_with_the_file_and_field_named(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, text, "x.yaml"))
    assert str(caught.value).startswith("profile 'x.yaml': ")
    assert message in str(caught.value)


def test_every_problem_in_a_file_is_reported_at_once(tmp_path: Path) -> None:
    text = "review:\n  interval_months: 0\n  window_opens_days_before: x\nletters:\n  channels: fax\n"
    with pytest.raises(ProfileError) as caught:
        load_profile(write(tmp_path, text, "x.yaml"))
    assert re.fullmatch(
        r"profile 'x\.yaml': review\.interval_months: .+; review\.window_opens_days_before: .+; "
        r"letters\.channels: .+",
        str(caught.value),
    )


def test_decision_letter_codes_by_default_are_every_code_that_changes_the_service() -> None:
    assert set(ALERT_CODES) - SERVICE_CHANGING_CODES == {"HAZ"}  # a hazard changes nothing for the resident


def test_the_model_can_be_built_in_code_too() -> None:
    profile = PolicyProfile.model_validate({"name": "inline", "review": {"interval_months": 3}})
    assert profile.review.interval_months == 3


def test_a_profile_may_rank_a_code_otherwise_and_a_bad_rank_is_named(tmp_path: Path) -> None:
    from cautionflow.domain.codes import severity

    base = (PROFILE_DIR / "dover.yaml").read_text()
    assert "# severity: {DOG: 5}" in base  # documented in a shipped profile
    assert load_profile("dover").severity == {}
    ranked = load_profile(str(write(tmp_path, base + "severity: {DOG: 5}\n")))
    assert ranked.severity == {"DOG": 5} and severity("DOG", ranked.severity) == 5
    for bad, message in (
        ("{DGO: 5}", "severity: unknown alert code 'DGO'"),
        ("{DOG: 6}", "severity.DOG: must be a whole number from 1 to 5"),
        ("{DOG: high}", "severity.DOG: must be a whole number from 1 to 5"),
        ("[DOG]", "severity: must be a mapping"),
    ):
        with pytest.raises(ProfileError, match=re.escape(message)) as raised:
            load_profile(str(write(tmp_path, base + f"severity: {bad}\n", name="bad.yaml")))
        assert "\n" not in str(raised.value)
