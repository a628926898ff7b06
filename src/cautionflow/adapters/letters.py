"""The resident letters queue in the register: queued -> approved -> dispatched, or held; the
officers' list of flags (`LetterFlags`); and the alerts the letters are decided from (`LetterReads`).

The unique letter key makes queueing idempotent across runs and processes: a key already in
the queue is never queued again, whatever its status (one letter per alert, kind and decision
date, ever). Status changes are guarded by the current status, so approving or dispatching twice
changes nothing the second time.

Dispatch by post is recorded in two steps around writing the print batch: each approved post
letter is first given its batch's name (`claim_for_print`, marked as being written), and only once
the files are complete is the mark taken off (`printed`), post-only letters becoming dispatched in
the same transaction. A dispatch that dies in between leaves the letters naming their batch, so the
next one rewrites that same batch instead of printing the letters again in a new one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from cautionflow.adapters import register_schema as schema

if TYPE_CHECKING:
    from sqlalchemy.engine import Connection, Engine

STATUSES = ("queued", "approved", "dispatched", "held")
_CHUNK = 500
# After a print batch's file name in `dispatch_ref` while its files are being written.
BEING_WRITTEN = " (being written)"
# The alert columns the letters policy reads (`cautionflow.domain.letters`), with the stored deadlines.
ALERT_COLUMNS = (
    "alert_id", "alert_code", "subject_type", "person_ref", "person_name", "address", "postcode", "effective_from",
    "last_reviewed_on", "review_outcome", "status", "notify_resident", "no_notify_reason", "notified_on",
    "appeal_decided_on", "appeal_outcome", "source", "preferred_channel", "email", "language", "large_print",
    "register_state", "resident_reason",
    "tenancy_ref",  # the survey exclusion list's rule (Wandle 5.0)
    "ends_on",  # with the dates above, the review date before Dover 6.21 moved it
)


@dataclass(frozen=True)
class NewLetter:
    """A rendered letter ready to queue."""

    letter_key: str
    alert_id: str
    person_ref: str | None
    person_name: str
    address_lines: tuple[str, ...]
    email: str | None
    kind: str
    outcome: str
    alert_code: str
    decision_date: dt.date
    as_of: dt.date
    status: str
    hold_reason: str | None
    channels: tuple[str, ...]
    large_print: bool
    language: str
    html: str
    pdf_path: str
    dated_on: dt.date | None = None  # the date the letter bears (None: its as_of)
    appeal_by: dt.date | None = None  # the appeal deadline it gives


@dataclass(frozen=True)
class StoredLetter:
    id: int
    letter_key: str
    alert_id: str
    person_ref: str | None
    person_name: str
    address_lines: tuple[str, ...]
    email: str | None
    kind: str
    outcome: str
    alert_code: str
    decision_date: dt.date
    as_of: dt.date
    batch: dt.date
    status: str
    hold_reason: str | None
    channels: tuple[str, ...]
    large_print: bool
    language: str
    pdf_path: str
    dispatch_ref: str | None
    translated_at: dt.datetime | None = None
    translation_file: str | None = None
    english_pdf_path: str | None = None
    dated_on: dt.date | None = None  # the date the letter bears: the day it was approved or dispatched
    appeal_by: dt.date | None = None  # the appeal deadline it gives; None when it gives none

    @property
    def translated(self) -> bool:
        return self.translated_at is not None


@dataclass(frozen=True)
class StoredFlag:
    """An officers' flag: something about an alert that no letter can settle."""

    id: int
    alert_id: str
    person_name: str
    alert_code: str
    flag: str
    reason: str
    first_flagged_on: dt.date
    last_flagged_on: dt.date
    resolved_on: dt.date | None


def _date(value: Any) -> dt.date:
    return value if isinstance(value, dt.date) else dt.date.fromisoformat(str(value)[:10])


def _chunks(items: Sequence[Any]) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), _CHUNK):
        yield items[start : start + _CHUNK]


