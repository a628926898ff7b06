"""Moving rows between database drivers and pandas without per-cell overhead at a million rows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd


def plain_values(column: pd.Series) -> list[Any]:
    """A column as Python values, with None for every kind of missing (NaN, NaT, pd.NA)."""
    values = column.tolist()
    missing = column.isna().to_numpy()
    if missing.any():
        for i in np.flatnonzero(missing):
            values[i] = None
    return values
