"""A landlord's policy as data: the numbers and switches the deadline engine and letters read.

Each landlord's written policy is turned into a small YAML profile (see `cautionflow.profiles`),
validated here into a frozen model. Validation errors name the field, because the people who
edit a profile are policy officers, not programmers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cautionflow.domain.codes import ALERT_CODES, MAX_SEVERITY, MIN_SEVERITY

Nation = Literal["england-and-wales", "scotland", "northern-ireland"]
NATIONS: tuple[str, ...] = ("england-and-wales", "scotland", "northern-ireland")

# Upper bounds keep every computed date inside the working calendar's years; no real policy
# comes near them (the longest in the five policies is 18 months).
MAX_MONTHS = 120
MAX_DAYS = 366

# Codes whose alert changes the service the resident gets (who visits, how we make contact),
# so the resident is told in a decision letter. HAZ only asks staff to take care at the
# property, so it changes nothing for the resident.
SERVICE_CHANGING_CODES: frozenset[str] = frozenset(ALERT_CODES) - {"HAZ"}


class ProfileError(ValueError):
    """A policy profile that cannot be used; the message names the file and the field."""


def _positive_int(limit: int | None) -> BeforeValidator:
    def check(value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
            raise PydanticCustomError("positive_int", "must be a positive integer")
        if limit is not None and value > limit:
            raise PydanticCustomError("too_big", f"must be at most {limit}")
        return value

    return BeforeValidator(check)


def _day_count(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_DAYS:
        raise PydanticCustomError("day_count", f"must be a whole number of days from 0 to {MAX_DAYS}")
    return value


def _strict_bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise PydanticCustomError("bool", "must be true or false")
    return value


def _alert_code(value: Any) -> str:
    if not isinstance(value, str):
        # YAML reads an unquoted OFF, NO, YES or ON as true/false.
        raise PydanticCustomError(
            "alert_code", f"{value!r} is not an alert code (write codes in quotes, e.g. 'OFF')")
    if value not in ALERT_CODES:
        known = ", ".join(sorted(ALERT_CODES))
        raise PydanticCustomError("alert_code", f"unknown alert code {value!r} (known codes: {known})")
    return value


def _date_value(value: Any) -> date | None:
    if value is None or (isinstance(value, date) and not isinstance(value, datetime)):
        return value
    if isinstance(value, str) and re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise PydanticCustomError("date", "must be a date written YYYY-MM-DD")


def _severity_rank(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_SEVERITY <= value <= MAX_SEVERITY:
        raise PydanticCustomError(
            "severity", f"must be a whole number from {MIN_SEVERITY} to {MAX_SEVERITY} (5: highest risk)")
    return value


Months = Annotated[int, _positive_int(MAX_MONTHS)]
Days = Annotated[int, BeforeValidator(_day_count)]
PositiveInt = Annotated[int, _positive_int(None)]
StrictBool = Annotated[bool, BeforeValidator(_strict_bool)]
AlertCodeName = Annotated[str, BeforeValidator(_alert_code)]
SeverityRank = Annotated[int, BeforeValidator(_severity_rank)]


class _Settings(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class DayCount(_Settings):
    """A period counted in calendar days or in working days (Dover 6.34 counts working days)."""

    days: Annotated[int, _positive_int(MAX_DAYS)]
    kind: Literal["calendar", "working"]


class ReviewRules(_Settings):
    """When alerts are reviewed (see `cautionflow.domain.deadlines` for how they combine)."""

    interval_months: Months  # months from the last review (or the start) to the next
    interval_months_by_code: dict[AlertCodeName, Months] = Field(default_factory=dict)  # Karbon 8.1
    window_opens_days_before: Days = 30  # reviews can be worked this many days before they fall due
    on_non_working_day: Literal["stay", "next_working_day"] = "stay"  # Dover 6.21 moves them

    def interval_for(self, code: str) -> int:
        return self.interval_months_by_code.get(code, self.interval_months)


class DurationRules(_Settings):
    """How long an alert lasts; no default means open-ended until a review removes it."""

    default_months: Months | None = None
    min_months: Months | None = None
    max_months: Months | None = None

    @model_validator(mode="after")
    def _consistent(self) -> DurationRules:
        low, high, default = self.min_months, self.max_months, self.default_months
        if low is not None and high is not None and low > high:
            raise PydanticCustomError("duration", f"min_months ({low}) is more than max_months ({high})")
        too_low = default is not None and low is not None and default < low
        too_high = default is not None and high is not None and default > high
        if too_low or too_high:
            raise PydanticCustomError(
                "duration", f"default_months ({default}) must be between min_months and max_months")
        return self


class AppealRules(_Settings):
    """What a resident can do about a decision, and the letters say it: `appeal` it (Hexagon 5.3, Teign 9,
    Wandle 3.10, Dover 6.34), within `lodge_within` where the policy sets a window, or, where the policy
    names no appeal, only `complaint` through the complaints process (Karbon 12.4). A complaint has no
    appeal window, answer deadline or final outcome, so a complaint profile may set none of them."""

    remedy: Literal["appeal", "complaint"] = "appeal"  # first: the check below reads it
    lodge_within: DayCount | None = None  # from notified_on; None: no time limit set
    answer_within: DayCount | None = None  # from appeal_received_on; None: no deadline set
    final: StrictBool = False  # the appeal outcome letter says there is no further appeal

    @field_validator("lodge_within", "answer_within", "final")
    @classmethod
    def _no_appeal_under_a_complaint(cls, value: Any, info: ValidationInfo) -> Any:
        # An invalid remedy is reported on its own; a letter must never offer an appeal the policy lacks.
        if info.data.get("remedy") == "complaint" and value is not None and value is not False:
            raise PydanticCustomError(
                "complaint_remedy",
                "must not be set when appeal.remedy is complaint (the policy names no appeal, only its "
                "complaints process)",
            )
        return value


class LetterRules(_Settings):
    """For the letters feature: the profile holds the policy's choices, the letters code reads them."""

    lookback_days: PositiveInt = 60
    channels: Literal["preferred", "post_and_email"] = "preferred"  # Dover sends both where possible
    agency_information_no_letter: StrictBool = False  # Teign 4: no letter when an agency told us
    survey_exclusion_notice: StrictBool = False  # Wandle 5.0: say they are left out of surveys


