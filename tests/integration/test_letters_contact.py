"""The landlord's contact block on every letter (issue 14): the return address, "Our ref" and the date
at the top of page 1, the signature, a footer "Ref ... · Page N of M" on every page, an optional
letterhead; emailed letters Reply-To the appeals email, never the SMTP sender (Dover 6.34: an appeal
email and a postal address; Wandle 3.10: how to submit an appeal). Read back from the PDFs with pypdf
and from a real SMTP server. Synthetic data only."""

from __future__ import annotations

import asyncio
import io
import re
from email.utils import getaddresses

import pytest
from pypdf import PdfReader

from cautionflow.adapters.templates import renderer
from cautionflow.config import parse_config
from cautionflow.domain import letters as d
from cautionflow.domain.letters import owed_letters
from cautionflow.profiles import load_profile
from cautionflow.services.letters import letter_pdf, letter_reference, render_html
from cautionflow.steps import run_letters
from cautionflow.steps.letters import run_letters_dispatch_async
from tests.deployment import APPEALS_EMAIL, CONTACT, FAST, letters_config, prepare, queued, write_config
from tests.support import AS_OF, REPO, alert_row, pdf_text, placed_text

SENDER = "alerts@example.org"  # the SMTP sender (tests/deployment.py): never offered to the resident
APPEALS_ADDRESS = ["Appeals Panel", "PO Box 12", "Eastwick", "EW1 9ZZ"]
ERIN = "erin@example.com"
REASON = {"resident_reason": "You shouted at and threatened a gas engineer at your home on 2 November 2026."}
TOLD = {"effective_from": "2025-11-01", "notified_on": "2025-11-02"}
ROWS = [
    alert_row(alert_id="ADD", person_ref="P1", person_name="Alex Added", effective_from="2026-11-20", **REASON),
    alert_row(alert_id="KEPT", person_ref="P3", person_name="Kim Kept", address="3 Quay Street", postcode="EW4 5EF",
              last_reviewed_on="2026-11-02", review_outcome="retained", large_print=1, **TOLD, **REASON),
    alert_row(alert_id="GONE", person_ref="P4", person_name="Rory Removed", address="4 Ash Row", status="ended",
              last_reviewed_on="2026-11-05", review_outcome="removed", **TOLD, **REASON),
    alert_row(alert_id="UPHELD", person_ref="P5", person_name="Uma Upheld", address="5 Elm Road", status="ended",
              effective_from="2026-10-01", notified_on="2026-10-02", appeal_received_on="2026-10-05",
              appeal_decided_on="2026-10-20", appeal_outcome="upheld", **REASON),
    alert_row(alert_id="KEEP", person_ref="P6", person_name="Dee Dismissed", address="6 Oak Road",
              effective_from="2026-10-01", notified_on="2026-10-02", appeal_received_on="2026-10-05",
              appeal_decided_on="2026-11-10", appeal_outcome="dismissed", **REASON),
]
MAIL = alert_row(alert_id="MAIL", alert_code="DOG", person_ref="P2", person_name="Erin Email", address="2 Mill Lane",
                 postcode="EW3 1CD", effective_from="2026-11-16", preferred_channel="email", email=ERIN, **REASON)


def config_with(tmp_path, policy="teign", **contact):
    return parse_config({
        "organisation": "Example Homes", "policy": policy, "register_url": "sqlite://", "source": {"url": "sqlite://"},
        "letters": {"output_dir": str(tmp_path / "letters"), "contact": {**CONTACT, **contact}},
    }, home=REPO)


def owed(config, rows=ROWS):
    registered = [{**r, "register_state": "active" if r["status"] == "active" else "ended", "review_due": "2027-11-02"}
                  for r in rows]
    return owed_letters(registered, load_profile(config.policy), AS_OF).letters


def rendered(config, letter) -> tuple[str, bytes]:
    contact = config.letters.contact
    html, body = render_html(renderer(config), letter, organisation=config.organisation, contact=contact)
    return html, letter_pdf(letter, body, organisation=config.organisation, contact=contact)


def page_texts(pdf: bytes) -> list[str]:
    return [re.sub(r"\s+", " ", page.extract_text()) for page in PdfReader(io.BytesIO(pdf)).pages]


