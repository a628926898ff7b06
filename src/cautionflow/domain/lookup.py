"""Look-ups: who may ask the register what, and what each reader is shown (pure).

Staff and contractors must check for an alert before a visit or a call (Karbon 6.3, Hexagon 1.2,
Dover 6.30). The look-up answers "is 27 Yew Court flagged?" at that moment, for two kinds of reader:

* **Staff** (Airflow users allowed the register page) see the register's view of an alert: code,
  required action, contact instruction, review due, data-quality problems, name, address,
  postcode, area, asset reference and its state in the register. Never the `note`.
* **A token** (a contractor's or call centre's system) acts as the configured recipient it was
  issued for, and is shown exactly what that recipient's digest shows: one allow-list, shared with
  the digests (`domain.digests.columns_for` of the recipient's role, projected by `digest_row`). A
  contractor sees only active alerts in its areas (`entitled`: Karbon 7.1-7.2, Dover 6.31); an
  out-of-hours call handler every active alert, with the name (Karbon 7.3). Never the `note`.

**The query rules** (no search returns the whole register to a token):

* A token may ask only by an exact, full UK postcode (outward and inward code: "EW1 2AB", any case
  or spacing), an exact asset reference, or `q`: at least 6 characters including a digit (a house
  number and street, "27 Yew Court"), matched case-insensitively against the start of the address
  or of a word in it. A search matching more than TOKEN_MAX_MATCHES of the alerts it may see is
  refused as too broad, so a token can never page through a register.
* Staff may also search by a person's name or reference (and tenancy, alert and asset references,
  part of a postcode) with `q` of at least 2 characters, matched anywhere.
* Every query is at most MAX_PAGE_SIZE results a page; anything else is refused with one line.

Nothing here touches a database: `services.lookup` runs the search and writes the log.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cautionflow.domain.codes import required_action
from cautionflow.domain.digests import Column, columns_for, digest_row, entitled
from cautionflow.frames import is_missing

READER_KINDS = ("user", "token")
TOKEN_ROLES = frozenset({"contractor", "out_of_hours"})
STAFF = "staff"
MAX_PAGE_SIZE = 50
DEFAULT_PAGE_SIZE = 20
TOKEN_MAX_MATCHES = 50  # a token's search matching more is refused: narrow it
TOKEN_Q_MIN = 6
STAFF_Q_MIN = 2
Q_MAX = 200  # a house number and street, or a name: anything longer is not a look-up
OUTCOMES = ("ok", "refused", "not_found")

# A full UK postcode without its space: outward code (A9, A99, AA9, AA99, A9A, AA9A) and inward (9AA).
_FULL_POSTCODE = re.compile(r"[A-Z]{1,2}[0-9][A-Z0-9]?[0-9][A-Z]{2}")

# The register's view for staff (the register page's columns), never the note.
STAFF_COLUMNS: tuple[Column, ...] = (
    Column("alert_code", "Code"),
    Column("required_action", "Required action"),
    Column("contact_instruction", "Contact instruction"),
    Column("review_due", "Review due"),
    Column("dq_flags", "Data-quality problems"),
    Column("person_name", "Name"),
    Column("address", "Address"),
    Column("postcode", "Postcode"),
    Column("area", "Area"),
    Column("asset_ref", "Asset reference"),
    Column("register_state", "State"),
)
# What the staff search reads of an alert: the columns above, and what they are worked out from.
STAFF_FIELDS = ("alert_id", "alert_code", "contact_instruction", "dq_flags", "person_name", "address", "postcode",
                "area", "asset_ref", "register_state")


@dataclass(frozen=True)
class TokenView:
    """The deployment's digest choices a token's answer follows, as its recipient's digest does:
    whether contractors see the contact instruction (config.digests.contractors_see_instructions),
    and what an alert without one shows (the duty contact's number, config.digests.duty_contact)."""

    contractors_see_instructions: bool = False
    fallback_instruction: str = ""


class QueryRefused(ValueError):
    """A query this reader may not ask; the message is one line saying why (an HTTP 400/422)."""


@dataclass(frozen=True)
class Reader:
    """Who is reading: an Airflow user (role "staff") or a token acting as its recipient."""

    kind: str  # "user" | "token"
    name: str  # the Airflow username, or the token's recipient name
    role: str  # "staff" | "contractor" | "out_of_hours"
    areas: tuple[str, ...] = ()
    token_id: int | None = None

    @property
    def is_staff(self) -> bool:
        return self.kind == "user" and self.role == STAFF


@dataclass(frozen=True)
class LookupQuery:
    """A validated query: what the register is asked, normalised (None: not asked)."""

    postcode_key: str | None = None  # upper case, no spaces
    postcode_prefix: bool = False  # staff only: part of a postcode ("EW1")
    asset_ref: str | None = None
    q: str | None = None  # lower case, spaces collapsed
    q_key: str | None = None  # q as a postcode is compared (staff only)
    page: int = 1
    page_size: int = DEFAULT_PAGE_SIZE
    match_anywhere: bool = False  # staff: q anywhere in address and name, and the references exactly

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size


def normalise_postcode(text: str) -> str:
    """A postcode as compared: upper case, every space removed ("ew1 2ab" -> "EW12AB")."""
    return "".join(str(text).split()).upper()


def is_full_postcode(key: str) -> bool:
    return _FULL_POSTCODE.fullmatch(key) is not None


def _clean_q(text: str) -> str:
    return " ".join(str(text).split()).lower()


def validate_query(
    reader: Reader, *, q: str | None = None, postcode: str | None = None, asset_ref: str | None = None,
    page: int = 1, page_size: int = DEFAULT_PAGE_SIZE,
) -> LookupQuery:
    """The query this reader may ask, normalised; QueryRefused (one line) for anything else."""
    if reader.kind not in READER_KINDS:
        raise QueryRefused(f"unknown reader kind {reader.kind!r}")
    if reader.kind == "token" and reader.role not in TOKEN_ROLES:
        raise QueryRefused(f"a token acting as a {reader.role} recipient may not look up alerts")
    if reader.kind == "user" and reader.role != STAFF:
        raise QueryRefused("an Airflow user reads as staff")
    if not isinstance(page, int) or page < 1:
        raise QueryRefused("page must be a whole number from 1")
    if not isinstance(page_size, int) or not 1 <= page_size <= MAX_PAGE_SIZE:
        raise QueryRefused(f"page_size must be from 1 to {MAX_PAGE_SIZE}")
    staff = reader.is_staff
    q_text = _clean_q(q) if q is not None else ""
    key = normalise_postcode(postcode) if postcode is not None else ""
    asset = " ".join(str(asset_ref).split()) if asset_ref is not None else ""
    if not (q_text or key or asset):
        raise QueryRefused("ask by postcode, asset_ref or q (a house number and street"
                           + (", a name or a reference)" if staff else ")"))
    if len(q_text) > Q_MAX:
        raise QueryRefused(f"q is longer than {Q_MAX} characters")
    if len(key) > 16 or len(asset) > 64:
        raise QueryRefused("postcode or asset_ref is longer than the register holds")
    prefix = False
    if key and not is_full_postcode(key):
        if not staff:
            raise QueryRefused("postcode must be a full UK postcode, such as EW1 2AB (outward and inward code)")
        if len(key) < 2:
            raise QueryRefused("postcode: give at least 2 characters")
        prefix = True
    if q_text:
        if staff:
            if len(q_text) < STAFF_Q_MIN:
                raise QueryRefused(f"q must be at least {STAFF_Q_MIN} characters")
        elif len(q_text) < TOKEN_Q_MIN or not any(c.isdigit() for c in q_text) or sum(c.isalpha() for c in q_text) < 2:
            raise QueryRefused(
                f"q must be a house number and street (at least {TOKEN_Q_MIN} characters with a digit, "
                "such as 27 Yew Court); or ask by a full postcode or an asset reference"
            )
    return LookupQuery(
        postcode_key=key or None, postcode_prefix=prefix, asset_ref=asset or None, q=q_text or None,
        q_key=(normalise_postcode(q_text) or None) if staff and q_text else None, page=page, page_size=page_size,
        match_anywhere=staff,
    )


def too_broad(reader: Reader, total: int) -> str | None:
    """Why a token's search matching `total` alerts is refused, or None: no token pages through a register."""
    if reader.is_staff or total <= TOKEN_MAX_MATCHES:
        return None
    return (f"the search matches more than {TOKEN_MAX_MATCHES} alerts; narrow it (a full postcode, an asset "
            "reference, or a house number and street)")


def columns(reader: Reader, view: TokenView = TokenView()) -> tuple[Column, ...]:
    """The columns this reader is shown: staff the register's view, a token its recipient's digest's."""
    if reader.is_staff:
        return STAFF_COLUMNS
    return columns_for(reader.role, instructions=view.contractors_see_instructions)


def read_fields(reader: Reader, digest_fields: Sequence[str], view: TokenView = TokenView()) -> tuple[str, ...]:
    """The register fields a search for this reader reads: never more than its columns need (a
    token's are the digests' own allow-list, `digest_fields`), never the note."""
    if reader.is_staff:
        fields: Sequence[str] = STAFF_FIELDS
    else:
        shown = {c.key for c in columns(reader, view)} | {"alert_id", "alert_code", "area"}
        fields = [f for f in digest_fields if f in shown]
    return tuple(f for f in dict.fromkeys(fields) if f not in ("note", "review_due"))


def may_see(reader: Reader, alert: Mapping[str, Any]) -> bool:
    """May this reader be shown this alert at all? Staff: any. A token: active alerts its recipient
    is entitled to (contractors: in their areas; out of hours: all)."""
    if reader.is_staff:
        return True
    if reader.kind != "token" or reader.role not in TOKEN_ROLES:
        return False
    if alert.get("register_state") not in (None, "active"):
        return False
    return entitled(reader, alert)  # type: ignore[arg-type]  # Reader has the role and areas entitled reads


def _json_value(value: Any) -> Any:
    if is_missing(value):
        return None
    if isinstance(value, dt.datetime):
        return value.date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


def project(reader: Reader, alert: Mapping[str, Any], *, as_of: dt.date, view: TokenView = TokenView()) -> dict[str, Any]:
    """One alert as this reader is shown it: {column key: value, ..., "alert_id"}, dates ISO 8601.

    A token's row is its recipient's digest row (`digest_row`: a contractor's past review date reads
    "under review"); staff's the register's view. Only the reader's columns, whatever `alert` holds."""
    if reader.is_staff:
        item: dict[str, Any] = {}
        for column in STAFF_COLUMNS:
            if column.key == "required_action":
                item[column.key] = required_action(alert.get("alert_code"))
            else:
                value = _json_value(alert.get(column.key))
                item[column.key] = value.strip() if isinstance(value, str) else value
        item["alert_id"] = str(alert["alert_id"])
        return item
    shown = columns(reader, view)
    row = digest_row(reader.role, alert, as_of=as_of, columns=shown, fallback=view.fallback_instruction)
    item = {c.key: _json_value(v) for c, v in zip(shown, row.values, strict=True)}
    item["alert_id"] = row.alert_id
    return item


def column_list(reader: Reader, view: TokenView = TokenView()) -> list[dict[str, str]]:
    return [{"key": c.key, "label": c.label} for c in columns(reader, view)]


# The query parameters a lookup records that can name or locate a resident: retention replaces
# them in the log of every lookup that returned an anonymised alert.
LOCATING_PARAMETERS = ("q", "postcode", "asset_ref")
ANONYMISED = "[anonymised]"


def anonymised_query(query: Mapping[str, Any]) -> tuple[dict[str, Any], bool]:
    """`query` with its locating parameters replaced by the marker; and whether any was."""
    cleared = dict(query)
    touched = False
    for name in LOCATING_PARAMETERS:
        if cleared.get(name) not in (None, "", ANONYMISED):
            cleared[name] = ANONYMISED
            touched = True
    return cleared, touched


def asked_by(query: Mapping[str, Any]) -> tuple[str, ...]:
    """What a lookup asked by, in words, without the values (the subject access export shows this,
    never what was typed: a query can name someone else)."""
    words = {"alert_id": "alert reference", "postcode": "postcode", "asset_ref": "asset reference",
             "q": "address, name or reference search"}
    return tuple(word for key, word in words.items() if query.get(key) not in (None, ""))
