"""A long digest read in Gmail (issue 15, "Phone first").

Gmail shows an HTML part only up to about 102 KB and hides the rest behind "[Message clipped] View
entire message", in its phone apps too. A digest lists its flags twice, as cards for a phone and as
a table for a desk, and the operative at the door reads the cards, so each list's cards come
before its table: in a contractor's digest of 150 flags, 25 of the highest rank (as the demo's
contractor has), whose HTML is 121 KB, every card of every list (the highest-risk block's and the
current flags') lies within the first 102 KB: they end 82 KB in. With each table first, the
current flags' cards ended with the HTML, 121 KB in, the last fifty or so past the clip.

Policy: the policies README's "Principles" (a warning about a risk to staff always reaches the
people who visit); Karbon 7.1-7.2, Dover 6.31 and Hexagon 1.2 (contractors are given the alerts in
their areas, to check before a visit). The real pipeline: sync, deadlines, digests on SQLite,
delivered to the test SMTP server, the HTML part read back from the received message."""

from __future__ import annotations

import re

import pytest

from cautionflow.steps import run_digests
from tests.deployment import ACME, FAST, RECIPIENTS, deployment, prepare, text_of
from tests.support import AS_OF, alert_row

GMAIL_CLIPS_AT = 102 * 1000  # bytes of HTML Gmail shows before "View entire message" (about 102 KB)
# One in six of the highest rank (weapons, do not visit), as for the demo's contractor (25 of 150).
CODES = ("VIP", "DOG", "NLF", "HAZ", "NFO", "WPN", "SPOC", "CM", "NMO", "OFF", "NLM", "DNV")


def flags(count: int) -> list[dict]:
    """`count` NORTH flags (the contractor's area), each at its own address, every code in turn."""
    return [
        alert_row(alert_id=f"N{n:03d}", area="NORTH", alert_code=CODES[n % len(CODES)],
                  address=f"{n} Larkspur Close, Westford", postcode=f"EW1 {n % 9 + 1}AB", asset_ref=f"H{n:04d}",
                  person_ref=f"P{n:03d}", tenancy_ref=f"T{n:03d}", person_name=f"Resident{n} Example")
        for n in range(1, count + 1)
    ]


@pytest.mark.parametrize("databases", ["sqlite"], indirect=True)
def test_every_card_of_a_long_digest_is_within_what_gmail_shows(databases, tmp_path, mail_server):
    config = deployment(databases, tmp_path, mail_server.port, recipients=[r for r in RECIPIENTS if r["email"] == ACME])
    prepare(databases, config, flags(150), AS_OF)
    assert run_digests(config, as_of=AS_OF, run_id="long", retry=FAST)["sent"] == 1
    [message] = mail_server.handler.messages_for(ACME)
    html = text_of(message.get_body(("html",)))

    assert len(html.encode()) > GMAIL_CLIPS_AT  # long enough that Gmail clips it
    lists = html.split('<div class="cf-flags">')[1:]
    assert len(lists) == 2  # the highest-risk block, then the current flags
    halves = [part.split('<table class="cf-table"') for part in lists]  # [cards, table] of each list
    cards = [len(re.findall(r'<p class="cf-alert', before)) for before, _ in halves]
    rows = [table.split("</table>")[0].count("<tr>") - 1 for _, table in halves]
    assert cards == rows and rows == [25, 150]  # each list's cards (before its table) are all its flags
    # Every card lies within what Gmail shows: the current list's table is the first thing past them.
    cards_end = html.rindex('<table class="cf-table"')
    assert cards_end < GMAIL_CLIPS_AT
    assert html[:cards_end].count('<p class="cf-alert') == sum(cards)
