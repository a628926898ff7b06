"""Which resident letters are owed today: pure rules over the register's alerts and deadlines.

Letters are decided by the alert's recorded state (a decision, a review, an appeal outcome, each
with its date), never by when cautionflow first saw the alert, so a letter missed on one day is
still owed the next, within the profile's look-back window. Each letter has a deterministic key
(alert, kind, decision date): the queue holds one letter per key, ever.

Policy clauses: Teign 4 (agency information, no letter), 7 (which codes need a decision letter;
default is to tell), 9 (appeal within 28 days); Hexagon 5.3 (reason, length, appeal; with Karbon 5.2
and Teign Appendix E, the reason: a decision letter without `resident_reason` is held), 5.4-5.5
(exceptional non-notification), 5.6 (alerts from before the policy are never contacted), 5.11
(review outcomes answered); Wandle 3.6 (emergency contact always possible), 3.9 (review outcome),
3.10 (right to appeal), 5.0 (survey exclusion, for the alerts on the survey list only:
`cautionflow.domain.surveys`); Dover 6.12/6.15/6.19 (post and where possible email), 6.21 (a review
moved off a weekend or bank holiday is told), 6.33 (not informing), 6.34-6.35 (appeal window,
outcome final); Karbon 4.2 (not advising), 12 (language and accessibility), 12.4 (the complaints
process: its profile's `appeal.remedy` is `complaint`, so no appeal is offered).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cautionflow.domain.calendar import WorkingCalendar
from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.deadlines import deadlines_for_alert, read_date
from cautionflow.domain.policy import DayCount, PolicyProfile
from cautionflow.domain.surveys import on_survey_exclusion_list
from cautionflow.frames import text

KINDS: tuple[str, ...] = ("alert_added", "review_kept", "review_removed", "appeal_upheld", "appeal_dismissed")
AGENCY_SOURCES = frozenset({"police", "local_authority", "social_services"})  # Teign 4
ENGLISH = frozenset({"", "en", "eng", "english"})

# Why no letter was queued for an owed event (counted, never silent).
ADDRESS_ONLY = "address_only"  # no person to write to
NOT_TO_BE_NOTIFIED = "not_to_be_notified"  # Hexagon 5.4, Teign 7, Dover 6.33, Karbon 4.2
AGENCY_INFORMATION = "agency_information"  # Teign 4
BEFORE_POLICY = "before_policy"  # Hexagon 5.6
CODE_NEEDS_NO_LETTER = "code_needs_no_letter"  # Teign 7

# Why a queued letter cannot go yet (visible in the queue, never dropped).
HOLD_TRANSLATION = "translation needed"  # never machine-translated (Karbon 12, Hexagon appendix)
HOLD_NO_ADDRESS = "no postal address"
# Hexagon 5.3 ("explaining the reason for giving the cautionary contact status"), Karbon 5.2 (the
# incidents which led to the inclusion), Teign Appendix E ("Reason for Decision"): every decision
# letter gives the reason the landlord recorded for the resident (`resident_reason`, never the
# internal note). Without one it waits, and the first letters run after a sync brings the reason
# releases it. This hold comes before the others: a translation is of the whole letter, reason
# included, so a letter waits for its reason before it waits for its translation.
HOLD_NO_REASON = "no reason recorded for the resident"
NEEDS_REASON = frozenset(KINDS)  # every decision letter

# What an officer must look at (no letter can settle it): stored in `letter_flags`, one open row per
# (alert, flag) until the register no longer shows it.
FLAG_UNTOLD_OLD = "untold_before_lookback"
FLAG_NO_REASON = "no_notify_reason_missing"  # Hexagon 5.4-5.5: a decision not to tell must be recorded
FLAG_REVIEW_NO_OUTCOME = "review_without_outcome"
FLAG_APPEAL_NO_OUTCOME = "appeal_without_outcome"
FLAG_RESIDENT_REASON = "resident_reason_missing"  # a letter held for HOLD_NO_REASON, while it is held
FLAG_REASONS = {
    FLAG_UNTOLD_OLD: "resident never told; older than the letters' look-back",
    FLAG_NO_REASON: "not to be told, but no reason recorded",
    FLAG_REVIEW_NO_OUTCOME: "review recorded without an outcome: no letter sent",
    FLAG_APPEAL_NO_OUTCOME: "appeal decided without an outcome: no letter sent",
    FLAG_RESIDENT_REASON: "decision letter held: no reason recorded for the resident",
}


@dataclass(frozen=True, slots=True)
class OwedLetter:
    """One letter the policy says the resident is owed, with everything the template needs."""

    key: str
    alert_id: str
    kind: str
    outcome: str
    decision_date: dt.date
    as_of: dt.date
    person_ref: str | None
    person_name: str
    address_lines: tuple[str, ...]
    email: str | None
    channels: tuple[str, ...]  # ("post",), ("email",) or ("post", "email")
    large_print: bool
    language: str
    hold_reason: str | None
    alert_code: str
    code_title: str
    required_action: str
    review_due: dt.date | None
    expires_on: dt.date | None
    appeal_by: dt.date | None  # None: no time limit (or no appeal in this letter)
    appeal_window: str  # "28 days", "20 working days" or ""
    appeal_final: bool
    survey_exclusion: bool  # Wandle 5.0: the alert is (or, in a removal letter, was) on the survey exclusion list
    remedy: str = "appeal"  # the profile's appeal.remedy: "appeal", or "complaint" (Karbon 12.4: no appeal)
    review_moved_from: dt.date | None = None  # Dover 6.21: the review date before it moved off a non-working day
    resident_reason: str = ""  # why, as the resident may be told it (Hexagon 5.3); never the internal note

    @property
    def held(self) -> bool:
        return self.hold_reason is not None


@dataclass(frozen=True, slots=True)
class Suppressed:
    alert_id: str
    kind: str
    reason: str


@dataclass(frozen=True, slots=True)
class OfficerItem:
    """Something an officer must look at: no letter can settle it."""

    alert_id: str
    person_name: str
    reason: str
    code: str = ""

    @classmethod
    def of(cls, alert_id: str, person_name: str, code: str) -> OfficerItem:
        return cls(alert_id, person_name, FLAG_REASONS[code], code)


@dataclass(frozen=True)
class LetterPlan:
    letters: tuple[OwedLetter, ...]
    suppressed: tuple[Suppressed, ...]
    officers: tuple[OfficerItem, ...]
    suppressed_by_reason: dict[str, int] = field(default_factory=dict)


def letter_key(alert_id: str, kind: str, decision_date: dt.date) -> str:
    """One letter per (alert, kind, decision date), ever: the same inputs give the same key."""
    text = "\n".join(("letter", str(alert_id), kind, decision_date.isoformat()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def period_after(start: dt.date, period: DayCount | None, calendar: WorkingCalendar) -> dt.date | None:
    """The deadline engine's rule (Teign 9, Dover 6.34): N calendar days, or the Nth working day after."""
    if period is None:
        return None
    if period.kind == "working":
        return calendar.add_working_days(start, period.days)
    return start + dt.timedelta(days=period.days)


