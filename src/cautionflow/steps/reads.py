"""What people read from the register on demand: the status command, the register page's figures
and review lists, its reports, and a person's subject access export."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from cautionflow.adapters.storage import reports_storage, storage_path
from cautionflow.services.register_page import HORIZON_DAYS, REVIEW_LISTS
from cautionflow.steps.wiring import open_register, renderer

if TYPE_CHECKING:
    from pathlib import Path

    from cautionflow.config import CautionflowConfig
    from cautionflow.domain.subject_access import SubjectAccessExport
    from cautionflow.services.register_page import RegisterPage, ReportGroup, ReviewRow

__all__ = ["HORIZON_DAYS", "REVIEW_LISTS", "ExportNotWritten", "letter_pdf_file", "register_page",
           "register_status", "report_file", "report_files", "review_list", "subject_access_export"]


def register_status(config: CautionflowConfig) -> tuple[dict[str, Any], str]:
    """`cautionflow status`: the register's figures, and the same as lines for a person."""
    from cautionflow.services.status import format_status, register_status

    with open_register(config) as register:
        status = register_status(register)
    return status, format_status(status, organisation=config.organisation)


def register_page(config: CautionflowConfig) -> RegisterPage:
    """The register page's figures, as of the latest run (read-only: nothing is migrated or created)."""
    from cautionflow.services.register_page import register_page

    with open_register(config) as register:
        return register_page(register)


def review_list(
    config: CautionflowConfig, which: str, *, code: str | None, area: str | None,
) -> tuple[dt.date | None, list[ReviewRow]]:
    """The register page's "overdue" or "due" review list, optionally of one code or area."""
    from cautionflow.services.register_page import review_list

    with open_register(config) as register:
        return review_list(register, which, code=code, area=area)


def report_files(config: CautionflowConfig) -> list[ReportGroup]:
    """The known report files in the configured output folder, newest first per kind."""
    from cautionflow.services.register_page import find_reports

    return find_reports(reports_storage(config), equality_configured=config.equality is not None)


def report_file(config: CautionflowConfig, name: str) -> Path | None:
    """The report called `name` directly in the output folder, or None (never anything else there)."""
    from cautionflow.services.register_page import report_file

    return report_file(reports_storage(config), name)


def letter_pdf_file(config: CautionflowConfig, letter_id: int) -> Path | None:
    """The PDF of a letter not dispatched yet (held, queued or approved), for the register page's
    link; None for any other id. Only the path the queue records, inside `letters.output_dir`."""
    from cautionflow.adapters.files import local_path
    from cautionflow.services.letters import stored_pdf

    if config.letters is None:
        return None
    with open_register(config) as register:
        letter = register.letter_queue.get(letter_id)
    if letter is None or letter.status not in ("held", "queued", "approved"):
        return None
    folder = storage_path(config, config.letters.output_dir)
    local = local_path(folder)
    if local is not None:  # the local disk: the resolved file (symlinks followed) inside the resolved folder
        root = local.resolve()
        inside = stored_pdf(root, letter.pdf_path).resolve().is_relative_to(root)
    else:  # an object store: the key, `..` taken literally by no store, must not climb out of the prefix
        inside = ".." not in letter.pdf_path.split("/") and not letter.pdf_path.startswith("/")
    path = stored_pdf(folder, letter.pdf_path)
    return path if inside and path.suffix == ".pdf" and path.is_file() else None


class ExportNotWritten(Exception):
    """A subject access export that was not written, and why (one line; nothing was written)."""


def subject_access_export(
    config: CautionflowConfig, person_ref: str, *, fmt: str, produced_on: dt.date, include_withheld: bool,
    output: Path | str | None, force: bool,
) -> tuple[SubjectAccessExport, Path]:
    """Gather everything the register holds about one person and write it as `fmt` to `output` (or
    the output folder's dsar/ file for the person, through its storage). `output` is a local path
    or a URL (`s3://bucket/key`, through `storage_conn_id`). Never replaces an existing file unless
    `force`: an export is personal data sent to a person."""
    from pathlib import Path

    from cautionflow.config import shown_path, storage_scheme
    from cautionflow.domain.subject_access import UnknownPerson
    from cautionflow.services.subject_access import default_path, gather_export, write_export

    with open_register(config) as register:
        try:
            export = gather_export(
                register, person_ref, include_withheld=include_withheld, organisation=config.organisation,
                produced_on=produced_on,
            )
        except UnknownPerson:
            raise ExportNotWritten(
                f"the register {register.describe()} holds nothing about person reference {person_ref!r} "
                "(no alert, letter or quarantined row); check the reference in the housing system. No file written."
            ) from None
    if output is None:
        path = default_path(reports_storage(config), export, fmt)
    elif storage_scheme(str(output)) is not None:  # a URL the user gave: through Airflow's object storage
        path = storage_path(config, str(output))
    else:
        path = Path(output)  # a local path the user gave, as they gave it
    if path.exists() and not force:
        raise ExportNotWritten(f"{shown_path(path)} exists; choose another --output or add --force to replace it. No file written.")
    write_export(export, fmt, renderer(config), path)
    return export, path
