"""Issue 14's acceptance test for the letters themselves: every letter kind under every shipped
profile, rendered as the queue renders it (template body, A4 PDF with the landlord's contact block)
and read back with pypdf: the reason given to the resident (Hexagon 5.3, Karbon 5.2, Teign Appendix
E), the contact block (return address, "Our ref", signature: Dover 6.34, Wandle 3.10), the right
remedy (Teign 9, Wandle 3.10, Dover 6.34, Hexagon 5.3: an appeal; Karbon 12.4: its complaints
process, no appeal) and page numbers on every page. Synthetic data only."""

from __future__ import annotations

import datetime as dt
import io

import pytest

from cautionflow.adapters.templates import renderer
from cautionflow.config import parse_config
from cautionflow.domain.letters import KINDS, letter_for
from cautionflow.profiles import load_profile, shipped_profiles
from cautionflow.services.letters import letter_pdf, letter_reference, render_html
from tests.deployment import APPEALS_EMAIL, CONTACT
from tests.support import AS_OF, REPO, alert_row, pdf_text

REASON = "A dog at your home bit the sleeve of one of our contractors at the front door."
NOTE = "NOTE-SECRET internal only"
DECIDED = dt.date(2026, 11, 20)


def row(kind: str) -> dict:
    """The alert as the letters read it from the register, with what each kind of letter answers."""
    decision = {
        "alert_added": {"effective_from": DECIDED.isoformat()},
        "review_kept": {"effective_from": "2025-11-01", "notified_on": "2025-11-02",
                        "last_reviewed_on": DECIDED.isoformat(), "review_outcome": "retained"},
        "review_removed": {"effective_from": "2025-11-01", "notified_on": "2025-11-02", "status": "ended",
                           "last_reviewed_on": DECIDED.isoformat(), "review_outcome": "removed"},
        "appeal_upheld": {"effective_from": "2026-10-01", "notified_on": "2026-10-02", "status": "ended",
                          "appeal_received_on": "2026-10-05", "appeal_decided_on": DECIDED.isoformat(),
                          "appeal_outcome": "upheld"},
        "appeal_dismissed": {"effective_from": "2026-10-01", "notified_on": "2026-10-02",
                             "appeal_received_on": "2026-10-05", "appeal_decided_on": DECIDED.isoformat(),
                             "appeal_outcome": "dismissed"},
    }[kind]
    base = alert_row(alert_id=f"CX-{kind}", alert_code="DOG", person_ref="P1", person_name="Robin Example",
                     address="7 Bay View, Eastwick", postcode="QE2 5JJ", resident_reason=REASON, note=NOTE, **decision)
    state = "ended" if base["status"] == "ended" else "active"
    return {**base, "register_state": state, "review_due": "2027-11-20", "expires_on": "2027-11-20"}


def config(policy: str):
    return parse_config({
        "organisation": "Example Homes", "policy": policy, "register_url": "sqlite://", "source": {"url": "sqlite://"},
        "letters": {"output_dir": "var/letters", "contact": CONTACT},
    }, home=REPO)


@pytest.mark.parametrize("policy", shipped_profiles())
@pytest.mark.parametrize("kind", KINDS)
def test_every_letter_kind_under_every_profile_reads_right_from_its_pdf(policy, kind):
    cfg = config(policy)
    letter = letter_for(row(kind), kind, DECIDED, load_profile(policy), AS_OF)
    assert letter.hold_reason is None, letter.hold_reason
    html, body = render_html(renderer(cfg), letter, organisation=cfg.organisation, contact=cfg.letters.contact)
    pages = pdf_text(io.BytesIO(letter_pdf(letter, body, organisation=cfg.organisation, contact=cfg.letters.contact)))
    text = " ".join(pages.split())

    assert REASON in text  # the reason recorded for the resident
    assert "NOTE-SECRET" not in text and "NOTE-SECRET" not in html  # never the internal note
    reference = letter_reference(letter.alert_id, letter.key)
    assert "Civic Offices" in text and "1 Harbour Way" in text and "Phone: 01632 960123" in text
    assert f"Our ref: {reference}" in text and "23 November 2026" in text  # dated AS_OF, the day it is built for
    assert "Jordan Example" in text and "Tenancy Services Manager" in text
    assert text.count("Page 1 of ") == 1
    count = int(text.split("Page 1 of ", 1)[1].split()[0])
    for page in range(1, count + 1):
        assert f"Ref {reference} · Page {page} of {count}" in text
    if kind in ("alert_added", "review_kept"):  # the letters that tell of a decision the resident may contest
        if policy == "karbon":  # Karbon 12.4: the complaints process is the only route
            # (the contact block's address is the landlord's to name; here it is appeals@...)
            assert "appeal" not in text.replace(APPEALS_EMAIL, "").lower()
            assert "complaints process" in text
        else:
            assert "You have the right to appeal" in text
            assert APPEALS_EMAIL in text
    else:
        assert "must reach us by" not in text  # no appeal deadline in a letter that answers one, or ends one
