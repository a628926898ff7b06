"""cautionflow's canonical alert codes and the plain-English action each one asks for.

Each landlord's source query maps its own codes onto these (foundation issue, "The source contract").
The action text is what contractors and call handlers read, so it says what to do, never why.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AlertCode:
    code: str
    title: str
    required_action: str
    # Wandle 3.3: limits on how the resident may contact us or be contacted (number or medium of
    # contacts, a named employee); such residents are left out of feedback surveys (5.0).
    restricts_contact: bool = False


_CODES = (
    AlertCode("VIP", "Visit in pairs", "Visit in pairs: two people must attend, never one alone."),
    AlertCode("NFO", "No female officers or operatives", "No female officers or operatives to attend."),
    AlertCode("NMO", "No male officers or operatives", "No male officers or operatives to attend."),
    AlertCode("NLF", "No lone female staff", "No female member of staff to attend alone."),
    AlertCode("NLM", "No lone male staff", "No male member of staff to attend alone."),
    AlertCode("NFV", "No female visitors", "Do not send female visitors."),
    AlertCode("NMV", "No male visitors", "Do not send male visitors."),
    AlertCode("DOG", "Dangerous animal", "Dangerous animal: ask for it to be secured before entering; do not enter if it is loose."),
    AlertCode("WPN", "Weapons", "Weapons may be present: visit in pairs and follow the lone-working procedure."),
    AlertCode("HAZ", "Hazards at the property", "Hazards at the property (such as sharps or drug paraphernalia): wear protective equipment and take care."),
    AlertCode("SPOC", "Single point of contact", "Single point of contact: arrange all contact through the named officer.", restricts_contact=True),
    AlertCode("CM", "Contact restrictions", "Contact restrictions apply: follow the agreed contact arrangements; no unplanned contact.", restricts_contact=True),
    AlertCode("DNV", "Do not visit", "Do not visit: no home visits; emergency attendance only with police or manager approval."),
    AlertCode("AGY", "Agency-reported risk", "Risk reported by an agency: visit in pairs and check with the office before attending."),
    AlertCode("OFF", "Office meetings only", "Office meetings only: do not meet at the home except for emergency repairs."),
)

ALERT_CODES: dict[str, AlertCode] = {c.code: c for c in _CODES}

UNKNOWN_CODE_ACTION = (
    "Unrecognised alert: treat as visit in pairs and check with the office before attending."
)


def required_action(code: str | None) -> str:
    """The action for a code; an unknown code still warns (safety first)."""
    known = ALERT_CODES.get((code or "").strip().upper())
    return known.required_action if known else UNKNOWN_CODE_ACTION
