"""Each row's markup once per run (adapters/templates.RowFragments, issue 15 "Speed"): a flag in many
recipients' digests is rendered once, and what one recipient is shown never depends on what was
rendered for another before it.

Policy: Karbon 7.1-7.3 and Dover 6.31 (each recipient told only what its role and areas allow, with
its own marks): a shared fragment must never carry one recipient's marks into another's digest.
"""

from __future__ import annotations

import datetime as dt
import email
from email import policy
from types import MappingProxyType

from markupsafe import Markup

from cautionflow.adapters.templates import RowFragments, renderer
from cautionflow.config import Recipient, parse_config
from cautionflow.domain import digests as d
from cautionflow.services.digests import RowCache, render_digest
from tests.support import AS_OF, REPO

ACME = Recipient(name="Acme Repairs", email="rota@acme.example", role="contractor", areas=("NORTH",))
BETA = Recipient(name="Beta Builders", email="b@contractor.example", role="contractor", areas=("NORTH",))
NOW = dt.datetime(2026, 11, 23, 6, tzinfo=dt.UTC)


class Counted:
    """A stand-in macro: writes its arguments, and counts its calls."""

    def __init__(self, markup: bool = True) -> None:
        self.calls = 0
        self.markup = markup

    def __call__(self, row, *args):
        self.calls += 1
        text = f"<{row['address']}|{'|'.join(map(str, args))}>"
        return Markup(text) if self.markup else text


def row(address: str, **extra) -> MappingProxyType:
    return MappingProxyType({"address": address, "postcode": "EW1 2AB", **extra})


def test_a_read_only_row_is_written_once_per_macro_and_arguments():
    fragments, macro = RowFragments(), Counted()
    shared = [row("1 Mill Lane"), row("2 Mill Lane")]

    first = fragments.each_row(macro, shared, 3, [["area", "Area"]])
    again = fragments.each_row(macro, [shared[1], shared[0]], 3, [["area", "Area"]])

    assert macro.calls == 2  # the second list was all remembered
    assert isinstance(first, Markup) and first == "<1 Mill Lane|3|[['area', 'Area']]><2 Mill Lane|3|[['area', 'Area']]>"
    assert again == "<2 Mill Lane|3|[['area', 'Area']]><1 Mill Lane|3|[['area', 'Area']]>"
    # Other list-wide arguments (other columns) are another fragment.
    assert fragments.each_row(macro, shared[:1], 4, [["area", "Area"]]) == "<1 Mill Lane|4|[['area', 'Area']]>"
    assert macro.calls == 3


def test_a_row_that_could_change_is_written_every_time():
    fragments, macro = RowFragments(), Counted(markup=False)
    mutable = {"address": "1 Mill Lane", "postcode": "EW1 2AB"}

    assert fragments.each_row(macro, [mutable]) == "<1 Mill Lane|>"
    mutable["address"] = "1A Mill Lane"
    assert fragments.each_row(macro, [mutable]) == "<1A Mill Lane|>"  # text, not markup, from a text macro
    assert macro.calls == 2


def test_cards_group_consecutive_rows_of_one_address():
    fragments = RowFragments()
    seen = []

    def card(r, first, opens, closes, *args):
        seen.append((r["address"], first["address"], opens, closes))
        return Markup(("</div>" if closes else "") + ("<div>" if opens else "") + r["alert"])

    rows = [row("1 Mill Lane", alert="VIP"), row("1 Mill Lane", alert="DOG"), row("2 Mill Lane", alert="WPN")]
    assert fragments.each_card(card, rows) == "<div>VIPDOG</div><div>WPN"
    assert seen == [("1 Mill Lane", "1 Mill Lane", True, False), ("1 Mill Lane", "1 Mill Lane", False, False),
                    ("2 Mill Lane", "2 Mill Lane", True, True)]
    # The same rows again: remembered. The DOG row alone starts its own card: written again.
    assert fragments.each_card(card, rows) == "<div>VIPDOG</div><div>WPN"
    assert fragments.each_card(card, rows[1:]) == "<div>DOG</div><div>WPN"
    assert len(seen) == 4 and seen[-1] == ("1 Mill Lane", "1 Mill Lane", True, False)


def test_a_digest_composed_after_others_is_the_one_composed_alone():
    # Acme is told of A1 by an urgent notice and has A2 as new; Beta, composed next through the same
    # row cache and templates, must get exactly what it would have been sent on its own.
    config = parse_config({"organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///unused.db",
                           "source": {"url": "sqlite:///unused.db"}, "recipients": []}, home=REPO)
    alerts = [
        {"alert_id": "A1", "alert_code": "WPN", "address": "1 Larkspur Close", "postcode": "EW1 2AB", "area": "NORTH",
         "asset_ref": "H1", "review_due": dt.date(2027, 3, 2)},
        {"alert_id": "A2", "alert_code": "VIP", "address": "1 Larkspur Close", "postcode": "EW1 2AB", "area": "NORTH",
         "asset_ref": "H2", "review_due": dt.date(2027, 3, 2)},
        {"alert_id": "A3", "alert_code": "DOG", "address": "2 Mill Lane", "postcode": "EW1 3CD", "area": "NORTH",
         "asset_ref": "H3", "review_due": dt.date(2026, 1, 2)},
    ]
    rows = d.digest_rows(ACME, alerts, as_of=AS_OF)
    day_before = AS_OF - dt.timedelta(days=1)

    def compose(render, cache, recipient, changes, notified):
        _, message = render_digest(
            render, organisation="Example Homes", recipient=recipient, as_of=AS_OF, rows=rows, changes=changes,
            sender="a@example.org", message_id="<m@example.org>", now=NOW, cache=cache, notified=notified)
        return message

    shared_render, shared_cache = renderer(config), RowCache()
    unmarked = d.changes_since(day_before, {"A1", "A2", "A3"}, rows, {})
    marked = compose(shared_render, shared_cache, ACME, d.changes_since(day_before, {"A1", "A3"}, rows, {}),
                     {"A1": dt.datetime(2026, 11, 23, 5, tzinfo=dt.UTC)})
    after = compose(shared_render, shared_cache, BETA, unmarked, {})
    alone = compose(renderer(config), RowCache(), BETA, unmarked, {})

    def parts(message):
        parsed = email.message_from_string(message, policy=policy.default)
        return [parsed.get_body((kind,)).get_content() for kind in ("html", "plain")]

    assert "ALREADY NOTIFIED" in parts(marked)[0] and ">NEW<" in parts(marked)[0]
    assert parts(after) == parts(alone)
    assert "ALREADY NOTIFIED" not in parts(after)[0] and ">NEW<" not in parts(after)[0]
