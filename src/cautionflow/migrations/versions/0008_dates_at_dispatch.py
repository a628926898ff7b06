"""Dates at dispatch, and telling recorded.

* `letters.dated_on` and `letters.appeal_by`: the date the letter bears and the appeal deadline it
  gives. A letter is dated the day it leaves: approving or dispatching it on a later day than it was
  queued renders it again, dated that day (Teign 9, Dover 6.34-6.35 count the window from the day the
  resident is told). The letters already queued were dated the day they were queued (`as_of`).
* `alerts.told_on`: the day cautionflow's "alert added" letter told the resident, owned by the
  register (the sync never writes it; the source's `notified_on` is never overwritten). Deadlines
  and the letters read `COALESCE(notified_on, told_on)` (`register_schema.NOTIFIED_OR_TOLD`).

Revision ID: 0008
Revises: 0007
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

TOLD_COMMENT = "the day cautionflow's alert-added letter told the resident; the register's own, never the sync's"
DATED_COMMENT = "the date the letter bears: the day it was approved or dispatched (rendered again then)"
APPEAL_BY_COMMENT = "the appeal deadline the letter gives, counted from dated_on; NULL when it gives none"


def upgrade() -> None:
    with op.batch_alter_table("alerts") as batch:
        batch.add_column(sa.Column("told_on", sa.Date, comment=TOLD_COMMENT))
    with op.batch_alter_table("letters") as batch:
        batch.add_column(sa.Column("dated_on", sa.Date, comment=DATED_COMMENT))
        batch.add_column(sa.Column("appeal_by", sa.Date, comment=APPEAL_BY_COMMENT))
    # Until now a letter bore the day it was queued. Its deadline is only in its text: left NULL.
    op.execute("UPDATE letters SET dated_on = as_of")
    with op.batch_alter_table("letters") as batch:
        batch.alter_column("dated_on", existing_type=sa.Date, nullable=False, existing_comment=DATED_COMMENT)


def downgrade() -> None:
    with op.batch_alter_table("letters") as batch:
        batch.drop_column("appeal_by")
        batch.drop_column("dated_on")
    with op.batch_alter_table("alerts") as batch:
        batch.drop_column("told_on")
