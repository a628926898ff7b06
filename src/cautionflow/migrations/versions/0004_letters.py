"""Letters: the resident letters queue (decision, review and appeal outcome letters).

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "letters",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("letter_key", sa.String(64), nullable=False, comment="sha256 of alert, kind, decision date"),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("person_ref", sa.String(64)),
        sa.Column("person_name", sa.Text, nullable=False),
        sa.Column(
            "address_lines", sa.Text, nullable=False, comment="the envelope window's lines, newline-separated"
        ),
        sa.Column("email", sa.Text),
        sa.Column(
            "kind", sa.String(24), nullable=False, comment="alert_added | review_kept | review_removed | appeal_*"
        ),
        sa.Column(
            "outcome", sa.String(16), nullable=False, comment="added | retained | removed | upheld | dismissed"
        ),
        sa.Column("alert_code", sa.String(16), nullable=False),
        sa.Column("decision_date", sa.Date, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False, comment="the day it was queued"),
        sa.Column("batch", sa.Date, nullable=False, comment="the approval batch: the as-of date"),
        sa.Column("status", sa.String(16), nullable=False, comment="queued | approved | dispatched | held"),
        sa.Column("hold_reason", sa.Text),
        sa.Column("channels", sa.String(16), nullable=False, comment="post | email | post+email"),
        sa.Column("large_print", sa.Integer, nullable=False),
        sa.Column("language", sa.String(32), nullable=False),
        sa.Column("html", sa.Text, nullable=False, comment="the rendered letter"),
        sa.Column("pdf_path", sa.Text, nullable=False),
        sa.Column("dispatch_ref", sa.Text, comment="the print batch file or the email's Message-ID"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("approved_at", sa.DateTime(timezone=True)),
        sa.Column("dispatched_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("letter_key", name="uq_letters_letter_key"),
    )
    op.create_index("ix_letters_status", "letters", ["status"])
    op.create_index("ix_letters_batch", "letters", ["batch"])
    op.create_index("ix_letters_alert_id", "letters", ["alert_id"])


def downgrade() -> None:
    op.drop_table("letters")