class PolicyProfile(_Settings):
    """One landlord's rules. `name` comes from the file name, never from the file."""

    name: str
    landlord: str = ""
    calendar: Nation = "england-and-wales"
    # Hexagon 5.6: alerts from before this date are never contacted; None: no such rule
    policy_start: Annotated[date | None, BeforeValidator(_date_value)] = None
    review: ReviewRules
    duration: DurationRules = DurationRules()
    appeal: AppealRules = AppealRules()
    decision_letter_codes: frozenset[AlertCodeName] = SERVICE_CHANGING_CODES
    letters: LetterRules = LetterRules()
    # A code's severity rank where the landlord ranks it otherwise than `cautionflow.domain.codes`
    # (e.g. {DOG: 5}): orders the digests' "Highest risk" block and what counts as an escalation.
    severity: dict[AlertCodeName, SeverityRank] = Field(default_factory=dict)
    # None means the landlord has not decided; there is no safe legal default to assume
    retention_months_after_end: PositiveInt | None = None


_TYPE_MESSAGES = {
    "missing": "is required",
    "extra_forbidden": "is not a known setting (check the spelling)",
    "model_type": "must be a mapping of settings",
    "model_attributes_type": "must be a mapping of settings",
    "dict_type": "must be a mapping",
    "frozen_set_type": "must be a list of alert codes",
    "string_type": "must be text",
}


def _describe(error: Mapping[str, Any]) -> str:
    parts: list[str] = []
    loc = list(error["loc"])
    if loc and loc[-1] == "[key]":  # a bad mapping key: the message already shows the key
        loc = loc[:-2]
    for part in loc:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    kind = error["type"]
    if kind in _TYPE_MESSAGES:
        message = _TYPE_MESSAGES[kind]
    elif kind == "literal_error":
        message = f"must be one of {error['ctx']['expected']}"
    else:
        message = error["msg"]
    field = "".join(parts)
    return f"{field}: {message}" if field else message


def parse_profile(data: Any, *, name: str, source: str) -> PolicyProfile:
    """Validate already-parsed YAML; `source` names the file in error messages."""
    if not isinstance(data, Mapping):
        raise ProfileError(f"profile {source!r}: must be a mapping of settings")
    if "name" in data:
        raise ProfileError(f"profile {source!r}: name: is taken from the file name; remove it")
    try:
        return PolicyProfile.model_validate({**data, "name": name})
    except ValidationError as exc:
        problems = "; ".join(_describe(e) for e in exc.errors())
        raise ProfileError(f"profile {source!r}: {problems}") from None
