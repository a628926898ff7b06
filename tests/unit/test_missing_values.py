"""Missing values never reach a reader as "nan", "NaT" or "None" (issue 12, part 2), pure: the helpers
in `cautionflow.frames`, the templates' `finalize`, and the All Alerts report's rows from a frame
read the way the deadlines step reads the register (pandas 3 makes a NULL text cell NaN)."""

from __future__ import annotations

import csv
import datetime as dt
import decimal
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from cautionflow.frames import is_missing, plain_records, text
from tests.support import AS_OF

MISSING = [None, float("nan"), np.nan, np.float64("nan"), pd.NaT, pd.NA, np.datetime64("NaT"), decimal.Decimal("NaN")]
PRESENT = ["", "nan", "None", 0, 0.0, False, dt.date(2026, 1, 1), dt.datetime(2026, 1, 1, 9), pd.Timestamp("2026-01-01"),
           np.int64(0), [], {}, ("a",)]


@pytest.mark.parametrize("value", MISSING, ids=repr)
def test_every_kind_of_missing_value_is_missing(value):
    assert is_missing(value)
    assert text(value) == ""
    assert text(value, "not recorded") == "not recorded"


@pytest.mark.parametrize("value", PRESENT, ids=repr)
def test_a_value_is_not_missing_even_when_empty_or_false(value):
    assert not is_missing(value)
    assert text(value) == str(value)  # text "nan" is somebody's text, shown as it is


def register_frame(rows: list[tuple]) -> pd.DataFrame:
    """As `services.deadlines.active_alerts` builds it from the driver's tuples."""
    return pd.DataFrame.from_records(rows, columns=["alert_id", "person_name", "area"], coerce_float=False).astype(object)


def test_a_null_read_into_a_frame_comes_back_as_none_not_a_truthy_nan():
    frame = register_frame([("A1", None, "NORTH"), ("A2", "Alex Example", None)])
    assert isinstance(frame.loc[0, "person_name"], float)  # why the helper exists: pandas 3 gives NaN here
    rows = list(plain_records(frame))
    assert [(r.alert_id, r.person_name, r.area) for r in rows] == [("A1", None, "NORTH"), ("A2", "Alex Example", None)]
    assert (rows[0].person_name or "(household)") == "(household)"


def test_plain_records_of_an_empty_frame_is_empty():
    assert list(plain_records(register_frame([]))) == []


def test_templates_print_a_missing_value_as_nothing():
    from cautionflow.adapters.templates import template_environment
    from cautionflow.config import parse_config

    config = parse_config({"organisation": "Example Homes", "policy": "dover", "register_url": "sqlite:///r.db",
                           "source": {"url": "sqlite:///x.db"}}, home=Path("/nonexistent"))
    template = template_environment(config).from_string("[{{ a }}|{{ b }}|{{ c }}|{{ d }}|{{ e }}|{{ f }}|{{ g }}]")
    out = template.render(a=None, b=float("nan"), c=pd.NaT, d=pd.NA, e=0, f=False, g="<b>")
    assert out == "[||||0|False|&lt;b&gt;]"  # values stay, and are still escaped


def test_the_all_alerts_report_says_whose_alert_it_is_instead_of_nan():
    from cautionflow.profiles import load_profile
    from cautionflow.services.reports import ALL_ALERTS_COLUMNS, all_alerts_rows

    columns = ["alert_id", "alert_code", "person_name", "subject_type", "asset_ref", "address", "postcode", "area",
               "effective_from", "last_reviewed_on", "review_due", "overdue", "error"]
    records = [
        ("H1", "DOG", None, "household", "AST1", "1 Mill Lane", None, "NORTH", "2026-01-05", None, dt.date(2027, 1, 5),
         False, None),
        ("X1", "HAZ", None, "address", None, "Bin store, Brook Court", "QS1 1AA", None, "2026-01-05", None,
         dt.date(2027, 1, 5), False, None),
        ("P1", None, None, "person", "AST2", None, None, "EAST", None, None, None, False, "unknown code"),
    ]
    frame = pd.DataFrame.from_records(records, columns=columns, coerce_float=False).astype(object)
    rows = all_alerts_rows(frame, load_profile("dover"), AS_OF)
    assert [r["Contact Name"] for r in rows] == ["(household)", "(address alert)", "(name not recorded)"]
    assert rows[2]["Group Name"] == "Unknown code (not recorded)"
    assert (rows[0]["Asset Address"], rows[1]["Asset Reference"], rows[1]["Area"], rows[0]["Problem"]) == (
        "1 Mill Lane", "", "", "")
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=ALL_ALERTS_COLUMNS)
    writer.writerows(rows)
    assert "nan" not in buffer.getvalue() and "None" not in buffer.getvalue()


def test_the_helpers_load_without_pandas():
    """The domain and the templates use them; a failure notice or a DAG file must not pay for pandas."""
    code = ("import sys, cautionflow.frames, cautionflow.adapters.templates, cautionflow.domain.digests; "
            "print(sorted({'pandas', 'numpy'} & set(sys.modules)))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