def describe_period(period: DayCount | None) -> str:
    if period is None:
        return ""
    unit = "working day" if period.kind == "working" else "day"
    return f"{period.days} {unit}{'' if period.days == 1 else 's'}"


def is_english(language: Any) -> bool:
    return text(language).strip().lower() in ENGLISH


def address_lines(person_name: str, address: Any, postcode: Any) -> tuple[str, ...]:
    """The envelope window's lines: name, the address split at commas, the postcode."""
    parts = [p.strip() for p in text(address).replace("\n", ",").split(",") if p.strip()]
    code = text(postcode).strip()
    if code and code.upper() not in (p.upper() for p in parts):
        parts.append(code)
    return (person_name, *parts) if parts else ()


def channels_for(profile: PolicyProfile, preferred: Any, email: Any) -> tuple[str, ...]:
    """Dover 6.12/6.15/6.19: post and, where possible, email; otherwise the resident's choice."""
    has_email = bool(text(email).strip())
    if profile.letters.channels == "post_and_email":
        return ("post", "email") if has_email else ("post",)
    if text(preferred).strip().lower() == "email" and has_email:
        return ("email",)
    return ("post",)


def _day(value: Any) -> dt.date | None:
    day, _problem = read_date(value)
    return day


def _text(value: Any) -> str:
    return text(value).strip()


