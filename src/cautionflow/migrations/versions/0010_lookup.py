"""Look-ups: API tokens for contractors' and call handlers' systems, and the log of every read.

* `api_tokens`: one row per token, holding only its sha256 (`token_hash`) and its first 8 characters
  (`prefix`, to tell tokens apart in lists); the recipient it acts as, by name from the config.
* `lookups`: one row per read of the register through the look-up (a search, an alert, an alert
  page): when, who (user or token), the parameters asked (JSON), the outcome and how many alerts
  it returned. `lookup_results`: which alerts each read returned (the subject access export's
  "Looked up", the alert page's reads).
* Indexes for a look-up by postcode or asset reference at the moment of a visit: the postcode as
  compared (upper case, no spaces: an expression index, on PostgreSQL and SQLite alike) and
  `asset_ref`.

Revision ID: 0010
Revises: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

# The same text as `register_schema.POSTCODE_KEY`: a query uses the index only with this expression.
POSTCODE_KEY = "upper(replace(postcode, ' ', ''))"


def upgrade() -> None:
    op.create_index("ix_alerts_postcode_key", "alerts", [sa.text(POSTCODE_KEY)])
    op.create_index("ix_alerts_asset_ref", "alerts", ["asset_ref"])
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("token_hash", sa.String(64), nullable=False,
                  comment="sha256 hex of the token; the token itself is never stored"),
        sa.Column("prefix", sa.String(8), nullable=False, comment="the token's first 8 characters, shown in lists"),
        sa.Column("recipient_name", sa.Text, nullable=False, comment="the configured recipient the token acts as"),
        sa.Column("recipient_email", sa.Text, nullable=False),
        sa.Column("recipient_role", sa.String(16), nullable=False, comment="contractor | out_of_hours, when created"),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_on", sa.Date, comment="the last day it works; NULL: never expires"),
        sa.Column("revoked_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_at", sa.DateTime(timezone=True), comment="updated at most once a minute"),
        sa.UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
    )
    op.create_table(
        "lookups",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reader_kind", sa.String(8), nullable=False, comment="user | token"),
        sa.Column("reader", sa.Text, nullable=False, comment="the Airflow username, or the token's recipient name"),
        sa.Column("token_id", sa.Integer, sa.ForeignKey("api_tokens.id", name="fk_lookups_token_id")),
        sa.Column("query", sa.Text, nullable=False,
                  comment="JSON: the parameters asked (retention anonymises q, postcode, asset_ref)"),
        sa.Column("outcome", sa.String(16), nullable=False, comment="ok | refused | not_found"),
        sa.Column("result_count", sa.Integer, nullable=False),
    )
    op.create_index("ix_lookups_at", "lookups", ["at"])
    op.create_table(
        "lookup_results",
        sa.Column("lookup_id", sa.Integer, sa.ForeignKey("lookups.id", name="fk_lookup_results_lookup_id"),
                  nullable=False),
        sa.Column("alert_id", sa.String(64), nullable=False),
    )
    op.create_index("ix_lookup_results_alert_id", "lookup_results", ["alert_id"])
    op.create_index("ix_lookup_results_lookup_id", "lookup_results", ["lookup_id"])


def downgrade() -> None:
    op.drop_table("lookup_results")
    op.drop_table("lookups")
    op.drop_table("api_tokens")
    op.drop_index("ix_alerts_asset_ref", table_name="alerts")
    op.drop_index("ix_alerts_postcode_key", table_name="alerts")
