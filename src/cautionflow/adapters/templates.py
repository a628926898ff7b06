"""The project's own Jinja2 environment for emails, letters and reports (not Airflow's templating).

Sandboxed, so a landlord's template override cannot reach Python internals; HTML autoescaped,
so an address containing `<script>` arrives as text, not markup. A landlord's `templates_dir`
is searched before the project home's `include/templates`, then the templates the package ships.
"""

from __future__ import annotations

import datetime as dt
import functools
import weakref
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

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


def _frozen(value: Any) -> Any:
    """A macro's list-wide arguments as a dictionary key: lists (a template's own) as tuples."""
    if type(value) is tuple:
        try:
            hash(value)  # already a key (flag_columns' tuples): no walk through it
            return value
        except TypeError:
            pass
    if isinstance(value, list | tuple):
        return tuple(_frozen(v) for v in value)
    return value


def _joined(parts: list[Any]) -> Any:
    """Macro outputs as one: Markup from an autoescaped template's macros (printed as is), else text."""
    from markupsafe import Markup

    text = "".join(parts)
    return Markup(text) if parts and isinstance(parts[0], Markup) else text


class RowFragments:
    """Each row's markup written once per environment (one step's run), not once per recipient:
    `each_row(macro, rows, *args)` and `each_card(macro, rows, *args)`, template globals.

    A row is remembered by identity, and only a read-only one (`types.MappingProxyType`, as the
    digests and urgent notices pass): a flag in many recipients' digests is the one shared row, so
    its macro runs once (a digest lists every flag twice, as a table and as cards, so this is
    most of its rendering). The memo holds each row it remembers, so no other row can take its
    identity while it is remembered. A macro is remembered with its list-wide arguments (columns,
    labels), and only while it lives (an imported template's macros live with the environment).
    A macro so used must write from its arguments only, never from the template's other values."""

    LIMIT = 50_000  # fragments remembered before the memo starts again (tens of MB): memory, not correctness

    def __init__(self) -> None:
        self._memo: weakref.WeakKeyDictionary[Callable[..., Any], dict[Any, dict[Any, tuple[Any, ...]]]] = (
            weakref.WeakKeyDictionary())
        self._size = 0

    def _for(self, macro: Callable[..., Any], args: tuple[Any, ...]) -> dict[Any, tuple[Any, ...]]:
        if self._size > self.LIMIT:
            self._memo.clear()
            self._size = 0
        by_args = self._memo.get(macro)
        if by_args is None:
            by_args = self._memo[macro] = {}
        return by_args.setdefault(_frozen(args), {})

    def each_row(self, macro: Callable[..., Any], rows: Iterable[Mapping[str, Any]], *args: Any) -> Any:
        """`macro(row, *args)` for each row, joined."""
        memo = self._for(macro, args)
        parts = []
        for row in rows:
            hit = memo.get(id(row))
            if hit is None or hit[0] is not row:
                text = macro(row, *args)
                if type(row) is MappingProxyType:
                    memo[id(row)] = (row, text)
                    self._size += 1
            else:
                text = hit[1]
            parts.append(text)
        return _joined(parts)

    def each_card(self, macro: Callable[..., Any], rows: Iterable[Mapping[str, Any]], *args: Any) -> Any:
        """`macro(row, first, opens, closes, *args)` for each row, joined: consecutive rows with the
        same address and postcode are one card; `opens` a row that starts a card, `closes` when a
        card before it is open, `first` the first row of the row's card."""
        memo = self._for(macro, args)
        parts = []
        place: tuple[Any, Any] | None = None
        first: Mapping[str, Any] | None = None
        for row in rows:
            here = (row["address"] if "address" in row else "", row["postcode"] if "postcode" in row else "")
            opens = first is None or here != place
            closes = opens and first is not None
            if opens:
                place, first = here, row
            key = (id(row), id(first), opens, closes)
            hit = memo.get(key)
            if hit is None or hit[0] is not row or hit[1] is not first:
                text = macro(row, first, opens, closes, *args)
                if type(row) is MappingProxyType and type(first) is MappingProxyType:
                    memo[key] = (row, first, text)
                    self._size += 1
            else:
                text = hit[2]
            parts.append(text)
        return _joined(parts)


# A card's heading shows where (address and postcode, then these); its alerts the other columns.
_CARD_HEADING = ("area", "asset_ref")
_CARD_OWN = ("address", "postcode", "alert_code", "required_action")


@functools.lru_cache(maxsize=64)
def _flag_columns(pairs: tuple[tuple[str, str], ...]) -> tuple[int, tuple[Any, ...], tuple[Any, ...], tuple[str, ...]]:
    keys = [key for key, _ in pairs]
    code_at = keys.index("alert_code") if "alert_code" in keys else -1
    heading = tuple(pair for pair in pairs if pair[0] in _CARD_HEADING)
    others = tuple(pair for pair in pairs if pair[0] not in _CARD_OWN)
    return code_at, heading, others, tuple(label for _, label in pairs)


def flag_columns(columns: Iterable[Any]) -> tuple[int, tuple[Any, ...], tuple[Any, ...], tuple[str, ...]]:
    """A list of flags' columns as the layout uses them, worked out once per set of columns (a
    template global; a template loop over them costs the sandbox's checks on every attribute, for
    every list of every recipient): (the alert code's position or -1, the card heading's (key,
    label) pairs, the pairs each alert of a card lists, the labels in order)."""
    return _flag_columns(tuple((str(c.key), str(c.label)) for c in columns))


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
        # Each renderer() builds its own environment (one step's run, one page's request): a file
        # changed meanwhile is read by the next. Without this every render, and every import of a
        # layout within one, checks the file's modification time: a tenth of a digest's rendering.
        auto_reload=False,
    )
    env.filters["long_date"] = long_date
    env.filters["short_date"] = short_date
    fragments = RowFragments()
    env.globals["each_row"] = fragments.each_row
    env.globals["each_card"] = fragments.each_card
    env.globals["flag_columns"] = flag_columns
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
