"""The project's own Jinja2 environment for emails, letters and reports (not Airflow's templating).

Sandboxed, so a landlord's template override cannot reach Python internals; HTML autoescaped,
so an address containing `<script>` arrives as text, not markup. A landlord's `templates_dir`
is searched before the shipped `include/templates`.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

    from cautionflow.config import CautionflowConfig


def long_date(value: dt.date | None) -> str:
    """'18 January 2027', as letters and emails spell dates out."""
    return "" if value is None else f"{value.day} {value:%B %Y}"


def short_date(value: dt.date | None) -> str:
    """'18/01/2027', as the landlord's SSRS reports show dates (Teign Appendix F)."""
    return "" if value is None else value.strftime("%d/%m/%Y")


def template_environment(config: CautionflowConfig) -> SandboxedEnvironment:
    from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
    from jinja2.sandbox import SandboxedEnvironment

    folders = [str(config.path(config.templates_dir))] if config.templates_dir else []
    folders.append(str(config.path("include/templates")))
    env = SandboxedEnvironment(
        loader=FileSystemLoader(folders),
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["long_date"] = long_date
    env.filters["short_date"] = short_date
    return env
