"""Field safety: the source contract's optional `contact_instruction`, and what each disclosure showed.

* `alerts.contact_instruction`: how to make contact safely (who the single point of contact is and
  how to reach them, the agreed contact arrangements), from the housing system; shown to call
  handlers in their digests, and to contractors where the config allows.
* `disclosures.shown`: what a message showed of the alert (its code and required action, among the
  fields later digests compare with), so the next digest can say what changed since, old -> new,
  and the urgent notices know what each recipient was last told. Never personal data (retention
  would have to find it there). Rows written before this are NULL: compared with them, an alert
  that is still listed is not reported as changed.
* `outbox.disclosed_alerts` gains `shown`, carried from queueing to the disclosure log.

Revision ID: 0009
Revises: 0008
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

INSTRUCTION_COMMENT = (
    "how to make contact safely (the single point of contact, the agreed arrangements); shown in digests"
)
SHOWN_COMMENT = "JSON: what the message showed of the alert that later messages compare with (no personal data)"
DISCLOSED_BEFORE = 'JSON {"current": [alert_id], "lifted": [alert_id]}'
DISCLOSED_AFTER = 'JSON {"current": [alert_id], "lifted": [alert_id], "shown": {alert_id: JSON text}}'


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("contact_instruction", sa.Text, comment=INSTRUCTION_COMMENT))
    with op.batch_alter_table("disclosures") as batch:
        batch.add_column(sa.Column("shown", sa.Text, comment=SHOWN_COMMENT))
    _disclosed_comment(DISCLOSED_AFTER, DISCLOSED_BEFORE)


def downgrade() -> None:
    _disclosed_comment(DISCLOSED_BEFORE, DISCLOSED_AFTER)
    with op.batch_alter_table("disclosures") as batch:
        batch.drop_column("shown")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("contact_instruction")


def _disclosed_comment(comment: str, existing: str) -> None:
    # SQLite keeps no column comments: altering one there would copy the whole table for nothing.
    if op.get_bind().dialect.name != "sqlite":
        op.alter_column(
            "outbox", "disclosed_alerts", existing_type=sa.Text, existing_nullable=False,
            comment=comment, existing_comment=existing,
        )
