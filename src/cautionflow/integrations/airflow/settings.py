"""cautionflow's settings inside Airflow: config from the Variable, secrets from Connections.

Everything here runs inside a task (or the api-server), never at DAG parse time. The config file's
path comes from the Variable `cautionflow_config`; the Connections `housing_db`,
`cautionflow_register` (and `cautionflow_smtp`, for mail) override the file's URLs and SMTP settings
when they are defined, so credentials live in Airflow rather than in the file. Nothing here logs a
URL with a password.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from email.utils import parseaddr
from typing import Any

from cautionflow.config import CONFIG_ENV, CautionflowConfig, ConfigError

log = logging.getLogger(__name__)

CONFIG_VARIABLE = "cautionflow_config"
DEFAULT_CONFIG_PATH = "include/config/cautionflow.yaml"
SOURCE_CONNECTION = "housing_db"
REGISTER_CONNECTION = "cautionflow_register"
SMTP_CONNECTION = "cautionflow_smtp"


def connection_url(conn: Any) -> str:
    """A SQLAlchemy URL for an Airflow Connection (postgres, sqlite, or extra `sqlalchemy_url`)."""
    from sqlalchemy.engine import URL

    extra = conn.extra_dejson or {}
    if extra.get("sqlalchemy_url"):
        return str(extra["sqlalchemy_url"])
    conn_type = (conn.conn_type or "").lower()
    if conn_type in {"postgres", "postgresql"}:
        return URL.create(
            "postgresql+psycopg",
            username=conn.login or None,
            password=conn.password or None,
            host=conn.host or None,
            port=conn.port or None,
            database=conn.schema or None,
        ).render_as_string(hide_password=False)
    if conn_type == "sqlite":
        return f"sqlite:///{conn.host}"
    raise ValueError(
        f"connection '{conn.conn_id}' has type '{conn.conn_type}'; use postgres or sqlite, "
        "or put a SQLAlchemy URL in its extra as {\"sqlalchemy_url\": ...}"
    )


def _optional_connection(conn_id: str) -> Any | None:
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        return Connection.get(conn_id)
    except AirflowNotFoundException:
        return None


def config_from_airflow() -> CautionflowConfig:
    from airflow.sdk import Variable

    from cautionflow.config import load_config, resolve_url

    path = Variable.get(CONFIG_VARIABLE, default=DEFAULT_CONFIG_PATH)
    config = load_config(path)
    updates: dict[str, Any] = {}
    home = config.path(".")
    register = _optional_connection(REGISTER_CONNECTION)
    if register is not None:
        updates["register_url"] = resolve_url(connection_url(register), home)
        log.info("register from Airflow connection %s", REGISTER_CONNECTION)
    source = _optional_connection(SOURCE_CONNECTION)
    if source is not None:
        updates["source"] = config.source.model_copy(update={"url": resolve_url(connection_url(source), home)})
        log.info("housing database from Airflow connection %s", SOURCE_CONNECTION)
    return config.model_copy(update=updates) if updates else config


def as_of_date(context: Any, timezone: str) -> dt.date:
    """The run's logical date in the landlord's time zone (run_after for asset-triggered runs)."""
    from zoneinfo import ZoneInfo

    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.astimezone(ZoneInfo(timezone)).date()


def run_id_of(context: Any) -> str:
    """The id a step records in the register's history: the DAG's and the run's."""
    return f"{context['dag'].dag_id}/{context['run_id']}"


async def smtp_connection_overrides() -> dict[str, Any]:
    """The Airflow Connection `cautionflow_smtp`, when defined, as overrides of the config's smtp
    settings: host, port, login, password, and from its extra both the Airflow SMTP provider's
    conventions (`from_email`, `disable_tls`, `disable_ssl`, `timeout`, `retry_limit`) and
    cautionflow's own (`security`, `sender`, `allow_insecure`, `max_messages_per_minute`); see
    `connection_extra_overrides`.
    Fetched with `Connection.async_get` inside the async task; the password is never logged."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = await Connection.async_get(SMTP_CONNECTION)
    except AirflowNotFoundException:
        return {}
    log.info("smtp settings from Airflow connection %s", SMTP_CONNECTION)
    return smtp_overrides_from_connection(conn, await conn.aextra_dejson())


async def smtp_overrides_or_none() -> dict[str, Any]:
    """`smtp_connection_overrides` for a notice to operations: a connection that cannot be read
    leaves the config file's settings, which may still work ({}), rather than no notice at all."""
    try:
        return await smtp_connection_overrides()
    except Exception as exc:  # noqa: BLE001 - see above
        log.warning("smtp connection %s unreadable (%s); using the config's smtp settings", SMTP_CONNECTION,
                    type(exc).__name__)
        return {}


def smtp_overrides_from_connection(conn: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """An SMTP Connection (its fields and its extra as a dict) as overrides of the config's smtp."""
    return {
        "host": conn.host or None,
        "port": conn.port or None,
        "login": conn.login or None,
        "password": conn.password or None,
        **connection_extra_overrides(extra or {}, SMTP_CONNECTION),
    }


# The Airflow SMTP provider's Connection extras (apache-airflow-providers-smtp, "SMTP Connection"):
# cautionflow reads them as well as its own, so a Connection written for Airflow's own email works.
PROVIDER_EXTRAS = ("from_email", "disable_tls", "disable_ssl", "timeout", "retry_limit")
OWN_EXTRAS = ("security", "sender", "allow_insecure", "max_messages_per_minute")
_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}