class LetterQueue:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def known_keys(self, keys: Iterable[str]) -> set[str]:
        from sqlalchemy import select

        t = schema.letters
        keys = list(dict.fromkeys(keys))
        found: set[str] = set()
        with self.engine.connect() as conn:
            for chunk in _chunks(keys):
                found.update(conn.execute(select(t.c.letter_key).where(t.c.letter_key.in_(chunk))).scalars())
        return found

    def enqueue(self, letters: Sequence[NewLetter], *, now: dt.datetime) -> int:
        """Queue letters whose key is new (a concurrent run's are skipped); returns how many were new."""
        if not letters:
            return 0
        before = self.count()
        with self.engine.begin() as conn:
            conn.execute(
                _insert_ignoring_duplicates(conn),
                [
                    {
                        "letter_key": n.letter_key, "alert_id": n.alert_id, "person_ref": n.person_ref,
                        "person_name": n.person_name, "address_lines": "\n".join(n.address_lines), "email": n.email,
                        "kind": n.kind, "outcome": n.outcome, "alert_code": n.alert_code,
                        "decision_date": n.decision_date, "as_of": n.as_of, "batch": n.as_of, "status": n.status,
                        "hold_reason": n.hold_reason, "channels": "+".join(n.channels),
                        "large_print": int(n.large_print), "language": n.language, "html": n.html,
                        "pdf_path": n.pdf_path, "dated_on": n.dated_on or n.as_of, "appeal_by": n.appeal_by,
                        "dispatch_ref": None, "created_at": now,
                        "approved_at": now if n.status == "approved" else None, "dispatched_at": None,
                    }
                    for n in letters
                ],
            )
        return self.count() - before

    def count(self) -> int:
        from sqlalchemy import func, select

        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(schema.letters)).scalar_one())

    def list(self, *, status: str | None = None, ids: Sequence[int] | None = None) -> list[StoredLetter]:
        from sqlalchemy import select

        t = schema.letters
        query = select(*(t.c[c] for c in _LISTED)).order_by(t.c.id)
        if status is not None:
            query = query.where(t.c.status == status)
        with self.engine.connect() as conn:
            if ids is None:
                rows = conn.execute(query).all()
            else:
                rows = [r for chunk in _chunks(list(ids)) for r in conn.execute(query.where(t.c.id.in_(chunk)))]
        return [_stored(r) for r in rows]

    def html(self, letter_id: int) -> str:
        from sqlalchemy import select

        t = schema.letters
        with self.engine.connect() as conn:
            return conn.execute(select(t.c.html).where(t.c.id == letter_id)).scalar_one()

    def get(self, letter_id: int) -> StoredLetter | None:
        found = self.list(ids=[letter_id])
        return found[0] if found else None

    def attach_translation(
        self, letter_id: int, *, pdf_path: str, english_pdf_path: str, file_name: str, status: str, now: dt.datetime
    ) -> int:
        """A letter held for translation takes the officer's translated PDF and leaves the hold."""
        from sqlalchemy import update

        t = schema.letters
        query = (
            update(t)
            .where(t.c.id == letter_id, t.c.status == "held", t.c.translated_at.is_(None))
            .values(status=status, hold_reason=None, pdf_path=pdf_path, english_pdf_path=english_pdf_path,
                    translation_file=file_name, translated_at=now, approved_at=now if status == "approved" else None)
        )
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount

    def release(self, letter_id: int, letter: NewLetter, *, held_for: str, now: dt.datetime) -> int:
        """A letter held for `held_for` takes its new rendering (HTML, PDF, who and where, status and any
        other hold it now waits on) and joins the approval batch of the day it is released; the key,
        kind and decision stay. 0 when it is no longer held for that (another run released it)."""
        from sqlalchemy import update

        t = schema.letters
        query = (
            update(t)
            .where(t.c.id == letter_id, t.c.status == "held", t.c.hold_reason == held_for)
            .values(
                person_ref=letter.person_ref, person_name=letter.person_name,
                address_lines="\n".join(letter.address_lines), email=letter.email, alert_code=letter.alert_code,
                batch=letter.as_of, status=letter.status, hold_reason=letter.hold_reason,
                channels="+".join(letter.channels), large_print=int(letter.large_print), language=letter.language,
                html=letter.html, pdf_path=letter.pdf_path, approved_at=now if letter.status == "approved" else None,
                dated_on=letter.dated_on or letter.as_of, appeal_by=letter.appeal_by,
            )
        )
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount

    def approve(self, *, now: dt.datetime, batch: dt.date | None = None, letter_id: int | None = None) -> list[int]:
        """Approve queued letters of one batch, or one letter; held letters stay held. The ids this
        call approved, in order (RETURNING: a letter two officers approve at once is counted once)."""
        from sqlalchemy import update

        t = schema.letters
        query = update(t).where(t.c.status == "queued").values(status="approved", approved_at=now).returning(t.c.id)
        if batch is not None:
            query = query.where(t.c.batch == batch)
        if letter_id is not None:
            query = query.where(t.c.id == letter_id)
        with self.engine.begin() as conn:
            return sorted(conn.execute(query).scalars())

    def mark_dispatched(self, refs: dict[int, str], *, now: dt.datetime) -> int:
        """Mark approved letters dispatched, each with its print batch file or Message-ID(s); a problem
        recorded by an earlier dispatch (`record_problem`) is cleared."""
        from sqlalchemy import bindparam, update

        if not refs:
            return 0
        t = schema.letters
        with self.engine.begin() as conn:
            result = conn.execute(
                update(t)
                .where(t.c.id == bindparam("b_id"), t.c.status == "approved")
                .values(status="dispatched", dispatched_at=now, dispatch_ref=bindparam("b_ref"), hold_reason=None),
                [{"b_id": letter_id, "b_ref": ref} for letter_id, ref in refs.items()],
            )
            return result.rowcount

    def claim_for_print(self, letter_ids: Sequence[int], batch_file: str) -> int:
        """Give approved letters not yet in a print batch this batch's file name, marked as being
        written; a letter another dispatch claimed meanwhile is left to it. Returns how many."""
        from sqlalchemy import update

        t = schema.letters
        claimed = 0
        with self.engine.begin() as conn:
            for chunk in _chunks(list(letter_ids)):
                claimed += conn.execute(
                    update(t)
                    .where(t.c.id.in_(chunk), t.c.status == "approved", t.c.dispatch_ref.is_(None))
                    .values(dispatch_ref=batch_file + BEING_WRITTEN)
                ).rowcount
        return claimed

    def printed(self, batch_file: str, *, now: dt.datetime) -> int:
        """The batch's files are complete: in one transaction its post-only letters are dispatched and
        the others (post and email) keep the batch's name, waiting only for their email. Returns how
        many were dispatched."""
        from sqlalchemy import update

        t = schema.letters
        writing = t.c.dispatch_ref == batch_file + BEING_WRITTEN
        with self.engine.begin() as conn:
            dispatched = conn.execute(
                update(t)
                .where(writing, t.c.status == "approved", t.c.channels == "post")
                .values(status="dispatched", dispatched_at=now, dispatch_ref=batch_file, hold_reason=None)
            ).rowcount
            conn.execute(update(t).where(writing, t.c.status == "approved").values(dispatch_ref=batch_file))
        return dispatched

    def record_problem(self, problems: dict[int, str]) -> int:
        """Why approved letters could not be dispatched, in `hold_reason` for the officer's list;
        they stay approved, and the next dispatch tries them again."""
        from sqlalchemy import bindparam, update

        if not problems:
            return 0
        t = schema.letters
        with self.engine.begin() as conn:
            return conn.execute(
                update(t).where(t.c.id == bindparam("b_id"), t.c.status == "approved")
                .values(hold_reason=bindparam("b_reason")),
                [{"b_id": letter_id, "b_reason": reason} for letter_id, reason in problems.items()],
            ).rowcount

    # --- dates at dispatch, telling recorded, the export ----------

    def redate(
        self, letter_id: int, letter: NewLetter, *, dated_was: dt.date, english_pdf_path: str | None = None,
    ) -> int:
        """An approved or queued letter, not in any print batch yet, takes its rendering dated
        `letter.dated_on`: who and where (as the register now has them), HTML, PDF, date and appeal
        deadline; status, hold, key and batch stay. Guarded by the date it bore (`dated_was`): 0 when
        another process re-dated it meanwhile, or it left for a print batch."""
        from sqlalchemy import update

        t = schema.letters
        values: dict[str, Any] = {
            "person_ref": letter.person_ref, "person_name": letter.person_name,
            "address_lines": "\n".join(letter.address_lines), "email": letter.email,
            "channels": "+".join(letter.channels), "large_print": int(letter.large_print), "html": letter.html,
            "pdf_path": letter.pdf_path, "dated_on": letter.dated_on, "appeal_by": letter.appeal_by,
        }
        if english_pdf_path is not None:  # a translated letter: the English part was rendered again
            values["english_pdf_path"] = english_pdf_path
        query = update(t).where(
            t.c.id == letter_id, t.c.status.in_(("queued", "approved")), t.c.dispatch_ref.is_(None),
            t.c.dated_on == dated_was,
        ).values(**values)
        with self.engine.begin() as conn:
            return conn.execute(query).rowcount

    def record_told(self) -> int:
        """Record in the register that the resident was told of each alert whose "alert added" letter
        has been dispatched: `alerts.told_on`, the date that letter bears (the day it left), set only
        where empty (the first telling counts; the source's `notified_on` is another column and never
        written). Derived from the dispatched letters, so it is idempotent and a dispatch that died
        before recording is mended by the next. Returns how many alerts it set."""
        t = schema.letters
        told = (
            f"SELECT MIN(l.dated_on) FROM {t.name} l WHERE l.alert_id = alerts.alert_id "
            "AND l.kind = 'alert_added' AND l.status = 'dispatched'"
        )
        with self.engine.begin() as conn:
            return conn.exec_driver_sql(
                f"UPDATE alerts SET told_on = ({told}) WHERE told_on IS NULL AND alert_id IN "
                f"(SELECT alert_id FROM {t.name} WHERE kind = 'alert_added' AND status = 'dispatched')"
            ).rowcount

    def dispatched_since(self, since: dt.date) -> list[StoredLetter]:
        """The dispatched letters dated `since` or later, by date then id (the housing system's export)."""
        from sqlalchemy import select

        t = schema.letters
        query = (
            select(*(t.c[c] for c in _LISTED))
            .where(t.c.status == "dispatched", t.c.dated_on >= since)
            .order_by(t.c.dated_on, t.c.id)
        )
        with self.engine.connect() as conn:
            return [_stored(r) for r in conn.execute(query)]


