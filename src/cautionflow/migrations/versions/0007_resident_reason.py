"""The source contract's optional `resident_reason`: what the landlord has decided the resident may be
told of why (Hexagon 5.3, Karbon 5.2, Teign Appendix E), printed in their decision letters; distinct
from the internal `note`, which never leaves the register. The officers' list gains the flag
`resident_reason_missing` (a decision letter held until the reason is recorded).

Revision ID: 0007
Revises: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

REASON_COMMENT = "what the resident may be told of why, printed in their letters; never the internal note"
FLAGS_BEFORE = "untold_before_lookback | no_notify_reason_missing | review_without_outcome | appeal_without_outcome"
FLAGS_AFTER = f"{FLAGS_BEFORE} | resident_reason_missing"


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("resident_reason", sa.Text, comment=REASON_COMMENT))
    _flag_comment(FLAGS_AFTER, FLAGS_BEFORE)


def downgrade() -> None:
    _flag_comment(FLAGS_BEFORE, FLAGS_AFTER)
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("resident_reason")


def _flag_comment(comment: str, existing: str) -> None:
    # SQLite keeps no column comments: altering one there would copy the whole table for nothing.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "letter_flags", "flag", existing_type=sa.String(32), existing_nullable=False,
            comment=comment, existing_comment=existing,
        )
