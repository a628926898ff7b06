"""Which register changes are urgent, for whom, and when they count as told (domain/urgent.py).

Dover 6.23: a threatened person is warned at once; Karbon 6.3 and Hexagon 1.2: staff check for
warnings before every visit. So an alert of an urgent code added, reopened or escalated reaches the
contractors of its area and the call handlers within the run that finds it; minimum disclosure
(Karbon 7.1-7.3, Dover 6.31) still decides who may see it. Synthetic data only.
"""

from __future__ import annotations

import datetime as dt
import json
from dataclasses import dataclass

from cautionflow.domain import urgent as u

CODES = ("DNV", "WPN", "AGY")
SYNCED = dt.datetime(2026, 11, 23, 10, 15, tzinfo=dt.UTC)
NOW = dt.datetime(2026, 11, 23, 10, 20, tzinfo=dt.UTC)


@dataclass(frozen=True)
class Who:
    name: str
    email: str
    role: str
    areas: tuple[str, ...] = ()
    schedule: str = "daily"

    def on(self, day: dt.date) -> bool:
        return True


ACME = Who("Acme Repairs", "rota@acme.example", "contractor", ("NORTH",))
SOUTHSIDE = Who("Southside Gas", "bookings@southside.example", "contractor", ("SOUTH",))
NIGHT = Who("Night Desk", "ooh@callcentre.example", "out_of_hours")
OFFICERS = Who("Housing Officers", "officers@example.org", "officer")
EVERYONE = (ACME, SOUTHSIDE, NIGHT, OFFICERS)


def alert(alert_id="N9", code="WPN", area="NORTH", state="active"):
    return {"alert_id": alert_id, "alert_code": code, "area": area, "register_state": state,
            "address": "3 Larkspur Close", "postcode": "EW1 2AB"}


def change(id=1, alert_id="N9", kind="inserted", fields=None, finished=SYNCED, initial=False):
    return u.HistoryChange(id, alert_id, kind, fields or {}, finished, initial)


def windows(start=NOW - dt.timedelta(hours=24)):
    return {(r.name, r.email): start for r in EVERYONE}


def plan(history, alerts, *, start=None, earlier=()):
    return u.plan_notices(EVERYONE, history, {a["alert_id"]: a for a in alerts}, urgent_codes=CODES,
                          windows=windows(start) if start else windows(), earlier=earlier)


def told_to(result):
    return {n.recipient.name: [(c.alert_id, c.what) for c in n.changes] for n in result.notices}


def test_an_urgent_code_added_in_north_goes_to_the_north_contractor_and_the_call_handlers_only():
    """Dover 6.23, Karbon 7.1-7.3: the area's contractor and out-of-hours; never another area, never officers."""
    result = plan([change()], [alert()])
    assert told_to(result) == {"Acme Repairs": [("N9", "added")], "Night Desk": [("N9", "added")]}
    assert result.found == 1


def test_a_code_that_is_not_urgent_goes_to_nobody():
    assert plan([change()], [alert(code="NFO")]).notices == ()


def test_an_escalation_to_an_urgent_code_is_urgent_and_a_de_escalation_is_not():
    up = plan([change(kind="updated", fields={"alert_code": ["VIP", "DNV"]})], [alert(code="DNV")])
    assert told_to(up)["Acme Repairs"] == [("N9", "escalated")]
    assert up.notices[0].changes[0].old_code == "VIP"
    down = plan([change(kind="updated", fields={"alert_code": ["DNV", "VIP"]})], [alert(code="VIP")])
    assert down.notices == ()


def test_escalation_by_rank():
    assert u.is_escalation("VIP", "DNV", CODES)
    assert u.is_escalation("DOG", "WPN", CODES)
    assert not u.is_escalation("DNV", "VIP", CODES)  # de-escalation
    assert not u.is_escalation("WPN", "DNV", CODES)  # urgent to urgent of the same rank: no news
    assert u.is_escalation("HAZ", "DOG", ("DOG",))  # a landlord's own urgent code, of a higher rank
    assert not u.is_escalation("VIP", "VIP", CODES)


def test_the_profiles_severity_decides_an_escalation_between_urgent_codes_as_the_digests_do():
    """Issue 15 "Severity": a landlord's profile may rank a code otherwise (`severity: {DOG: 5}`), and
    the urgent notices rank by it as the digests do (`codes.severity`). Where visit in pairs and a
    dangerous animal are both urgent codes, VIP -> DOG is no news at cautionflow's ranks (both 4) and
    an escalation, told at once, where DOG ranks 5 (Dover 6.23: a threatened person warned at once)."""
    codes = (*CODES, "VIP", "DOG")
    assert not u.is_escalation("VIP", "DOG", codes)
    assert u.is_escalation("VIP", "DOG", codes, {"DOG": 5})
    history = [change(kind="updated", fields={"alert_code": ["VIP", "DOG"]})]
    alerts = {"N9": alert(code="DOG")}
    default = u.plan_notices(EVERYONE, history, alerts, urgent_codes=codes, windows=windows(), earlier=())
    assert default.notices == ()
    ranked = u.plan_notices(EVERYONE, history, alerts, urgent_codes=codes, windows=windows(), earlier=(),
                            severity_overrides={"DOG": 5})
    assert told_to(ranked) == {"Acme Repairs": [("N9", "escalated")], "Night Desk": [("N9", "escalated")]}
    assert ranked.notices[0].changes[0].old_code == "VIP"
    # The override lowers as well as raises: DNV ranked 4 makes DOG (5) -> DNV a de-escalation.
    assert not u.is_escalation("DOG", "DNV", codes, {"DOG": 5, "DNV": 4})