_LISTED = (
    "id", "letter_key", "alert_id", "person_ref", "person_name", "address_lines", "email", "kind", "outcome",
    "alert_code", "decision_date", "as_of", "batch", "status", "hold_reason", "channels", "large_print",
    "language", "pdf_path", "dispatch_ref", "translated_at", "translation_file", "english_pdf_path",
    "dated_on", "appeal_by",
)


def _stored(r: Any) -> StoredLetter:
    values = dict(zip(_LISTED, r, strict=True))
    return StoredLetter(
        **{
            **values,
            "address_lines": tuple(line for line in (values["address_lines"] or "").split("\n") if line),
            "decision_date": _date(values["decision_date"]),
            "as_of": _date(values["as_of"]),
            "batch": _date(values["batch"]),
            "channels": tuple(values["channels"].split("+")),
            "large_print": bool(values["large_print"]),
            "dated_on": _date(values["dated_on"]) if values["dated_on"] is not None else None,
            "appeal_by": _date(values["appeal_by"]) if values["appeal_by"] is not None else None,
        }
    )


def _insert_ignoring_duplicates(conn: Connection) -> Any:
    """INSERT that skips a key another run queued meanwhile (ON CONFLICT DO NOTHING)."""
    if conn.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as pg_insert

        return pg_insert(schema.letters).on_conflict_do_nothing(index_elements=["letter_key"])
    if conn.dialect.name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(schema.letters).on_conflict_do_nothing(index_elements=["letter_key"])
    from sqlalchemy import insert

    return insert(schema.letters)


