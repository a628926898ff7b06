"""Writing report files: whole or not at all, and every CSV by the one set of rules.

A file is written to a hidden temporary name beside it and renamed, so a reader (the register
page, a person with the folder open) never sees half a file, and a rerun of the same day
replaces it with identical content.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cautionflow.domain.csv_format import csv_text


def write_atomically(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    # newline="": the text's own line ends (a CSV's CRLF) are written as they are, on any platform.
    partial.write_text(text, encoding="utf-8", newline="")
    os.replace(partial, path)


def write_csv(path: Path, columns: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Path:
    """A CSV for people's spreadsheets (`cautionflow.domain.csv_format`: formula-safe, BOM, CRLF)."""
    write_atomically(path, csv_text(columns, rows))
    return path
