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