class LetterReads:
    """What the letters read of the register itself: the alerts the letters policy judges."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def alerts_with_deadlines(self, alert_ids: Sequence[str] | None = None) -> list[dict[str, Any]]:
        """Every alert (active and ended) with its stored review_due and expires_on; only those of
        `alert_ids` when given (the letters being dated again at approval or dispatch)."""
        from cautionflow.adapters.database import fetch_all

        # The resident was told when the source says, else when cautionflow's letter went (one expression,
        # `register_schema.NOTIFIED_OR_TOLD`): a letter's alert is never "never told" once it has gone.
        columns = ", ".join(schema.NOTIFIED_OR_TOLD if c == "notified_on" else f"a.{c}" for c in ALERT_COLUMNS)
        select = (f"SELECT {columns}, d.review_due, d.expires_on FROM alerts a "
                  "LEFT JOIN alert_deadlines d ON d.alert_id = a.alert_id")
        found: list[tuple[Any, ...]] = []
        with self.engine.connect() as conn:
            if alert_ids is None:
                names, found = fetch_all(conn, f"{select} ORDER BY a.alert_id")
            else:
                names = []
                for chunk in _chunks(list(dict.fromkeys(alert_ids))):
                    marks = ", ".join("?" * len(chunk))
                    names, rows = fetch_all(conn, f"{select} WHERE a.alert_id IN ({marks}) ORDER BY a.alert_id", chunk)
                    found.extend(rows)
        return [dict(zip(names, row, strict=True)) for row in found]


class LetterFlags:
    """The officers' list (`letter_flags`): one row per (alert, flag), open until a later run no longer
    finds it. Recording the same day twice writes nothing the second time."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine

    def record(self, items: Iterable[Any], *, as_of: dt.date, run_id: str) -> dict[str, int]:
        """Record today's flags (objects with alert_id, code, reason); resolve the open ones no longer
        found. A rerun of an earlier day never moves a flag back in time. Returns counts."""
        from sqlalchemy import bindparam, insert, select, update

        t = schema.letter_flags
        today = {(i.alert_id, i.code): i for i in items}
        new: list[dict[str, Any]] = []
        seen: list[dict[str, Any]] = []
        resolved: list[dict[str, Any]] = []
        with self.engine.begin() as conn:
            existing = {
                (r.alert_id, r.flag): r
                for r in conn.execute(select(t.c.id, t.c.alert_id, t.c.flag, t.c.last_flagged_on, t.c.resolved_on))
            }
            for key, item in today.items():
                row = existing.get(key)
                if row is None:
                    new.append({"alert_id": item.alert_id, "flag": item.code, "reason": item.reason,
                                "first_flagged_on": as_of, "last_flagged_on": as_of, "resolved_on": None,
                                "first_run_id": run_id, "last_run_id": run_id})
                elif _date(row.last_flagged_on) < as_of or (
                    row.resolved_on is not None and _date(row.resolved_on) <= as_of
                ):
                    seen.append({"b_id": row.id, "b_reason": item.reason})
            for key, row in existing.items():
                if key not in today and row.resolved_on is None and _date(row.last_flagged_on) <= as_of:
                    resolved.append({"b_id": row.id})
            if new:
                conn.execute(insert(t), new)
            if seen:
                conn.execute(
                    update(t).where(t.c.id == bindparam("b_id")).values(
                        reason=bindparam("b_reason"), last_flagged_on=as_of, resolved_on=None, last_run_id=run_id),
                    seen,
                )
            if resolved:
                conn.execute(
                    update(t).where(t.c.id == bindparam("b_id")).values(resolved_on=as_of, last_run_id=run_id),
                    resolved,
                )
        still_open = sum(1 for key, row in existing.items() if key in today)
        return {"open": len(today), "new": len(new), "still_open": still_open, "resolved": len(resolved)}

    def list(self, *, include_resolved: bool = False) -> list[StoredFlag]:
        """The flags, oldest first, with the alert's person and code (read from the register, so the
        flag itself holds no personal details)."""
        from sqlalchemy import select

        t, a = schema.letter_flags, schema.alerts
        query = (
            select(t.c.id, t.c.alert_id, a.c.person_name, a.c.alert_code, t.c.flag, t.c.reason,
                   t.c.first_flagged_on, t.c.last_flagged_on, t.c.resolved_on)
            .select_from(t.outerjoin(a, a.c.alert_id == t.c.alert_id))
            .order_by(t.c.first_flagged_on, t.c.alert_id, t.c.flag)
        )
        if not include_resolved:
            query = query.where(t.c.resolved_on.is_(None))
        with self.engine.connect() as conn:
            rows = conn.execute(query).all()
        return [
            StoredFlag(id=r.id, alert_id=r.alert_id, person_name=r.person_name or "", alert_code=r.alert_code or "",
                       flag=r.flag, reason=r.reason, first_flagged_on=_date(r.first_flagged_on),
                       last_flagged_on=_date(r.last_flagged_on),
                       resolved_on=_date(r.resolved_on) if r.resolved_on is not None else None)
            for r in rows
        ]