def _flag(value: Any, default: int) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def owed_letters(alerts: Iterable[Mapping[str, Any]], profile: PolicyProfile, as_of: dt.date) -> LetterPlan:
    """The letters owed as of `as_of` for every alert (active and ended) with its stored deadlines.

    Each mapping has the register's source columns plus `register_state`, `review_due` and
    `expires_on` (from `alert_deadlines`; None for ended alerts)."""
    calendar = WorkingCalendar(profile.calendar)
    window_start = as_of - dt.timedelta(days=profile.letters.lookback_days)
    unmoved = _keeping_review_dates(profile)  # Dover 6.21; None when the profile never moves a review date

    def in_window(day: dt.date | None) -> bool:
        return day is not None and window_start <= day <= as_of

    letters: dict[str, OwedLetter] = {}
    suppressed: list[Suppressed] = []
    officers: list[OfficerItem] = []

    for alert in alerts:
        alert_id = _text(alert.get("alert_id"))
        code = _text(alert.get("alert_code")).upper()
        state = _text(alert.get("register_state")) or _text(alert.get("status")) or "active"
        name = _text(alert.get("person_name"))
        effective_from = _day(alert.get("effective_from"))
        notified_on = _day(alert.get("notified_on"))
        reviewed_on = _day(alert.get("last_reviewed_on"))
        review_outcome = _text(alert.get("review_outcome")).lower()
        decided_on = _day(alert.get("appeal_decided_on"))
        appeal_outcome = _text(alert.get("appeal_outcome")).lower()
        letter_code = code in profile.decision_letter_codes

        events: list[tuple[str, str, dt.date]] = []
        if state == "active" and notified_on is None and letter_code:
            if in_window(effective_from):
                events.append(("alert_added", "added", effective_from))  # type: ignore[arg-type]
            elif effective_from is not None and effective_from < window_start:
                old = _suppression(alert, profile, effective_from)
                if old is None:
                    officers.append(OfficerItem.of(alert_id, name, FLAG_UNTOLD_OLD))
                elif (old == NOT_TO_BE_NOTIFIED and not _text(alert.get("no_notify_reason"))
                      and not _before_policy(profile, effective_from)):
                    # Hexagon 5.5: however old, the decision not to tell must be recorded.
                    officers.append(OfficerItem.of(alert_id, name, FLAG_NO_REASON))
        elif state == "active" and notified_on is None and in_window(effective_from) and code in ALERT_CODES:
            suppressed.append(Suppressed(alert_id, "alert_added", CODE_NEEDS_NO_LETTER))  # Teign 7
        # Review and appeal letters answer alerts the resident knows of (or should have been told of).
        answers = letter_code or notified_on is not None
        if in_window(reviewed_on) and answers:
            if review_outcome in ("retained", "removed"):
                kind = "review_kept" if review_outcome == "retained" else "review_removed"
                events.append((kind, review_outcome, reviewed_on))  # type: ignore[arg-type]
            else:
                officers.append(OfficerItem.of(alert_id, name, FLAG_REVIEW_NO_OUTCOME))
        if in_window(decided_on) and answers:
            if appeal_outcome in ("upheld", "dismissed"):
                events.append((f"appeal_{appeal_outcome}", appeal_outcome, decided_on))  # type: ignore[arg-type]
            else:
                officers.append(OfficerItem.of(alert_id, name, FLAG_APPEAL_NO_OUTCOME))
        if not events:
            continue

        reason = _suppression(alert, profile, effective_from)
        if reason is not None:
            suppressed.extend(Suppressed(alert_id, kind, reason) for kind, _, _ in events)
            if reason == NOT_TO_BE_NOTIFIED and not _text(alert.get("no_notify_reason")):
                # Hexagon 5.5: a decision not to tell must be recorded (it is relied on for a DSAR).
                officers.append(OfficerItem.of(alert_id, name, FLAG_NO_REASON))
            continue

        for kind, _outcome, decision_date in events:
            letter = _letter(alert, kind, decision_date, profile, as_of, calendar=calendar, unmoved=unmoved)
            letters.setdefault(letter.key, letter)

    counts = Counter(s.reason for s in suppressed)
    flagged = tuple({(o.alert_id, o.code): o for o in officers}.values())  # one per (alert, flag)
    return LetterPlan(tuple(letters.values()), tuple(suppressed), flagged, dict(sorted(counts.items())))