def test_the_reference_is_stable_and_names_nobody():
    key = d.letter_key("CX-0001", "alert_added", AS_OF)
    assert letter_reference("CX-0001", key) == f"CX-0001/{key[:8]}" == letter_reference("CX-0001", key)
    assert letter_reference("CX 0001\n\t<b>", key) == f"CX 0001 <b>/{key[:8]}"  # one line, whatever the id
    assert len(letter_reference("A" * 500, key)) == 40 + 1 + 8


def test_every_kind_shows_the_return_address_our_ref_the_signature_and_page_numbers(tmp_path):
    config = config_with(tmp_path)
    letters = {x.kind: x for x in owed(config)}
    assert set(letters) == set(d.KINDS)
    for kind, letter in letters.items():
        html, pdf = rendered(config, letter)
        pages = page_texts(pdf)
        ref = letter_reference(letter.alert_id, letter.key)
        first = pages[0]
        # The return address and phone (top right), "Our ref" and the date.
        for line in (*CONTACT["address"], f"Phone: {CONTACT['phone']}", f"Our ref: {ref}", "23 November 2026"):
            assert line in first, (kind, line)
        # The signature block: "Yours sincerely", the signing officer and title.
        whole = pdf_text(io.BytesIO(pdf))
        assert f"Yours sincerely, {CONTACT['signed_by']} {CONTACT['signed_title']} Example Homes" in whole, kind
        # Every page: the reference and "Page N of M" (fpdf2's page count alias, substituted).
        for number, text in enumerate(pages, start=1):
            assert f"Ref {ref} · Page {number} of {len(pages)}" in text, (kind, number)
        # The HTML says the same: return address, our ref, signature.
        assert f"Our ref: {ref}" in html and CONTACT["signed_by"] in html and CONTACT["address"][0] in html
        assert SENDER not in html and SENDER not in whole  # Dover 6.34: never the unread sender


def test_a_large_print_letter_numbers_each_of_its_pages_in_16_point(tmp_path):
    config = config_with(tmp_path)
    [letter] = owed(config, [ROWS[1]])  # Kim Kept, large print
    assert letter.large_print
    html, body = render_html(renderer(config), letter, organisation=config.organisation, contact=config.letters.contact)
    # A long letter (the review's reasons at length): the body runs over several pages.
    body += "<p>" + " ".join(["We looked at every report and spoke to the people involved."] * 60) + "</p>"
    pdf = letter_pdf(letter, body, organisation=config.organisation, contact=config.letters.contact)
    pages = page_texts(pdf)
    assert len(pages) >= 2
    ref = letter_reference(letter.alert_id, letter.key)
    for number, text in enumerate(pages, start=1):
        assert f"Ref {ref} · Page {number} of {len(pages)}" in text
    footer = [p for p in placed_text(pdf) if p[0].startswith("Ref ")]
    assert footer and all(size >= 16 for *_, size in footer)  # large print all the way down
    assert all(280 <= baseline <= 292 for _t, _x, baseline, _s in footer)  # below the body, on the page


@pytest.mark.parametrize("large_print", [0, 1])
@pytest.mark.parametrize("letterhead", [False, True])
def test_the_address_still_sits_in_the_dl_window_beside_the_return_address(large_print, letterhead, tmp_path):
    extra = {"letterhead": str(_letterhead_png(tmp_path))} if letterhead else {}
    config = config_with(tmp_path, **extra)
    [letter] = owed(config, [{**ROWS[0], "large_print": large_print}])
    _, pdf = rendered(config, letter)
    placed = placed_text(pdf)

    address = [p for p in placed if p[0] in ("Alex Added", "1 Larkspur Close", "Eastwick", "EW1 2AB")]
    assert [p[0] for p in address] == ["Alex Added", "1 Larkspur Close", "Eastwick", "EW1 2AB"]
    for _text, x, baseline, size in address:
        # The window: 20 mm from the left, 45 mm from the top, 90 x 35 mm (cap height above the baseline).
        assert 20 <= x <= 110 and 45 + size * 0.26 <= baseline <= 80
    # The return address block is right of the window: nothing of it shows through the envelope.
    block = [p for p in placed if p[0] in (*CONTACT["address"], f"Phone: {CONTACT['phone']}") or p[0].startswith("Our ref")]
    assert len(block) == len(CONTACT["address"]) + 2
    assert all(x >= 115 for _t, x, _b, _s in block)
    body_sizes = {size for text, _x, y, size in placed if y > 85}
    assert min(body_sizes) >= (16 if large_print else 11)


