"""Retention: when an ended alert's personal details were anonymised, and the log of every anonymisation.

Revision ID: 0005
Revises: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(
            sa.Column("anonymised_on", sa.Date, comment="when retention last cleared its personal details")
        )
    op.create_table(
        "anonymisation_log",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False, comment="the retention run's as-of date"),
        sa.Column("anonymised_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_on", sa.Date, nullable=False, comment="the end the retention period ran from"),
        sa.Column("retention_months", sa.Integer, nullable=False),
        sa.Column(
            "fields_cleared", sa.Text, nullable=False,
            comment='JSON {"alerts": [field], "alert_history": n, "letters": n, "outbox": n, "quarantine": n}',
        ),
    )
    op.create_index("ix_anonymisation_log_alert_id", "anonymisation_log", ["alert_id"])


def downgrade() -> None:
    op.drop_table("anonymisation_log")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("anonymised_on")