OUTCOMES = {"alert_added": "added", "review_kept": "retained", "review_removed": "removed",
            "appeal_upheld": "upheld", "appeal_dismissed": "dismissed"}
APPEALABLE_KINDS = frozenset({"alert_added", "review_kept"})  # the letters that tell of a decision to appeal


def letter_for(
    alert: Mapping[str, Any], kind: str, decision_date: dt.date, profile: PolicyProfile, as_of: dt.date,
) -> OwedLetter:
    """The letter (alert, kind, decision date) dated `as_of`, built as `owed_letters` builds it, from the
    alert's register row (with its stored deadlines). A letter is dated the day it leaves:
    approving or dispatching it on a later day than it was queued builds it again for that day, so its
    date and its appeal deadline (Teign 9: 28 days; Dover 6.34: working days) count from the day the
    resident is told. Whether the letter is owed is `owed_letters`' question, not this one's."""
    calendar = WorkingCalendar(profile.calendar)
    return _letter(alert, kind, decision_date, profile, as_of, calendar=calendar, unmoved=_keeping_review_dates(profile))


def _letter(
    alert: Mapping[str, Any], kind: str, decision_date: dt.date, profile: PolicyProfile, as_of: dt.date, *,
    calendar: WorkingCalendar, unmoved: PolicyProfile | None,
) -> OwedLetter:
    """One letter dated `as_of`: the content, channels and holds of (alert, kind, decision date)."""
    alert_id = _text(alert.get("alert_id"))
    code = _text(alert.get("alert_code")).upper()
    state = _text(alert.get("register_state")) or _text(alert.get("status")) or "active"
    name = _text(alert.get("person_name"))
    email = _text(alert.get("email")) or None
    channels = channels_for(profile, alert.get("preferred_channel"), email)
    lines = address_lines(name, alert.get("address"), alert.get("postcode"))
    language = _text(alert.get("language"))
    resident_reason = _text(alert.get("resident_reason"))
    hold = None
    if kind in NEEDS_REASON and not resident_reason:
        hold = HOLD_NO_REASON
    elif not is_english(language):
        hold = f"{HOLD_TRANSLATION} ({language})"
    elif "post" in channels and not lines:
        hold = HOLD_NO_ADDRESS
    known = ALERT_CODES.get(code)
    # Notified the day the letter is dated (Teign 9; Dover 6.34-6.35 in working days).
    appeal_by = period_after(as_of, profile.appeal.lodge_within, calendar) if kind in APPEALABLE_KINDS else None
    key = letter_key(alert_id, kind, decision_date)
    return OwedLetter(
        key=key, alert_id=alert_id, kind=kind, outcome=OUTCOMES[kind], decision_date=decision_date, as_of=as_of,
        person_ref=_text(alert.get("person_ref")) or None, person_name=name, address_lines=lines,
        email=email, channels=channels, large_print=_flag(alert.get("large_print"), 0) == 1,
        language=language or "en", hold_reason=hold, resident_reason=resident_reason, alert_code=code,
        code_title=known.title if known else "Caution alert",
        required_action=known.required_action if known else "",
        review_due=_day(alert.get("review_due")), expires_on=_day(alert.get("expires_on")),
        appeal_by=appeal_by, appeal_window=describe_period(profile.appeal.lodge_within),
        appeal_final=profile.appeal.final,
        survey_exclusion=_survey_sentence(profile, alert, code, state, kind),
        remedy=profile.appeal.remedy,
        review_moved_from=_review_moved_from(alert, kind, unmoved, calendar, as_of),
    )


