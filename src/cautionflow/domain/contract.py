"""The source contract: the columns the housing database's query must return."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

# What a source returns: each column's values in row order, as the driver gave them.
SourceColumns = Mapping[str, Sequence[Any]]

SOURCE_COLUMNS: tuple[str, ...] = (
    "alert_id", "alert_code", "subject_type", "person_ref", "person_name", "tenancy_ref",
    "asset_ref", "address", "postcode", "area", "effective_from", "ends_on", "last_reviewed_on",
    "review_outcome", "status", "notify_resident", "no_notify_reason", "notified_on",
    "appeal_received_on", "appeal_decided_on", "appeal_outcome", "source", "note", "resident_reason",
    "contact_instruction", "preferred_channel", "email", "language", "large_print", "updated_at",
)

# Columns a source query may leave out: each is then read as empty for every row. `resident_reason`
# (what the landlord has decided the resident may be told of why, printed in their decision letters;
# Hexagon 5.3, Karbon 5.2, Teign Appendix E) is newer than the contract, and a landlord who records
# none yet must still sync. Every other column stays required: a query missing one is refused.
# `contact_instruction` (how to make contact safely: who the single point of contact is and how to
# reach them, the agreed arrangements; shown to call handlers, and to contractors where the config
# allows) is newer still, and optional for the same reason.
# An alert whose optional columns are empty keeps the fingerprint it had before they existed.
OPTIONAL_COLUMNS: tuple[str, ...] = ("resident_reason", "contact_instruction")

DATE_COLUMNS: tuple[str, ...] = (
    "effective_from", "ends_on", "last_reviewed_on", "notified_on",
    "appeal_received_on", "appeal_decided_on",
)
TIMESTAMP_COLUMNS: tuple[str, ...] = ("updated_at",)
FLAG_COLUMNS: tuple[str, ...] = ("notify_resident", "large_print")

# Allowed values of the enumerated columns; empty is allowed unless the column is required.
ENUMS: dict[str, frozenset[str]] = {
    "subject_type": frozenset({"person", "household", "address"}),
    "review_outcome": frozenset({"retained", "removed"}),
    "status": frozenset({"active", "ended"}),
    "appeal_outcome": frozenset({"upheld", "dismissed"}),
    "source": frozenset({"staff", "police", "local_authority", "social_services", "other"}),
    "preferred_channel": frozenset({"post", "email"}),
}

TEXT_COLUMNS: tuple[str, ...] = tuple(
    c for c in SOURCE_COLUMNS if c not in DATE_COLUMNS + TIMESTAMP_COLUMNS + FLAG_COLUMNS
)

# The register's widths for the source columns that have one. Cleaning cuts a longer value to
# the width and flags it; an alert_id too long to store as one is quarantined.
MAX_LENGTHS: dict[str, int] = {
    "alert_id": 64, "alert_code": 16, "person_ref": 64, "tenancy_ref": 64, "asset_ref": 64,
    "postcode": 16, "area": 64, "language": 32,
}

# The documented caps of the free-text columns the register stores as unbounded text. A value
# longer than its cap is cut to it and flagged, like a value wider than its column: one hostile or
# broken value (12 MB of notes, a whole file pasted into a name) must not reach a digest, a letter
# or a page whole. Generous for any real value. An email address longer than RFC 5321's 254
# characters is not an address: it is emptied and flagged, never cut into another address.
FREE_TEXT_CAPS: dict[str, int] = {
    "person_name": 200, "address": 500, "email": 254, "no_notify_reason": 2_000, "note": 8_000,
    "resident_reason": 2_000, "contact_instruction": 500,
}

# One-line columns hold no line breaks or other control characters: validation replaces line breaks
# and tabs with a space (an address's line breaks with ", ", as its letter splits lines at commas),
# removes the other control characters (NUL, which PostgreSQL cannot store, ESC, DEL, C1...) and
# flags the row `<column>_control_characters`. The multi-line free text below keeps its line breaks
# (CR LF and CR become LF, silently) and loses only the other control characters, flagged the same.
MULTI_LINE_COLUMNS: tuple[str, ...] = ("no_notify_reason", "note", "resident_reason")

# A quarantined row keeps its raw values whole up to this many characters each; a longer value is
# cut there with a marker saying how long it was (the quarantine is for a person to read).
RAW_VALUE_LIMIT = 10_000
