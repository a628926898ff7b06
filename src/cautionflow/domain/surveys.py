"""Who is left out of feedback surveys (Wandle 5.0): one rule, for the list and for the letters.

Wandle 5.0: "Residents with restricted contact will be excluded from participating in feedback
surveys until the contact restriction has been reviewed and lifted. Residents will be advised of
this approach when they are notified of the contact restriction in place." The survey team's list
(`services/governance_reports.py`, its SQL in `adapters/governance_reads.py`) and the sentence in
the resident's letter (`domain/letters.py`) both come from here, so a letter never tells a resident
they are left out of surveys while the list leaves them in, nor the other way round.

An alert puts its tenancy on the list when it is active (the restriction has not been lifted), its
code restricts contact (`AlertCode.restricts_contact`: CM and SPOC, the restrictions of Wandle 3.3)
and it has a `tenancy_ref` (the survey team excludes tenancies; an alert without one has nothing to
exclude).
"""

from __future__ import annotations

from typing import Any

from cautionflow.domain.codes import ALERT_CODES
from cautionflow.frames import text

# Upper case, sorted: the register stores codes upper case, and the list's SQL filters on these.
SURVEY_EXCLUSION_CODES: tuple[str, ...] = tuple(sorted(c.code for c in ALERT_CODES.values() if c.restricts_contact))


def restricts_contact(alert_code: Any) -> bool:
    """The code is a contact restriction (Wandle 3.3), whatever its case or surrounding spaces."""
    return text(alert_code).strip().upper() in SURVEY_EXCLUSION_CODES


def on_survey_exclusion_list(*, alert_code: Any, tenancy_ref: Any, active: bool) -> bool:
    """Whether this alert puts its tenancy on the feedback survey exclusion list (Wandle 5.0)."""
    return active and bool(text(tenancy_ref).strip()) and restricts_contact(alert_code)