REMOVAL_KINDS = frozenset({"review_removed", "appeal_upheld"})
MOVED_REVIEW_KINDS = frozenset({"alert_added", "review_kept"})  # the letters that give the next review date


def _survey_sentence(profile: PolicyProfile, alert: Mapping[str, Any], code: str, state: str, kind: str) -> bool:
    """Wandle 5.0, where the profile tells residents: the letter says they are left out of feedback surveys
    exactly when the survey exclusion list includes the alert (the list's own rule). A letter telling of
    the removal says surveys resume, so it asks whether the alert was on the list until now."""
    if not profile.letters.survey_exclusion_notice:
        return False
    active = state == "active" or kind in REMOVAL_KINDS
    return on_survey_exclusion_list(alert_code=code, tenancy_ref=alert.get("tenancy_ref"), active=active)


def _keeping_review_dates(profile: PolicyProfile) -> PolicyProfile | None:
    """The profile with review dates left where they fall, to find the date a moved one came from;
    None when the profile leaves them anyway."""
    if profile.review.on_non_working_day != "next_working_day":
        return None
    return profile.model_copy(update={"review": profile.review.model_copy(update={"on_non_working_day": "stay"})})


def _review_moved_from(
    alert: Mapping[str, Any], kind: str, unmoved: PolicyProfile | None, calendar: WorkingCalendar, as_of: dt.date,
) -> dt.date | None:
    """Dover 6.21: "There may be occasions where a review is conducted beyond the restriction period, for
    example if the date falls on a bank holiday or weekend. We will inform the resident where this is the
    case." The date the review would fall on, when the profile moved it to the next working day and the
    letter prints that moved date; else None. Worked out by the deadline engine's per-row reference on the
    alert's own dates (no stored column), and only when the printed date agrees, so the letter never
    explains a date it does not give."""
    printed = _day(alert.get("review_due"))
    if unmoved is None or kind not in MOVED_REVIEW_KINDS or printed is None:
        return None
    due = deadlines_for_alert(
        unmoved, calendar, alert_code=alert.get("alert_code"), effective_from=alert.get("effective_from"),
        last_reviewed_on=alert.get("last_reviewed_on"), ends_on=alert.get("ends_on"), as_of=as_of,
    ).review_due
    if due is None or calendar.is_working_day(due) or calendar.next_working_day(due) != printed:
        return None
    return due


def _before_policy(profile: PolicyProfile, effective_from: dt.date | None) -> bool:
    return profile.policy_start is not None and effective_from is not None and effective_from < profile.policy_start


def _suppression(alert: Mapping[str, Any], profile: PolicyProfile, effective_from: dt.date | None) -> str | None:
    """Why the resident must not get this alert's letters, or None. Checked in this order."""
    if _text(alert.get("subject_type")).lower() == "address" or not (
        _text(alert.get("person_ref")) or _text(alert.get("person_name"))
    ):
        return ADDRESS_ONLY
    if _flag(alert.get("notify_resident"), 1) == 0:  # Teign 7: the default is to tell
        return NOT_TO_BE_NOTIFIED
    if profile.letters.agency_information_no_letter and _text(alert.get("source")).lower() in AGENCY_SOURCES:
        return AGENCY_INFORMATION
    if _before_policy(profile, effective_from):
        return BEFORE_POLICY
    return None