def connection_extra_overrides(extra: Mapping[str, Any], conn_id: str = "cautionflow_smtp") -> dict[str, Any]:
    """The Connection's extra as overrides of the config's smtp settings (keys `security`, `sender`,
    `from_email`, `timeout_seconds`, `retry_attempts`, `allow_insecure`, `max_messages_per_minute`;
    absent when not set).

    The provider's flags mean what they mean to Airflow: SSL from the first byte unless
    `disable_ssl`, and then STARTTLS unless `disable_tls`; so `disable_ssl=true&disable_tls=true` is
    cautionflow's `security: none`. Values from a URI's query string arrive as text ("true").
    A contradiction (`security` and the flags disagree, `sender` and `from_email` name different
    addresses) is an error naming both, never a silent choice."""
    where = f"Airflow connection {conn_id}"

    def flag(key: str) -> bool | None:
        value = extra.get(key)
        if value is None or isinstance(value, bool):
            return value
        text = str(value).strip().lower()
        if text in _TRUE | _FALSE:
            return text in _TRUE
        raise ConfigError(f"{where}: extra.{key}: expected true or false, got '{value}'")

    def number(key: str, kind: type, least: float) -> Any:
        value = extra.get(key)
        if value in (None, ""):
            return None
        try:
            parsed = kind(value)
        except (TypeError, ValueError):
            parsed = None
        if parsed is None or parsed < least:
            raise ConfigError(f"{where}: extra.{key}: expected a number of at least {least:g}, got '{value}'")
        return parsed

    out: dict[str, Any] = {}
    disable_ssl, disable_tls = flag("disable_ssl"), flag("disable_tls")
    implied = None
    if disable_ssl is not None or disable_tls is not None:
        implied = "tls" if not disable_ssl else ("none" if disable_tls else "starttls")
    security = extra.get("security") or None
    if security and implied and security != implied:
        raise ConfigError(
            f"{where}: extra.security '{security}' contradicts disable_ssl={str(bool(disable_ssl)).lower()}, "
            f"disable_tls={str(bool(disable_tls)).lower()} (which mean '{implied}'); keep one of them"
        )
    if security or implied:
        out["security"] = security or implied
    sender, from_email = extra.get("sender") or None, extra.get("from_email") or None
    if sender and from_email and parseaddr(str(sender))[1].lower() != parseaddr(str(from_email))[1].lower():
        raise ConfigError(f"{where}: extra.sender '{sender}' and extra.from_email '{from_email}' name different "
                          "addresses; keep one of them")
    if sender:
        out["sender"] = sender
    elif from_email:
        out["from_email"] = from_email
    timeout = number("timeout", float, 1)
    if timeout is not None:
        out["timeout_seconds"] = timeout
    retry_limit = number("retry_limit", int, 1)
    if retry_limit is not None:
        out["retry_attempts"] = retry_limit
    # The provider's limit belongs with its credentials: a mailbox moved to Exchange Online gets 30.
    per_minute = number("max_messages_per_minute", int, 1)
    if per_minute is not None:
        out["max_messages_per_minute"] = per_minute
    allow_insecure = flag("allow_insecure")
    if allow_insecure is not None:
        out["allow_insecure"] = allow_insecure
    unknown = sorted(set(extra) - set(PROVIDER_EXTRAS) - set(OWN_EXTRAS))
    if unknown:
        log.warning("%s: extra field(s) %s are not used by cautionflow", where, ", ".join(unknown))
    return out


def config_for_api_server() -> CautionflowConfig:
    """The config for the register page, read in the api-server process (not a task, so Airflow's
    server-side Variable and Connection models): the path from the environment variable
    `CAUTIONFLOW_CONFIG`, else the Variable `cautionflow_config`; the Connection
    `cautionflow_register`, when defined, overrides `register_url` as it does for the tasks."""
    import os

    from airflow.exceptions import AirflowNotFoundException
    from airflow.models.connection import Connection
    from airflow.models.variable import Variable

    from cautionflow.config import load_config, resolve_url

    path = os.environ.get(CONFIG_ENV) or Variable.get(CONFIG_VARIABLE, default_var=DEFAULT_CONFIG_PATH)
    config = load_config(path)
    try:
        register = Connection.get_connection_from_secrets(REGISTER_CONNECTION)
    except AirflowNotFoundException:
        return config
    return config.model_copy(update={"register_url": resolve_url(connection_url(register), config.path("."))})


def airflow_base_url() -> str | None:
    """`[api] base_url` (AIRFLOW__API__BASE_URL), for links in notices; None when unset."""
    import os

    url = os.environ.get("AIRFLOW__API__BASE_URL")
    if url is None:
        try:
            from airflow.configuration import conf

            url = conf.get("api", "base_url", fallback="")
        except Exception:  # noqa: BLE001 - a link is a nicety
            url = ""
    return url or None
