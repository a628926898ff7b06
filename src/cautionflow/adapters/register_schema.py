"""The register's tables, as SQLAlchemy Core metadata.

The schema itself is created and changed only by the Alembic migrations in
`cautionflow/migrations`; a test checks that the migrations' result matches this metadata.
"""

from __future__ import annotations

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    literal_column,
)

metadata = MetaData()

# The source contract's columns, as the register stores them.
_SOURCE_COLUMNS = (
    Column("alert_id", String(64), primary_key=True),
    Column("alert_code", String(16)),
    Column("subject_type", String(16)),
    Column("person_ref", String(64)),
    Column("person_name", Text),
    Column("tenancy_ref", String(64)),
    Column("asset_ref", String(64)),
    Column("address", Text),
    Column("postcode", String(16)),
    Column("area", String(64)),
    Column("effective_from", Date),
    Column("ends_on", Date),
    Column("last_reviewed_on", Date),
    Column("review_outcome", String(16)),
    Column("status", String(16)),
    Column("notify_resident", Integer),
    Column("no_notify_reason", Text),
    Column("notified_on", Date),
    Column("appeal_received_on", Date),
    Column("appeal_decided_on", Date),
    Column("appeal_outcome", String(16)),
    Column("source", String(32)),
    Column("note", Text),
    Column(
        "resident_reason", Text,
        comment="what the resident may be told of why, printed in their letters; never the internal note",
    ),
    Column(
        "contact_instruction", Text,
        comment="how to make contact safely (the single point of contact, the agreed arrangements); shown in digests",
    ),
    Column("preferred_channel", String(16)),
    Column("email", Text),
    Column("language", String(32)),
    Column("large_print", Integer),
    Column("updated_at", DateTime),
)

alerts = Table(
    "alerts",
    metadata,
    *_SOURCE_COLUMNS,
    Column("dq_flags", Text, comment="data-quality problems found in the source row; NULL when clean"),
    Column("row_hash", BigInteger, nullable=False),
    Column("register_state", String(16), nullable=False, comment="active, or ended (in or by leaving the source)"),
    Column("ended_reason", String(32), comment="ended_in_source | left_source"),
    Column("first_seen_run", String(250), nullable=False),
    Column("first_seen_on", Date, nullable=False),
    Column("last_changed_run", String(250), nullable=False),
    Column("last_changed_on", Date, nullable=False),
    Column("anonymised_on", Date, comment="when retention last cleared its personal details"),
    Column(
        "told_on", Date,
        comment="the day cautionflow's alert-added letter told the resident; the register's own, never the sync's",
    ),
    Index("ix_alerts_register_state", "register_state"),
    Index("ix_alerts_person_ref", "person_ref"),
)

alert_history = Table(
    "alert_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(64), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("change", String(16), nullable=False, comment="inserted | updated | ended | reopened"),
    Column("changed_fields", Text, comment="JSON {field: [old, new]}; NULL for inserted"),
    Index("ix_alert_history_alert_id", "alert_id"),
    Index("ix_alert_history_run_id", "run_id"),
)

quarantine = Table(
    "quarantine",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("row_hash", BigInteger, nullable=False),
    Column("alert_id", String(64)),
    Column("reason", Text, nullable=False),
    Column("raw_row", Text, nullable=False, comment="the source row as read, JSON"),
    Column("first_run_id", String(250), nullable=False),
    Column("first_seen_on", Date, nullable=False),
    Column("resolved_run_id", String(250), comment="the run whose read no longer had this row"),
    Column("resolved_on", Date),
    Index("ix_quarantine_row_hash", "row_hash"),
)

