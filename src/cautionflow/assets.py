"""The Airflow Assets that chain cautionflow's DAGs (imported by DAG files at parse time: keep light)."""

from __future__ import annotations

from airflow.sdk import Asset

REGISTER = Asset("x-cautionflow://register")
"""Updated when the daily sync has merged the housing database into the register."""

DEADLINES = Asset("x-cautionflow://deadlines")
"""Updated when every active alert's review, expiry and appeal dates have been computed."""

DIGESTS = Asset("x-cautionflow://digests")
"""Updated when the day's digests to contractors and out-of-hours call handlers have all been accepted."""

LETTERS = Asset("x-cautionflow://letters")
"""Updated when the day's resident letters have been queued (and, with auto-approve, dispatched)."""
