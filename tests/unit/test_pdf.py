"""The PDF adapter's whole-file helpers: an officer's file that is not a PDF is named by its error,
and combined PDFs keep every part's pages in order. Synthetic data only."""

from __future__ import annotations

import datetime as dt

import pytest
from pypdf import PdfReader

from cautionflow.adapters.pdf import UnreadablePdfError, combine_pdfs, document_pdf, readable_page_count

DAY = dt.date(2026, 11, 23)


def test_a_file_that_is_not_a_pdf_is_named_by_pypdfs_own_error(tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a pdf")
    try:
        PdfReader(notes).pages  # noqa: B018 - what pypdf itself raises, named in the officer's one line
    except Exception as exc:  # noqa: BLE001
        expected = type(exc).__name__
    with pytest.raises(UnreadablePdfError) as raised:
        readable_page_count(notes)
    assert str(raised.value) == expected
    with pytest.raises(UnreadablePdfError, match="FileNotFoundError"):
        readable_page_count(tmp_path / "missing.pdf")


def test_parts_are_combined_in_order_with_their_page_counts(tmp_path):
    long_body = "<h1>Long</h1>" + "<p>word " * 2000 + "</p>"
    one, two = tmp_path / "one.pdf", tmp_path / "two.pdf"
    one.write_bytes(document_pdf("<h1>One</h1><p>first</p>", size=10.0, title="one", created_on=DAY))
    two.write_bytes(document_pdf(long_body, size=10.0, title="two", created_on=DAY))
    counts = combine_pdfs([one, two], tmp_path / "both.pdf")
    assert counts[0] == 1 and counts[1] > 1
    both = PdfReader(tmp_path / "both.pdf")
    assert len(both.pages) == sum(counts) and "first" in both.pages[0].extract_text()
    assert readable_page_count(tmp_path / "both.pdf") == sum(counts)


def test_the_same_document_is_the_same_bytes():
    body = "<h1>Same</h1><p>Zoë Łukasiewicz, <b>bold</b> and plain.</p><li>item</li>"
    first = document_pdf(body, size=10.0, title="same", created_on=DAY)
    assert first == document_pdf(body, size=10.0, title="same", created_on=DAY)
