"""cautionflow's canonical alert codes and the plain-English action each one asks for.

Each landlord's source query maps its own codes onto these (foundation issue, "The source contract").
The action text is what contractors and call handlers read, so it says what to do, never why.

Each code also has a **severity rank**, 1 (lowest) to 5 (highest), which orders the digests' "Highest
risk" block and marks an escalation (an alert whose code changed to one of a higher rank):

- 5: a risk to life or of violence: do not visit (DNV), weapons (WPN), risk reported by an agency (AGY);
- 4: who may attend: visit in pairs (VIP), a dangerous animal (DOG); an unknown code ranks here too,
  like the visit in pairs its action asks for (safety first: never below what it tells staff to do);
- 3: who may attend, by sex or alone (NFO, NMO, NLF, NLM), hazards at the property (HAZ);
- 2: where or by whom to meet (NFV, NMV, OFF);
- 1: how to make contact (SPOC, CM).

A policy profile may override a code's rank (`severity: {DOG: 5}`, `cautionflow.domain.policy`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class AlertCode:
    code: str
    title: str
    required_action: str
    # Wandle 3.3: limits on how the resident may contact us or be contacted (number or medium of
    # contacts, a named employee); such residents are left out of feedback surveys (5.0).
    restricts_contact: bool = False
    severity: int = 1  # 1 (lowest) to 5 (highest): see the module's docstring


_CODES = (
    AlertCode("VIP", "Visit in pairs", "Visit in pairs: two people must attend, never one alone.", severity=4),
    AlertCode("NFO", "No female officers or operatives", "No female officers or operatives to attend.", severity=3),
    AlertCode("NMO", "No male officers or operatives", "No male officers or operatives to attend.", severity=3),
    AlertCode("NLF", "No lone female staff", "No female member of staff to attend alone.", severity=3),
    AlertCode("NLM", "No lone male staff", "No male member of staff to attend alone.", severity=3),
    AlertCode("NFV", "No female visitors", "Do not send female visitors.", severity=2),
    AlertCode("NMV", "No male visitors", "Do not send male visitors.", severity=2),
    AlertCode("DOG", "Dangerous animal", "Dangerous animal: ask for it to be secured before entering; do not enter if it is loose.", severity=4),
    AlertCode("WPN", "Weapons", "Weapons may be present: visit in pairs and follow the lone-working procedure.", severity=5),
    AlertCode("HAZ", "Hazards at the property", "Hazards at the property (such as sharps or drug paraphernalia): wear protective equipment and take care.", severity=3),
    AlertCode("SPOC", "Single point of contact", "Single point of contact: arrange all contact through the named officer.", restricts_contact=True, severity=1),
    AlertCode("CM", "Contact restrictions", "Contact restrictions apply: follow the agreed contact arrangements; no unplanned contact.", restricts_contact=True, severity=1),
    AlertCode("DNV", "Do not visit", "Do not visit: no home visits; emergency attendance only with police or manager approval.", severity=5),
    AlertCode("AGY", "Agency-reported risk", "Risk reported by an agency: visit in pairs and check with the office before attending.", severity=5),
    AlertCode("OFF", "Office meetings only", "Office meetings only: do not meet at the home except for emergency repairs.", severity=2),
)

ALERT_CODES: dict[str, AlertCode] = {c.code: c for c in _CODES}

UNKNOWN_CODE_ACTION = (
    "Unrecognised alert: treat as visit in pairs and check with the office before attending."
)


def required_action(code: str | None) -> str:
    """The action for a code; an unknown code still warns (safety first)."""
    known = ALERT_CODES.get((code or "").strip().upper())
    return known.required_action if known else UNKNOWN_CODE_ACTION


MIN_SEVERITY, MAX_SEVERITY = 1, 5
# An unrecognised code ranks with visit in pairs, the action it is given (safety first).
UNKNOWN_CODE_SEVERITY = 4


def severity(code: str | None, overrides: Mapping[str, int] | None = None) -> int:
    """A code's severity rank, 1 to 5: the profile's override where it sets one, else the code's own."""
    key = (code or "").strip().upper()
    if overrides and key in overrides:
        return overrides[key]
    known = ALERT_CODES.get(key)
    return known.severity if known else UNKNOWN_CODE_SEVERITY
