"""Outbox and disclosure log: every outgoing message before it is sent, and who was told what.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "outbox",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "idempotency_key", sa.String(64), nullable=False,
            comment="sha256 of kind, recipient, as-of date, content hash",
        ),
        sa.Column("kind", sa.String(16), nullable=False, comment="digest | reminder | letter | operations"),
        sa.Column("recipient_name", sa.Text, nullable=False),
        sa.Column("recipient_email", sa.Text, nullable=False),
        sa.Column("recipient_role", sa.String(16), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("content_hash", sa.String(64), nullable=False, comment="sha256 of what the message discloses"),
        sa.Column(
            "message_id", sa.String(255), nullable=False, comment="RFC 5322 Message-ID; the same on every resend"
        ),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("message", sa.Text, nullable=False, comment="the complete MIME message as sent"),
        sa.Column(
            "disclosed_alerts", sa.Text, nullable=False, comment='JSON {"current": [alert_id], "lifted": [alert_id]}'
        ),
        sa.Column("status", sa.String(16), nullable=False, comment="pending | sending | sent | failed | superseded"),
        sa.Column("attempts", sa.Integer, nullable=False, comment="delivery runs that tried to send it"),
        sa.Column("last_error", sa.Text, comment="the server's reply or the connection error"),
        sa.Column("created_run", sa.String(250), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True), comment="when the server accepted it"),
        sa.UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
        sa.UniqueConstraint("message_id", name="uq_outbox_message_id"),
    )
    op.create_index("ix_outbox_status", "outbox", ["status"])
    op.create_index("ix_outbox_recipient_email", "outbox", ["recipient_email"])

    op.create_table(
        "disclosures",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "outbox_id", sa.Integer, sa.ForeignKey("outbox.id", name="fk_disclosures_outbox_id"), nullable=False
        ),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
        sa.Column("listed_as", sa.String(16), nullable=False, comment="current | lifted"),
        sa.Column("recipient_name", sa.Text, nullable=False),
        sa.Column("recipient_email", sa.Text, nullable=False),
        sa.Column("recipient_role", sa.String(16), nullable=False),
        sa.Column("disclosed_on", sa.Date, nullable=False, comment="the message's as-of date"),
        sa.Column(
            "disclosed_at", sa.DateTime(timezone=True), nullable=False, comment="when the server accepted it"
        ),
        sa.UniqueConstraint("outbox_id", "alert_id", name="uq_disclosures_outbox_alert"),
    )
    op.create_index("ix_disclosures_alert_id", "disclosures", ["alert_id"])
    op.create_index("ix_disclosures_recipient_email", "disclosures", ["recipient_email"])


def downgrade() -> None:
    op.drop_table("disclosures")
    op.drop_table("outbox")
