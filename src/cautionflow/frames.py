"""Moving rows between database drivers and pandas without per-cell overhead at a million rows."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd


def frame_of_objects(columns: Sequence[str], rows: Sequence[tuple]) -> pd.DataFrame:
    """Rows as a frame of plain Python objects, column by column: no type inference."""
    data = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pd.DataFrame(
        {name: np.array(values, dtype=object) for name, values in zip(columns, data, strict=True)},
        columns=list(columns),
        dtype=object,  # pandas 3 would otherwise infer its (much slower, here) string dtype
    )


def plain_values(column: pd.Series) -> list[Any]:
    """A column as Python values, with None for every kind of missing (NaN, NaT, pd.NA)."""
    values = column.tolist()
    missing = column.isna().to_numpy()
    if missing.any():
        for i in np.flatnonzero(missing):
            values[i] = None
    return values
