"""Writing report files: whole or not at all, and every CSV by the one set of rules.

A file on the local disk is written to a hidden temporary name beside it and renamed, so a reader
(the register page, a person with the folder open) never sees half a file, and a rerun of the same
day replaces it with identical content. On an object store (`s3://`, `gs://`, ...) one whole-object
write is already all or nothing (an S3 PUT), and a rename would be a copy: the file is written once.

`path` is a `pathlib.Path` or Airflow's `ObjectStoragePath` (`CautionflowConfig.storage`).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from cautionflow.config import shown_path
from cautionflow.domain.csv_format import csv_text

__all__ = ["local_path", "shown_path", "write_atomically", "write_bytes_atomically", "write_csv"]


def local_path(path: Any) -> Path | None:
    """The local file a path names (a `Path`, or an ObjectStoragePath on `file://`); None when the
    path is on an object store."""
    if isinstance(path, Path):
        return path
    if getattr(path, "protocol", None) in ("file", "local", ""):
        return Path(path.path)
    return None


def write_bytes_atomically(path: Any, content: bytes) -> None:
    local = local_path(path)
    if local is None:
        path.write_bytes(content)  # one object, whole or not at all
        return
    local.parent.mkdir(parents=True, exist_ok=True)
    partial = local.with_name(f".{local.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, local)


def write_atomically(path: Any, text: str) -> None:
    # Encoded here, not through a text mode: the text's own line ends (a CSV's CRLF) are written as
    # they are, on any platform.
    write_bytes_atomically(path, text.encode("utf-8"))


def write_csv(path: Any, columns: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> Any:
    """A CSV for people's spreadsheets (`cautionflow.domain.csv_format`: formula-safe, BOM, CRLF)."""
    write_atomically(path, csv_text(columns, rows))
    return path
