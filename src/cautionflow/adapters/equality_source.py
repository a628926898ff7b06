"""The equality monitoring counts: the landlord's equality query, run on the housing
database in a read-only session. Aggregate counts only, held in memory for the report and never
written to the register."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig
    from cautionflow.domain.equality import GroupCount


def read_equality_counts(url: str, query: str) -> list[GroupCount]:
    """The equality query's rows, validated: aggregate counts only, read in a read-only session (as
    the alerts are) and held in memory for the report, never written to the register."""
    from cautionflow.adapters.database import safe_url
    from cautionflow.adapters.source import SourceError, read_only_query
    from cautionflow.domain.equality import EqualityDataError, read_counts

    columns, rows = read_only_query(url, query, what="equality query")
    try:
        return read_counts(columns, rows)
    except EqualityDataError as exc:
        raise SourceError(f"equality query on {safe_url(url)}: {exc}") from None


class EqualityQuery:
    """The configured equality query on its database, for the report's `period`. The query's text
    is read (`query`, e.g. `CautionflowConfig.equality_query`) only when the counts are: a run that
    leaves equality out never opens the file."""

    def __init__(self, url: str, query: Callable[[], str], *, period: str) -> None:
        self.url = url
        self.query = query
        self.period = period

    def read_counts(self) -> list[GroupCount]:
        return read_equality_counts(self.url, self.query())


def configured_equality(config: CautionflowConfig) -> EqualityQuery | None:
    """The config's equality section as an `EqualityQuery`, or None when it has none."""
    if config.equality is None:
        return None
    return EqualityQuery(config.equality_url(), config.equality_query, period=config.equality.period)
