"""Letters: officers' flags (what no letter can settle) and translations supplied by an officer.

Revision ID: 0006
Revises: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "letter_flags",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column(
            "flag", sa.String(32), nullable=False,
            comment="untold_before_lookback | no_notify_reason_missing | review_without_outcome | "
            "appeal_without_outcome",
        ),
        sa.Column("reason", sa.Text, nullable=False, comment="what the officer must do, in words"),
        sa.Column("first_flagged_on", sa.Date, nullable=False, comment="the as-of date it was first seen"),
        sa.Column("last_flagged_on", sa.Date, nullable=False, comment="the latest as-of date it was seen"),
        sa.Column("resolved_on", sa.Date, comment="the as-of date the register no longer showed it; NULL while open"),
        sa.Column("first_run_id", sa.String(250), nullable=False),
        sa.Column("last_run_id", sa.String(250), nullable=False),
        sa.UniqueConstraint("alert_id", "flag", name="uq_letter_flags_alert_flag"),
    )
    op.create_index("ix_letter_flags_resolved_on", "letter_flags", ["resolved_on"])
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column(
            "translated_at", sa.DateTime(timezone=True), comment="when an officer attached the translation"
        ))
        batch.add_column(sa.Column("translation_file", sa.Text, comment="the translated PDF's name as supplied"))
        batch.add_column(sa.Column(
            "english_pdf_path", sa.Text, comment="the English letter, kept when a translation is attached"
        ))


def downgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.drop_column("english_pdf_path")
        batch.drop_column("translation_file")
        batch.drop_column("translated_at")
    op.drop_table("letter_flags")