def test_an_escalation_later_undone_is_not_told():
    """The notice tells of the alert as it is now: WPN then back to VIP is no urgent warning."""
    history = [change(1, kind="updated", fields={"alert_code": ["VIP", "WPN"]}),
               change(2, kind="updated", fields={"alert_code": ["WPN", "VIP"]})]
    assert plan(history, [alert(code="VIP")]).notices == ()


def test_a_reopened_urgent_alert_is_urgent_and_an_ended_one_is_not():
    assert told_to(plan([change(kind="reopened", fields={"register_state": ["ended", "active"]})], [alert()])) \
        == {"Acme Repairs": [("N9", "reopened")], "Night Desk": [("N9", "reopened")]}
    assert plan([change(kind="inserted")], [alert(state="ended")]).notices == ()


def test_an_urgent_alert_moved_into_a_contractors_area_is_news_to_that_contractor_only():
    """Karbon 7.1: a contractor is told of the alerts in its areas; a call handler already knew."""
    moved = change(kind="updated", fields={"area": ["SOUTH", "NORTH"]})
    assert told_to(plan([moved], [alert(area="NORTH")])) == {"Acme Repairs": [("N9", "moved_in")]}


def test_the_registers_first_sync_is_never_urgent():
    assert plan([change(initial=True)], [alert()]).notices == ()


def test_changes_before_the_window_were_in_the_digest():
    digest_sent = SYNCED + dt.timedelta(minutes=1, microseconds=500)
    assert u.window_start(digest_sent, NOW) == digest_sent.replace(microsecond=0)
    assert u.window_start(None, NOW) == NOW - dt.timedelta(hours=24)
    assert plan([change()], [alert()], start=u.window_start(digest_sent, NOW)).notices == ()
    # A sync finishing in the same second as the digest went is told rather than missed.
    assert plan([change()], [alert()], start=u.window_start(SYNCED.replace(microsecond=900), NOW)).notices


def earlier_notice(who=ACME, code="WPN", at=SYNCED + dt.timedelta(minutes=1)):
    return u.EarlierNotice(who.name, who.email, at, {"N9": code})


def test_a_change_an_earlier_notice_told_is_not_told_again():
    result = plan([change()], [alert()], earlier=[earlier_notice()])
    assert told_to(result) == {"Night Desk": [("N9", "added")]}
    assert result.already_told == 1


def test_an_earlier_notice_of_another_code_or_from_before_the_change_does_not_count():
    history = [change(2, kind="updated", fields={"alert_code": ["VIP", "DNV"]})]
    assert told_to(plan(history, [alert(code="DNV")], earlier=[earlier_notice(code="WPN")]))["Acme Repairs"]
    before = earlier_notice(at=SYNCED - dt.timedelta(days=2))
    assert told_to(plan([change()], [alert()], earlier=[before]))["Acme Repairs"]


def test_the_key_is_the_recipient_and_the_changes_told_whatever_the_order_or_day():
    a = u.UrgentChange("N9", 1, "added", "WPN", SYNCED)
    b = u.UrgentChange("N8", 2, "added", "DNV", SYNCED)
    assert u.notice_key("Acme", "Rota@Acme.example", [a, b]) == u.notice_key("Acme", "rota@acme.example", [b, a])
    assert u.notice_key("Acme", "rota@acme.example", [a]) != u.notice_key("Acme", "rota@acme.example", [a, b])
    assert u.notice_key("Acme", "rota@acme.example", [a]) != u.notice_key("Night", "rota@acme.example", [a])
    later = u.UrgentChange("N9", 3, "escalated", "DNV", SYNCED)
    assert u.notice_key("Acme", "rota@acme.example", [a]) != u.notice_key("Acme", "rota@acme.example", [later])


def test_each_alert_once_most_serious_first_and_what_the_log_keeps():
    history = [change(1, "N1", fields=None), change(2, "N2"), change(3, "N1", "updated", {"address": ["a", "b"]})]
    alerts = {"N1": alert("N1", code="DOG"), "N2": alert("N2", code="DNV")}  # a landlord that makes DOG urgent
    result = u.plan_notices([ACME], history, alerts, urgent_codes=("DOG", "DNV"), windows=windows(), earlier=())
    # N1 once, by its latest urgent change (the address change is not one); DNV ranks above DOG.
    assert [(c.alert_id, c.history_id) for c in result.notices[0].changes] == [("N2", 2), ("N1", 1)]
    # A profile ranking DOG with DNV: of one rank, they come in the list's order (same place: by id).
    ranked = u.plan_notices([ACME], history, alerts, urgent_codes=("DOG", "DNV"), windows=windows(), earlier=(),
                            severity_overrides={"DOG": 5})
    assert [c.alert_id for c in ranked.notices[0].changes] == ["N1", "N2"]
    assert json.loads(u.shown("WPN")) == {"alert_code": "WPN"}
    assert u.shown_code(u.shown("WPN")) == "WPN" and u.shown_code(None) is None and u.shown_code("{") is None


def test_the_subject_names_a_place_never_a_person():
    assert u.notice_subject("Example Homes", "3 Larkspur Close, EW1 2AB", 1) == \
        "URGENT: new warning at 3 Larkspur Close, EW1 2AB (Example Homes)"
    assert u.notice_subject("Example Homes", "x", 3) == "URGENT: 3 new warnings (Example Homes)"
    assert u.what_happened(u.UrgentChange("N9", 1, "escalated", "DNV", SYNCED, "VIP")) == \
        "Do not visit: escalated from VIP"
