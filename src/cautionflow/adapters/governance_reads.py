"""What the governance lists read of the register (services/governance_reports.py): active alerts'
fields for the survey exclusions, the non-notification decisions and the stale checks, and the
history rows where an alert's dates changed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.database import fetch_all

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine


class GovernanceReads:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def _rows(self, statement: str, params: Sequence[Any] = ()) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            columns, rows = fetch_all(conn, statement, params)
        return [dict(zip(columns, row, strict=True)) for row in rows]

    def survey_exclusions(self, codes: Sequence[str]) -> list[str]:
        """Distinct tenancy references with an active alert of one of `codes` (upper case), sorted: the
        rule `cautionflow.domain.surveys.on_survey_exclusion_list` in SQL (a property test keeps them equal)."""
        marks = ", ".join("?" * len(codes))
        rows = self._rows(
            "SELECT DISTINCT tenancy_ref FROM alerts WHERE register_state = 'active' AND tenancy_ref IS NOT NULL "
            f"AND tenancy_ref <> '' AND UPPER(alert_code) IN ({marks}) ORDER BY tenancy_ref",
            tuple(codes),
        )
        return [r["tenancy_ref"] for r in rows]

    def not_notified(self) -> list[dict[str, Any]]:
        """Active alerts recorded with notify_resident = 0, by alert id: the decision's fields."""
        return self._rows(
            "SELECT alert_id, alert_code, subject_type, tenancy_ref, asset_ref, area, no_notify_reason, effective_from, "
            "last_reviewed_on FROM alerts WHERE register_state = 'active' AND notify_resident = 0 ORDER BY alert_id",
        )

    def active_dates(self) -> list[dict[str, Any]]:
        """Active alerts, by alert id, with the dates the stale checks read."""
        return self._rows(
            "SELECT alert_id, alert_code, area, asset_ref, register_state, effective_from, last_reviewed_on, ends_on "
            "FROM alerts WHERE register_state = 'active' ORDER BY alert_id",
        )

    def date_changes(self) -> list[dict[str, Any]]:
        """History rows whose changed fields name `ends_on` or `effective_from` (a text match: the
        caller reads the JSON), with the alert's code, area, asset and state; latest first."""
        return self._rows(
            "SELECT h.alert_id, h.as_of, h.changed_fields, a.alert_code, a.area, a.asset_ref, a.register_state "
            "FROM alert_history h JOIN alerts a ON a.alert_id = h.alert_id "
            "WHERE h.changed_fields IS NOT NULL AND (h.changed_fields LIKE ? OR h.changed_fields LIKE ?) "
            "ORDER BY h.as_of DESC, h.alert_id, h.id",
            ('%"ends_on"%', '%"effective_from"%'),  # bound: psycopg reads a literal % as a placeholder
        )
