"""The project's own Jinja2 environment for emails, letters and reports (not Airflow's templating).

Sandboxed, so a landlord's template override cannot reach Python internals; HTML autoescaped,
so an address containing `<script>` arrives as text, not markup. A landlord's `templates_dir`
is searched before the project home's `include/templates`, then the templates the package ships.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

from cautionflow.frames import is_missing
from cautionflow.resources import shipped_folder

if TYPE_CHECKING:
    from jinja2.sandbox import SandboxedEnvironment

    from cautionflow.config import CautionflowConfig


# The templates the package ships (package data, see cautionflow.resources), for deployments whose
# home has no include/ folder, such as an installed wheel run from any directory.
SHIPPED_TEMPLATES = shipped_folder("templates")


def long_date(value: dt.date | None) -> str:
    """'18 January 2027', as letters and emails spell dates out."""
    return "" if value is None else f"{value.day} {value:%B %Y}"


def short_date(value: dt.date | None) -> str:
    """'18/01/2027', as the landlord's SSRS reports show dates (Teign Appendix F)."""
    return "" if value is None else value.strftime("%d/%m/%Y")


def blank_if_missing(value: object) -> object:
    """Jinja's `finalize`, applied to every printed expression: a missing value (None, NaN, NaT, pd.NA)
    prints as nothing, never as "None" or "nan"; a template states a placeholder where a
    blank would mislead."""
    return "" if is_missing(value) else value


def template_environment(config: CautionflowConfig) -> SandboxedEnvironment:
    from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
    from jinja2.sandbox import SandboxedEnvironment

    folders = [str(config.path(config.templates_dir))] if config.templates_dir else []
    folders.append(str(config.path("include/templates")))
    if SHIPPED_TEMPLATES.is_dir() and str(SHIPPED_TEMPLATES) not in folders:
        folders.append(str(SHIPPED_TEMPLATES))
    env = SandboxedEnvironment(
        loader=FileSystemLoader(folders),
        autoescape=select_autoescape(enabled_extensions=("html", "htm", "xml"), default_for_string=True),
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        finalize=blank_if_missing,
    )
    env.filters["long_date"] = long_date
    env.filters["short_date"] = short_date
    return env


def renderer(config: CautionflowConfig):
    """render(name, **values) -> str; a missing or broken template is a one-line ConfigError."""
    from jinja2 import TemplateError, TemplateNotFound

    from cautionflow.config import ConfigError

    environment = template_environment(config)

    def render(name: str, **values: object) -> str:
        try:
            template = environment.get_template(name)
        except TemplateNotFound:
            searched = ", ".join(environment.loader.searchpath)  # type: ignore[union-attr]
            raise ConfigError(f"template '{name}' not found in {searched}") from None
        except TemplateError as exc:
            raise ConfigError(f"template {name}: {type(exc).__name__}: {exc}") from None
        try:
            return template.render(**values)
        except TemplateError as exc:
            raise ConfigError(f"template {name}: {type(exc).__name__}: {exc}") from None

    return render