def _letterhead_png(tmp_path):
    from PIL import Image

    path = tmp_path / "letterhead.png"
    Image.new("RGB", (600, 150), (0, 90, 60)).save(path)  # a synthetic green banner
    return path


def test_the_letterhead_is_drawn_on_page_one_when_configured(tmp_path):
    with_head = config_with(tmp_path, letterhead=str(_letterhead_png(tmp_path)))
    without = config_with(tmp_path)
    [letter] = owed(without, [ROWS[0]])
    _, plain = rendered(without, letter)
    _, headed = rendered(with_head, letter)
    assert len(PdfReader(io.BytesIO(plain)).pages[0].images) == 0
    reader = PdfReader(io.BytesIO(headed))
    [image] = reader.pages[0].images
    assert image.image.size == (600, 150)
    assert all(len(page.images) == 0 for page in reader.pages[1:])  # page 1 only
    assert rendered(with_head, letter)[1] == headed  # the same letter is the same bytes


def test_the_letter_names_the_appeals_email_and_address_not_the_smtp_sender(databases, tmp_path, mail_server):
    # Dover 6.34 names an appeal email and a postal address; Wandle 3.10: how to submit an appeal.
    config = letters_config(databases, tmp_path, mail_server.port, contact={**CONTACT, "appeals_address": APPEALS_ADDRESS})
    prepare(databases, config, rows=[ROWS[0]], as_of=AS_OF)
    run_letters(config, as_of=AS_OF, run_id="letters")
    [letter] = queued(databases).values()
    text = pdf_text(tmp_path / "letters" / letter.pdf_path)
    assert APPEALS_EMAIL in text and SENDER not in text
    assert ", ".join(APPEALS_ADDRESS) in text or " ".join(APPEALS_ADDRESS) in text


def test_an_emailed_letter_replies_to_the_appeals_email_with_the_contact_details(databases, tmp_path, mail_server):
    config = letters_config(databases, tmp_path, mail_server.port, auto_approve=True)
    prepare(databases, config, rows=[MAIL], as_of=AS_OF)

    summary = run_letters(config, as_of=AS_OF, run_id="letters", retry=FAST)

    assert (summary["dispatched"], summary["dispatch"]["sent"]) == (1, 1)
    [message] = mail_server.handler.messages_for(ERIN)
    assert getaddresses(message.get_all("Reply-To")) == [("Example Homes", APPEALS_EMAIL)]
    assert getaddresses(message.get_all("From"))[0][1] == SENDER  # sent by the server's sender, answered by people
    [letter] = queued(databases).values()
    ref = letter_reference(letter.alert_id, letter.letter_key)
    body = message.get_body(("plain",)).get_content()
    for detail in (ref, CONTACT["phone"], APPEALS_EMAIL, *CONTACT["address"], CONTACT["signed_by"],
                   CONTACT["signed_title"]):
        assert detail in body, detail
    assert SENDER not in body
    [attachment] = list(message.iter_attachments())
    assert f"Our ref: {ref}" in pdf_text(io.BytesIO(attachment.get_content()))


def test_without_a_letters_section_the_step_queues_nothing_and_says_why(databases, tmp_path, mail_server, capsys):
    from tests.deployment import deployment

    config = deployment(databases, tmp_path, mail_server.port, policy="teign", recipients=[])
    assert config.letters is None
    prepare(databases, config, rows=[ROWS[0]], as_of=AS_OF)

    summary = run_letters(config, as_of=AS_OF, run_id="letters")

    assert summary["skipped"] == "no letters section in the config" and summary["queued"] == 0
    assert summary["complete"] is True  # `run all` goes on; the DAG's task succeeds
    assert queued(databases) == {}
    # The DAG's dispatch task succeeds with nothing to send (its checks read these keys).
    dispatch = asyncio.run(run_letters_dispatch_async(config, as_of=AS_OF, run_id="dispatch"))
    assert dispatch["skipped"] == "no letters section in the config"
    assert (dispatch["pending"], dispatch["failed"], dispatch["complete"]) == (0, 0, True)
    # What an officer does by hand says why in one line (exit 2 on the command line).
    path = write_config(config, tmp_path)
    from cautionflow.cli import main

    code = main(["letters", "dispatch", "--config", path])
    said = capsys.readouterr()
    assert code == 2 and said.out == ""
    assert said.err.strip().splitlines() == [
        "cautionflow: error: letters: no letters section in the config: nothing to dispatch (add letters: output_dir, "
        "contact)"
    ]
    assert mail_server.handler.received == []
