"""Subject access export: gather what the register holds about one person, render it, write it.

The rules (what is withheld from the resident's copy, Hexagon 5.5) are in
`cautionflow.domain.subject_access`; this module gathers the register's rows (alerts, history,
deadlines, letters, the quarantine and the look-ups' log through `adapters.subject_access_reads`, the disclosure log
through `adapters.outbox`) and renders the export as JSON, HTML (`include/templates/dsar/export.html`)
or an A4 PDF drawn from the same template with the letters' layout (`adapters.pdf`).
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cautionflow.domain import subject_access as d

if TYPE_CHECKING:
    from cautionflow.adapters.outbox import Outbox
    from cautionflow.adapters.subject_access_reads import SubjectAccessReads

FORMATS = ("json", "html", "pdf")
TEMPLATE = "dsar/export.html"
PDF_PT = 10.0
NOT_RECORDED = "not recorded"
_ISO_DATE = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]+)?)?([+-][0-9:]+|Z)?)?")


class SubjectAccessRegister(Protocol):
    """What the export uses of the register (`adapters.register.Register`)."""

    subject_access: SubjectAccessReads
    outbox: Outbox

    def migrate(self) -> None: ...


def gather_export(
    register: SubjectAccessRegister, person_ref: str, *, include_withheld: bool, organisation: str,
    produced_on: dt.date,
) -> d.SubjectAccessExport:
    """Everything the register holds about `person_ref`; raises domain UnknownPerson when nothing."""
    register.migrate()
    records = register.subject_access.records_of(person_ref)
    outbox = register.outbox
    try:
        disclosures = [
            d.DisclosureEntry(
                alert_id=x.alert_id, recipient_name=x.recipient_name, recipient_role=x.recipient_role,
                recipient_email=x.recipient_email, kind=x.kind, listed_as=x.listed_as, disclosed_on=x.disclosed_on,
                disclosed_at=x.disclosed_at, message_id=x.message_id,
            )
            for alert_id in records.alert_ids
            for x in outbox.disclosures_for_alert(alert_id)
        ]
    finally:
        outbox.close()
    return d.build_export(
        person_ref, alerts=records.alerts, history=records.history, deadlines=records.deadlines,
        letters=records.letters, disclosures=disclosures, lookups=records.lookups, quarantined=records.quarantined,
        include_withheld=include_withheld, organisation=organisation, produced_on=produced_on,
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
    """An A4 PDF of the export, laid out by the letters' own PDF layout from the template's body."""
    from cautionflow.adapters.pdf import document_pdf

    body = render_html(export, render, pdf=True)
    return document_pdf(
        body, size=PDF_PT, title=f"{export.organisation}: subject access export {export.person_ref}",
        created_on=export.produced_on,
    )


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
    """Render the whole export first, then write it, so a failure leaves no half-written file.
    `path` is a `Path` or an ObjectStoragePath (the output folder on an object store)."""
    from cautionflow.adapters.files import write_bytes_atomically

    content = export_bytes(export, fmt, render)
    write_bytes_atomically(path, content)
    return path
