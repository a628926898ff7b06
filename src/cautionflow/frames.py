"""Missing values, one way, from database drivers and pandas to what a reader sees.

pandas 3 keeps text columns in its `str` dtype, whose missing value is NaN: a NULL read into a frame
comes back as a float NaN, which is truthy (`name or "(household)"` keeps it) and prints as "nan".
So rows leave a frame through `plain_values`/`plain_records` (None for every kind of missing), and
text for people goes through `text` (no report, email, letter or page may show nan, NaN,
NaT or None as a value). The templates' environment applies `is_missing` to every `{{ ... }}`.

pandas and numpy are imported only where a frame is in hand, so the domain and the templates can
use `is_missing` and `text` without loading them.
"""

from __future__ import annotations

import datetime as dt
import math
from collections import namedtuple
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd


def is_missing(value: Any) -> bool:
    """True for None, NaN (Python's, numpy's, Decimal's), NaT and pd.NA; False for anything else,
    including "" (an empty text is a value) and containers."""
    if value is None:
        return True
    # The common cases first, so rendering a table of them never imports pandas. Not isinstance for
    # dates: pandas' NaT is a datetime subclass.
    if isinstance(value, (str, int)) or type(value) in (dt.date, dt.datetime):
        return False
    if isinstance(value, float):  # numpy's float64 too
        return math.isnan(value)
    import pandas as pd

    return bool(pd.api.types.is_scalar(value) and pd.isna(value))


def text(value: Any, missing: str = "") -> str:
    """`value` as text for a reader: `missing` (a blank unless the caller states a placeholder such as
    "not recorded") for a missing value, never "nan", "NaT", "<NA>" or "None"."""
    return missing if is_missing(value) else str(value)


def plain_values(column: pd.Series) -> list[Any]:
    """A column as Python values, with None for every kind of missing (NaN, NaT, pd.NA)."""
    import numpy as np

    values = column.tolist()
    missing = column.isna().to_numpy()
    if missing.any():
        for i in np.flatnonzero(missing):
            values[i] = None
    return values


def plain_records(frame: pd.DataFrame) -> Iterator[Any]:
    """The frame's rows as named tuples of Python values with None for every kind of missing: what
    `frame.itertuples(index=False)` gives, but safe for `row.person_name or ...`. Column by column,
    so a million rows cost no per-cell pandas calls."""
    row = namedtuple("Row", [str(c) for c in frame.columns], rename=True)  # type: ignore[misc]
    columns = [plain_values(frame.iloc[:, i]) for i in range(frame.shape[1])]
    return (row._make(values) for values in zip(*columns, strict=True))
