"""Subject access export: gather what the register holds about one person, render it, write it.

The rules (what is withheld from the resident's copy, Hexagon 5.5) are in
`cautionflow.domain.subject_access`; this module reads the register's rows (alerts, history,
deadlines, letters, the disclosure log through `adapters.outbox`, the quarantine) and renders the
export as JSON, HTML (`include/templates/dsar/export.html`) or an A4 PDF drawn from the same
template with the letters' fpdf2 layout (`services.letters`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cautionflow.domain import subject_access as d

if TYPE_CHECKING:
    from cautionflow.adapters.register import Register

FORMATS = ("json", "html", "pdf")
TEMPLATE = "dsar/export.html"
PDF_PT = 10.0
NOT_RECORDED = "not recorded"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([+-][0-9:]+|Z)?)?")


def gather_export(
    register: Register, person_ref: str, *, include_withheld: bool, organisation: str, produced_on: dt.date
) -> d.SubjectAccessExport:
    """Everything the register holds about `person_ref`; raises domain UnknownPerson when nothing."""
    from sqlalchemy import or_, select

    from cautionflow.adapters import register_schema as schema
    from cautionflow.adapters.outbox import Outbox

    register.migrate()
    a, h, dl, lt, q = schema.alerts, schema.alert_history, schema.alert_deadlines, schema.letters, schema.quarantine
    with register.engine.connect() as conn:
        alerts = [dict(r._mapping) for r in conn.execute(select(a).where(a.c.person_ref == person_ref))]
        ids = [row["alert_id"] for row in alerts]
        history = [
            dict(r._mapping)
            for r in conn.execute(select(h).where(h.c.alert_id.in_(ids)).order_by(h.c.id))
        ] if ids else []
        deadlines = [dict(r._mapping) for r in conn.execute(select(dl).where(dl.c.alert_id.in_(ids)))] if ids else []
        letter_rows = conn.execute(
            select(lt).where(or_(lt.c.person_ref == person_ref, lt.c.alert_id.in_(ids))).order_by(lt.c.id)
        ).all()
        # The raw row is JSON text: narrow with LIKE, then match the parsed person_ref exactly.
        quarantine_rows = conn.execute(
            select(q.c.reason, q.c.first_seen_on, q.c.resolved_on, q.c.raw_row)
            .where(q.c.raw_row.contains(person_ref, autoescape=True))
            .order_by(q.c.id)
        ).all()
    letters = [
        d.LetterEntry(
            letter_id=r.id, alert_id=r.alert_id, kind=r.kind, outcome=r.outcome, decision_date=r.decision_date,
            queued_on=r.as_of, status=r.status, hold_reason=r.hold_reason, channels=r.channels,
            person_name=r.person_name or None,
            address_lines=tuple(line for line in (r.address_lines or "").split("\n") if line),
            email=r.email, dispatched_at=r.dispatched_at,
        )
        for r in letter_rows
    ]
    quarantined = []
    for reason, first_seen_on, resolved_on, raw_row in quarantine_rows:
        try:
            raw = json.loads(raw_row)
        except ValueError:
            continue
        if isinstance(raw, dict) and str(raw.get("person_ref") or "").strip() == person_ref:
            quarantined.append({"reason": reason, "first_seen_on": first_seen_on, "resolved_on": resolved_on, "raw": raw})
    outbox = Outbox(register.engine)
    try:
        disclosures = [
            d.DisclosureEntry(
                alert_id=x.alert_id, recipient_name=x.recipient_name, recipient_role=x.recipient_role,
                recipient_email=x.recipient_email, kind=x.kind, listed_as=x.listed_as, disclosed_on=x.disclosed_on,
                disclosed_at=x.disclosed_at, message_id=x.message_id,
            )
            for alert_id in ids
            for x in outbox.disclosures_for_alert(alert_id)
        ]
    finally:
        outbox.close()
    return d.build_export(
        person_ref, alerts=alerts, history=history, deadlines=deadlines, letters=letters, disclosures=disclosures,
        quarantined=quarantined, include_withheld=include_withheld, organisation=organisation,
        produced_on=produced_on,
    )


# --- rendering ----------------------------------------------------------------------------------


def display(value: Any) -> str:
    """A value as the HTML and PDF show it: dates spelt out, empty values 'not recorded'."""
    from cautionflow.adapters.templates import long_date
    from cautionflow.frames import is_missing

    if is_missing(value) or value == "":  # a quarantined raw row's JSON may hold NaN
        return NOT_RECORDED
    if isinstance(value, dt.datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=dt.UTC)
        return f"{long_date(moment.astimezone(dt.UTC).date())} {moment.astimezone(dt.UTC):%H:%M} UTC"
    if isinstance(value, dt.date):
        return long_date(value)
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        try:
            return long_date(dt.date.fromisoformat(value[:10])) + (f" {value[11:16]}" if len(value) > 10 else "")
        except ValueError:
            return value
    return str(value)


def render_html(export: d.SubjectAccessExport, render: Callable[..., str], *, pdf: bool = False) -> str:
    return render(TEMPLATE, export=export, show=display, pdf=pdf)


def export_pdf(export: d.SubjectAccessExport, render: Callable[..., str]) -> bytes:
    """An A4 PDF of the export, laid out by the letters' own fpdf2 code from the template's body."""
    from fpdf import FPDF

    from cautionflow.services.letters import PdfBlocks, PdfFace, latin1, lay_out_pdf

    body = render_html(export, render, pdf=True)
    pdf = FPDF(format="A4", unit="mm")
    pdf.set_creation_date(dt.datetime.combine(export.produced_on, dt.time(), dt.UTC))
    pdf.set_title(latin1(f"{export.organisation}: subject access export {export.person_ref}"))
    pdf.set_margins(20, 15, 20)
    pdf.set_auto_page_break(False)
    pdf.add_page()
    pdf.set_y(15)
    lay_out_pdf(pdf, PdfBlocks().feed(body), PDF_PT, PdfFace(pdf, body))
    return bytes(pdf.output())


def export_bytes(export: d.SubjectAccessExport, fmt: str, render: Callable[..., str]) -> bytes:
    if fmt == "json":
        return (json.dumps(export.as_dict(), indent=2, ensure_ascii=False, sort_keys=False) + "\n").encode()
    if fmt == "html":
        return render_html(export, render).encode()
    if fmt == "pdf":
        return export_pdf(export, render)
    raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def default_path(output_dir: Path, export: d.SubjectAccessExport, fmt: str) -> Path:
    safe = re.sub(r"[^A-Za-z0-9_-]", "_", export.person_ref)[:40]
    return output_dir / "dsar" / f"dsar-{safe}-{export.produced_on.isoformat()}-{export.copy}.{fmt}"


def write_export(export: d.SubjectAccessExport, fmt: str, render: Callable[..., str], path: Path) -> Path:
    """Render the whole export first, then write it, so a failure leaves no half-written file."""
    content = export_bytes(export, fmt, render)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".part")
    tmp.write_bytes(content)
    tmp.replace(path)
    return path
