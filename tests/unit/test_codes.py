"""The canonical codes and their plain-English actions (foundation issue, the source contract)."""

from cautionflow.domain.codes import ALERT_CODES, UNKNOWN_CODE_ACTION, required_action


def test_the_canonical_codes():
    assert set(ALERT_CODES) == {
        "VIP", "NFO", "NMO", "NLF", "NLM", "NFV", "NMV", "DOG", "WPN", "HAZ", "SPOC", "CM", "DNV", "AGY", "OFF",
    }


def test_every_code_says_what_to_do():
    # Hexagon 5.7: "the most appropriate course of action ... will be added" (visit in pairs, ...).
    assert required_action("vip").startswith("Visit in pairs")
    assert "female" in required_action("NFO").lower()
    assert all(code.required_action.endswith(".") for code in ALERT_CODES.values())


def test_an_unknown_code_still_warns():
    assert required_action("XXZ") == UNKNOWN_CODE_ACTION
    assert required_action(None) == UNKNOWN_CODE_ACTION
    assert "visit in pairs" in UNKNOWN_CODE_ACTION


def test_every_code_has_a_severity_rank_with_the_gravest_at_the_top():
    # Issue 15: "do not visit" and "weapons" must never look like "visit in pairs" (Dover 6.23, Karbon 6.3).
    from cautionflow.domain.codes import MAX_SEVERITY, MIN_SEVERITY, severity

    assert all(MIN_SEVERITY <= code.severity <= MAX_SEVERITY for code in ALERT_CODES.values())
    assert {c for c, code in ALERT_CODES.items() if code.severity == MAX_SEVERITY} == {"DNV", "WPN", "AGY"}
    assert severity("VIP") < severity("WPN") and severity("wpn ") == MAX_SEVERITY
    # An unknown code warns like visit in pairs, so it ranks no lower (safety first).
    assert severity("XXZ") == severity(None) >= severity("VIP")
    assert severity("DOG", {"DOG": 5}) == 5 and severity("VIP", {"DOG": 5}) == severity("VIP")
