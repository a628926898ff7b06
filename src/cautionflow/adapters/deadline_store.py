"""The register's stored deadlines (`alert_deadlines`) and the active alerts they are computed from.

`replace_deadlines` swaps the whole table in one transaction, under the sync's write lock, so a
reader sees the old deadlines or the new ones, never a mix, and a rerun of the same day changes
nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from cautionflow.adapters import register_schema as schema
from cautionflow.adapters.database import bulk_insert, fetch_all

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy.engine import Connection, Engine

# What the deadline rules read of each active alert.
ALERT_FIELDS = (
    "alert_id", "alert_code", "effective_from", "last_reviewed_on", "ends_on", "notified_on",
    "appeal_received_on", "person_name", "subject_type", "asset_ref", "address", "postcode", "area",
    "appeal_decided_on",  # not a rule's input: which appeals are still awaiting an answer (the count)
)
# One stored deadline row, in this order.
STORED = (
    "alert_id", "policy", "review_due", "review_window_opens", "expires_on", "appeal_deadline",
    "appeal_response_due", "overdue", "error", "evaluated_on",
)


def _selected(fields: Sequence[str]) -> list[str]:
    """The fields as selected: `notified_on` is when the resident was told by the source's record or
    else by cautionflow's dispatched letter (`register_schema.NOTIFIED_OR_TOLD`), so an alert told by
    letter gets its appeal deadline from that day (Teign 9, Dover 6.34)."""
    return [schema.NOTIFIED_OR_TOLD if f == "notified_on" else f for f in fields]


class DeadlineStore:
    """Reads the active alerts for the deadline rules; replaces the stored deadlines."""

    def __init__(self, engine: Engine, writing: Callable[[], AbstractContextManager[Connection]]) -> None:
        self.engine = engine
        self.writing = writing  # `Register.writing`: the register's write transaction and its lock

    def alerts_to_evaluate(self) -> pd.DataFrame:
        """The active alerts' ALERT_FIELDS by alert id, every column of object dtype (None, not NaN)."""
        import pandas as pd

        with self.engine.connect() as conn:
            columns, rows = fetch_all(
                conn,
                f"SELECT {', '.join(_selected(ALERT_FIELDS))} FROM alerts WHERE register_state = 'active' "
                "ORDER BY alert_id",
            )
        return pd.DataFrame.from_records(rows, columns=columns, coerce_float=False).astype(object)

    def replace_deadlines(self, rows: Iterable[Sequence[Any]]) -> None:
        """Replace every stored deadline with `rows` (values in STORED's order), atomically."""
        with self.writing() as conn:
            conn.exec_driver_sql("DELETE FROM alert_deadlines")
            bulk_insert(conn, "alert_deadlines", STORED, rows)
