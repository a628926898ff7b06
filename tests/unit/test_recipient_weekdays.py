"""A recipient's `weekday`: one day or a list of days, for the officers' reminder and weekly digests.

Fixed dates only: 23 November 2026 is a Monday, so MONDAY + n is the nth day after it.
"""

from __future__ import annotations

import datetime as dt

import pytest

from cautionflow.config import ConfigError, Recipient, parse_config
from cautionflow.domain.digests import is_due
from cautionflow.domain.reminders import reminder_is_due

MONDAY = dt.date(2026, 11, 23)
WEEK = [MONDAY + dt.timedelta(days=n) for n in range(7)]  # Monday .. Sunday
MINIMAL = {
    "organisation": "Example Homes",
    "policy": "dover",
    "register_url": "sqlite:///var/cautionflow.db",
    "source": {"url": "sqlite:///var/demo/housing.db"},
}


def officer(**extra) -> Recipient:
    return Recipient(name="Officers", email="o@example.org", role="officer", **extra)


def test_a_single_day_is_kept_as_a_one_day_list():
    assert officer(weekday="tuesday").weekday == ("tuesday",)
    assert [reminder_is_due(officer(weekday="tuesday"), day) for day in WEEK] == [
        False, True, False, False, False, False, False,
    ]


def test_a_list_of_days_sends_the_reminder_on_each_of_them():
    twice = officer(weekday=["monday", "thursday"])
    assert twice.weekday == ("monday", "thursday")
    assert [reminder_is_due(twice, day) for day in WEEK] == [True, False, False, True, False, False, False]
    every_day = officer(weekday=["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"])
    assert all(reminder_is_due(every_day, day) for day in WEEK)
    # The same week a fortnight on: the weekday decides, not the date.
    assert all(reminder_is_due(every_day, day + dt.timedelta(days=14)) for day in WEEK)


def test_no_weekday_means_monday():
    assert [reminder_is_due(officer(), day) for day in WEEK] == [True] + [False] * 6


def test_names_are_case_insensitive_and_repeats_collapse():
    assert officer(weekday=[" Friday", "FRIDAY", "monday"]).weekday == ("friday", "monday")


def test_weekly_digests_follow_a_list_too():
    contractor = Recipient(name="Acme", email="a@acme.example", role="contractor", areas=("NORTH",),
                           schedule="weekly", weekday=["tuesday", "friday"])
    assert [is_due(contractor, day) for day in WEEK] == [False, True, False, False, True, False, False]
    single = Recipient(name="Acme", email="a@acme.example", role="contractor", areas=("NORTH",),
                       schedule="weekly", weekday="wednesday")
    assert [is_due(single, day) for day in WEEK] == [False, False, True, False, False, False, False]


def test_both_forms_load_from_a_config(tmp_path):
    config = parse_config({**MINIMAL, "recipients": [
        {"name": "A", "email": "a@example.org", "role": "officer", "weekday": "friday"},
        {"name": "B", "email": "b@example.org", "role": "officer", "weekday": ["monday", "wednesday"]},
    ]}, home=tmp_path)
    assert [r.weekday for r in config.recipients] == [("friday",), ("monday", "wednesday")]


@pytest.mark.parametrize(
    ("weekday", "message"),
    [
        ("funday", "recipients.0.weekday: Value error, 'funday' is not a day of the week (monday, tuesday"),
        (["monday", "mon"], "recipients.0.weekday: Value error, 'mon' is not a day of the week"),
        ([], "recipients.0.weekday: Value error, must be a day of the week or a list of them"),
        (3, "recipients.0.weekday: Value error, must be a day of the week or a list of them"),
        ([1], "recipients.0.weekday: Value error, 1 is not a day of the week"),
    ],
)
def test_a_bad_weekday_is_one_line_naming_the_field(weekday, message, tmp_path):
    recipient = {"name": "A", "email": "a@example.org", "role": "officer", "weekday": weekday}
    with pytest.raises(ConfigError) as caught:
        parse_config({**MINIMAL, "recipients": [recipient]}, origin="deploy.yaml", home=tmp_path)
    assert str(caught.value).startswith(f"deploy.yaml: {message}")
    assert "\n" not in str(caught.value)
