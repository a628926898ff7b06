"""Deadlines: review, expiry and appeal dates of every active alert, by the landlord's policy.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "alert_deadlines",
        sa.Column("alert_id", sa.String(64), primary_key=True),
        sa.Column("policy", sa.String(100), nullable=False),
        sa.Column("review_due", sa.Date),
        sa.Column("review_window_opens", sa.Date),
        sa.Column("expires_on", sa.Date),
        sa.Column("appeal_deadline", sa.Date),
        sa.Column("appeal_response_due", sa.Date),
        sa.Column("overdue", sa.Integer, nullable=False),
        sa.Column("error", sa.Text, comment="why the dates are empty"),
        sa.Column("evaluated_on", sa.Date, nullable=False, comment="the as-of date they were computed for"),
    )
    op.create_index("ix_alert_deadlines_review_due", "alert_deadlines", ["review_due"])


def downgrade() -> None:
    op.drop_table("alert_deadlines")