sync_runs = Table(
    "sync_runs",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("run_id", String(250), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("started_at", DateTime(timezone=True), nullable=False),
    Column("finished_at", DateTime(timezone=True), nullable=False),
    Column("summary", Text, nullable=False, comment="JSON counts"),
)

alert_deadlines = Table(
    "alert_deadlines",
    metadata,
    Column("alert_id", String(64), primary_key=True),
    Column("policy", String(100), nullable=False),
    Column("review_due", Date),
    Column("review_window_opens", Date),
    Column("expires_on", Date),
    Column("appeal_deadline", Date),
    Column("appeal_response_due", Date),
    Column("overdue", Integer, nullable=False),
    Column("error", Text, comment="why the dates are empty"),
    Column("evaluated_on", Date, nullable=False, comment="the as-of date they were computed for"),
    Index("ix_alert_deadlines_review_due", "review_due"),
)

# Every outgoing message (digests, review reminders, letters by email, notices to operations), written
# before it is sent and marked as it goes: pending -> sending -> sent | failed (| superseded).
outbox = Table(
    "outbox",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("idempotency_key", String(64), nullable=False, comment="sha256 of kind, recipient, as-of date, content hash"),
    Column("kind", String(16), nullable=False, comment="digest | reminder | letter | operations"),
    Column("recipient_name", Text, nullable=False),
    Column("recipient_email", Text, nullable=False),
    Column("recipient_role", String(16), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("content_hash", String(64), nullable=False, comment="sha256 of what the message discloses"),
    Column("message_id", String(255), nullable=False, comment="RFC 5322 Message-ID; the same on every resend"),
    Column("subject", Text, nullable=False),
    Column("message", Text, nullable=False, comment="the complete MIME message as sent"),
    Column(
        "disclosed_alerts", Text, nullable=False,
        comment='JSON {"current": [alert_id], "lifted": [alert_id], "shown": {alert_id: JSON text}}',
    ),
    Column("status", String(16), nullable=False, comment="pending | sending | sent | failed | superseded"),
    Column("attempts", Integer, nullable=False, comment="delivery runs that tried to send it"),
    Column("last_error", Text, comment="the server's reply or the connection error"),
    Column("created_run", String(250), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False),
    Column("sent_at", DateTime(timezone=True), comment="when the server accepted it"),
    UniqueConstraint("idempotency_key", name="uq_outbox_idempotency_key"),
    UniqueConstraint("message_id", name="uq_outbox_message_id"),
    Index("ix_outbox_status", "status"),
    Index("ix_outbox_recipient_email", "recipient_email"),
)

# Who was told about which alert, in which message, when: written in the same transaction that
# marks the message sent, so a queued message that never went disclosed nothing.
disclosures = Table(
    "disclosures",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("outbox_id", Integer, ForeignKey("outbox.id", name="fk_disclosures_outbox_id"), nullable=False),
    Column("message_id", String(255), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("alert_id", String(64), nullable=False),
    Column("listed_as", String(16), nullable=False, comment="current | lifted"),
    Column("recipient_name", Text, nullable=False),
    Column("recipient_email", Text, nullable=False),
    Column("recipient_role", String(16), nullable=False),
    Column("disclosed_on", Date, nullable=False, comment="the message's as-of date"),
    Column("disclosed_at", DateTime(timezone=True), nullable=False, comment="when the server accepted it"),
    Column(
        "shown", Text,
        comment="JSON: what the message showed of the alert that later messages compare with (no personal data)",
    ),
    UniqueConstraint("outbox_id", "alert_id", name="uq_disclosures_outbox_alert"),
    Index("ix_disclosures_alert_id", "alert_id"),
    Index("ix_disclosures_recipient_email", "recipient_email"),
)

# When the resident was told of an alert, as every deadline and letter reads it: what the housing system
# says (`notified_on`, never overwritten), else the day cautionflow's "alert added" letter went
# (`told_on`). One expression, so the appeal deadline (Teign 9, Dover 6.34) and the letters' "never
# told" flag agree on it (`adapters.deadline_store`, `adapters.letters.LetterReads`).
NOTIFIED_OR_TOLD = "COALESCE(notified_on, told_on) AS notified_on"

# The resident letters queue: one row per (alert, kind, decision date), ever.
# queued -> approved -> dispatched; held letters (translation, no address) wait for an officer.
letters = Table(
    "letters",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("letter_key", String(64), nullable=False, comment="sha256 of alert, kind, decision date"),
    Column("alert_id", String(64), nullable=False),
    Column("person_ref", String(64)),
    Column("person_name", Text, nullable=False),
    Column("address_lines", Text, nullable=False, comment="the envelope window's lines, newline-separated"),
    Column("email", Text),
    Column("kind", String(24), nullable=False, comment="alert_added | review_kept | review_removed | appeal_*"),
    Column("outcome", String(16), nullable=False, comment="added | retained | removed | upheld | dismissed"),
    Column("alert_code", String(16), nullable=False),
    Column("decision_date", Date, nullable=False),
    Column("as_of", Date, nullable=False, comment="the day it was queued"),
    Column("batch", Date, nullable=False, comment="the approval batch: the as-of date"),
    Column("status", String(16), nullable=False, comment="queued | approved | dispatched | held"),
    Column("hold_reason", Text),
    Column("channels", String(16), nullable=False, comment="post | email | post+email"),
    Column("large_print", Integer, nullable=False),
    Column("language", String(32), nullable=False),
    Column("html", Text, nullable=False, comment="the rendered letter"),
    Column("pdf_path", Text, nullable=False),
    Column("dispatch_ref", Text, comment="the print batch file or the email's Message-ID"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("approved_at", DateTime(timezone=True)),
    Column("dispatched_at", DateTime(timezone=True)),
    Column("translated_at", DateTime(timezone=True), comment="when an officer attached the translation"),
    Column("translation_file", Text, comment="the translated PDF's name as supplied"),
    Column("english_pdf_path", Text, comment="the English letter, kept when a translation is attached"),
    Column(
        "dated_on", Date, nullable=False,
        comment="the date the letter bears: the day it was approved or dispatched (rendered again then)",
    ),
    Column("appeal_by", Date, comment="the appeal deadline the letter gives, counted from dated_on; NULL when it gives none"),
    UniqueConstraint("letter_key", name="uq_letters_letter_key"),
    Index("ix_letters_status", "status"),
    Index("ix_letters_batch", "batch"),
    Index("ix_letters_alert_id", "alert_id"),
)

# What no letter can settle, for an officer: one row per (alert, flag), open until the
# register no longer shows it. No personal details: `cautionflow letters flags` joins the alert.
letter_flags = Table(
    "letter_flags",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(64), nullable=False),
    Column(
        "flag", String(32), nullable=False,
        comment="untold_before_lookback | no_notify_reason_missing | review_without_outcome | "
        "appeal_without_outcome | resident_reason_missing",
    ),
    Column("reason", Text, nullable=False, comment="what the officer must do, in words"),
    Column("first_flagged_on", Date, nullable=False, comment="the as-of date it was first seen"),
    Column("last_flagged_on", Date, nullable=False, comment="the latest as-of date it was seen"),
    Column("resolved_on", Date, comment="the as-of date the register no longer showed it; NULL while open"),
    Column("first_run_id", String(250), nullable=False),
    Column("last_run_id", String(250), nullable=False),
    UniqueConstraint("alert_id", "flag", name="uq_letter_flags_alert_flag"),
    Index("ix_letter_flags_resolved_on", "resolved_on"),
)

# Retention: one row per anonymisation of an ended alert's personal details.
anonymisation_log = Table(
    "anonymisation_log",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_id", String(64), nullable=False),
    Column("run_id", String(250), nullable=False),
    Column("as_of", Date, nullable=False, comment="the retention run's as-of date"),
    Column("anonymised_at", DateTime(timezone=True), nullable=False),
    Column("ended_on", Date, nullable=False, comment="the end the retention period ran from"),
    Column("retention_months", Integer, nullable=False),
    Column(
        "fields_cleared", Text, nullable=False,
        comment='JSON {"alerts": [field], "alert_history": n, "letters": n, "outbox": n, "quarantine": n}',
    ),
    Index("ix_anonymisation_log_alert_id", "alert_id"),
)

# --- look-ups (migration 0010): API tokens, and every read of the register by a person or a token ---

# A postcode as the look-ups compare it: upper case, no spaces ("ew1 2ab" and "EW12AB" are one
# postcode). The same SQL text in the index and in every query, so PostgreSQL and SQLite both use
# the index (an expression index matches only the expression it was built on, literals included).
POSTCODE_KEY = func.upper(func.replace(alerts.c.postcode, literal_column("' '"), literal_column("''")))
Index("ix_alerts_postcode_key", POSTCODE_KEY)
Index("ix_alerts_asset_ref", alerts.c.asset_ref)

api_tokens = Table(
    "api_tokens",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("token_hash", String(64), nullable=False, comment="sha256 hex of the token; the token itself is never stored"),
    Column("prefix", String(8), nullable=False, comment="the token's first 8 characters, shown in lists"),
    Column("recipient_name", Text, nullable=False, comment="the configured recipient the token acts as"),
    Column("recipient_email", Text, nullable=False),
    Column("recipient_role", String(16), nullable=False, comment="contractor | out_of_hours, when created"),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("expires_on", Date, comment="the last day it works; NULL: never expires"),
    Column("revoked_at", DateTime(timezone=True)),
    Column("last_used_at", DateTime(timezone=True), comment="updated at most once a minute"),
    UniqueConstraint("token_hash", name="uq_api_tokens_token_hash"),
)

# One row per read (a search, an alert, an alert page), written in the read's own transaction: a
# read that could not be logged was not served.
lookups = Table(
    "lookups",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("at", DateTime(timezone=True), nullable=False),
    Column("reader_kind", String(8), nullable=False, comment="user | token"),
    Column("reader", Text, nullable=False, comment="the Airflow username, or the token's recipient name"),
    Column("token_id", Integer, ForeignKey("api_tokens.id", name="fk_lookups_token_id")),
    Column("query", Text, nullable=False, comment="JSON: the parameters asked (retention anonymises q, postcode, asset_ref)"),
    Column("outcome", String(16), nullable=False, comment="ok | refused | not_found"),
    Column("result_count", Integer, nullable=False),
    Index("ix_lookups_at", "at"),
)

lookup_results = Table(
    "lookup_results",
    metadata,
    Column("lookup_id", Integer, ForeignKey("lookups.id", name="fk_lookup_results_lookup_id"), nullable=False),
    Column("alert_id", String(64), nullable=False),
    Index("ix_lookup_results_alert_id", "alert_id"),
    Index("ix_lookup_results_lookup_id", "lookup_id"),
)
