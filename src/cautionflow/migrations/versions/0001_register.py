"""The register: current alerts, their history, the quarantine and the sync runs.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alerts",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("alert_code", sa.String(16)),
        sa.Column("subject_type", sa.String(16)),
        sa.Column("person_ref", sa.String(64)),
        sa.Column("person_name", sa.Text),
        sa.Column("tenancy_ref", sa.String(64)),
        sa.Column("asset_ref", sa.String(64)),
        sa.Column("address", sa.Text),
        sa.Column("postcode", sa.String(16)),
        sa.Column("area", sa.String(64)),
        sa.Column("effective_from", sa.Date),
        sa.Column("ends_on", sa.Date),
        sa.Column("last_reviewed_on", sa.Date),
        sa.Column("review_outcome", sa.String(16)),
        sa.Column("status", sa.String(16)),
        sa.Column("notify_resident", sa.Integer),
        sa.Column("no_notify_reason", sa.Text),
        sa.Column("notified_on", sa.Date),
        sa.Column("appeal_received_on", sa.Date),
        sa.Column("appeal_decided_on", sa.Date),
        sa.Column("appeal_outcome", sa.String(16)),
        sa.Column("source", sa.String(32)),
        sa.Column("note", sa.Text),
        sa.Column("preferred_channel", sa.String(16)),
        sa.Column("email", sa.Text),
        sa.Column("language", sa.String(32)),
        sa.Column("large_print", sa.Integer),
        sa.Column("updated_at", sa.DateTime),
        sa.Column("dq_flags", sa.Text, comment="data-quality problems found in the source row; NULL when clean"),
        sa.Column("row_hash", sa.BigInteger, nullable=False),
        sa.Column("register_state", sa.String(16), nullable=False,
                  comment="active, or ended (in or by leaving the source)"),
        sa.Column("ended_reason", sa.String(32), comment="ended_in_source | left_source"),
        sa.Column("first_seen_run", sa.String(250), nullable=False),
        sa.Column("first_seen_on", sa.Date, nullable=False),
        sa.Column("last_changed_run", sa.String(250), nullable=False),
        sa.Column("last_changed_on", sa.Date, nullable=False),
    )
    op.create_index("ix_alerts_register_state", "alerts", ["register_state"])
    op.create_index("ix_alerts_person_ref", "alerts", ["person_ref"])

    op.create_table(
        "alert_history",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("change", sa.String(16), nullable=False, comment="inserted | updated | ended | reopened"),
        sa.Column("changed_fields", sa.Text, comment="JSON {field: [old, new]}; NULL for inserted"),
    )
    op.create_index("ix_alert_history_alert_id", "alert_history", ["alert_id"])
    op.create_index("ix_alert_history_run_id", "alert_history", ["run_id"])

    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("row_hash", sa.BigInteger, nullable=False),
        sa.Column("alert_id", sa.String(64)),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("raw_row", sa.Text, nullable=False, comment="the source row as read, JSON"),
        sa.Column("first_run_id", sa.String(250), nullable=False),
        sa.Column("first_seen_on", sa.Date, nullable=False),
        sa.Column("resolved_run_id", sa.String(250), comment="the run whose read no longer had this row"),
        sa.Column("resolved_on", sa.Date),
    )
    op.create_index("ix_quarantine_row_hash", "quarantine", ["row_hash"])

    op.create_table(
        "sync_runs",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("summary", sa.Text, nullable=False, comment="JSON counts"),
    )


def downgrade() -> None:
    for table in ("sync_runs", "quarantine", "alert_history", "alerts"):
        op.drop_table(table)
