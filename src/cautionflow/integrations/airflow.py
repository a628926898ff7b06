"""What the DAG tasks call: config from the Variable, secrets from Connections, the as-of date.

Everything here runs inside a task, never at DAG parse time. The config file's path comes
from the Variable `cautionflow_config`; the Connections `housing_db`, `cautionflow_register`
(and `cautionflow_smtp`, for mail) override the file's URLs when they are defined, so
credentials live in Airflow rather than in the file. Nothing here logs a URL with a password.
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Any

from cautionflow.clock import Clock, system_clock
from cautionflow.config import CONFIG_ENV, CautionflowConfig

log = logging.getLogger(__name__)

CONFIG_VARIABLE = "cautionflow_config"
DEFAULT_CONFIG_PATH = "include/config/cautionflow.yaml"
SOURCE_CONNECTION = "housing_db"
REGISTER_CONNECTION = "cautionflow_register"


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


def as_of_date(context: Any, timezone: str = "Europe/London") -> dt.date:
    """The run's logical date in the landlord's time zone (run_after for asset-triggered runs)."""
    from zoneinfo import ZoneInfo

    moment = context.get("logical_date") or context["dag_run"].run_after
    return moment.astimezone(ZoneInfo(timezone)).date()


def run_step(step: str, context: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one pipeline step for this task's run; the summary becomes the task's XCom."""
    from cautionflow.steps import STEPS

    config = config_from_airflow()
    as_of = as_of_date(context, config.timezone)
    run_id = f"{context['dag'].dag_id}/{context['run_id']}"
    log.info("cautionflow %s for %s as of %s", step, config.organisation, as_of)
    summary = STEPS[step](config, as_of=as_of, run_id=run_id, **kwargs)
    log.info("cautionflow %s summary: %s", step, summary)
    return summary


def run_sync_task(context: Any) -> dict[str, Any]:
    """The sync DAG's task. The run's `allow_mass_end` param passes an officer's real clean-up past
    the mass-end guard; a refused sync fails the task without retries (a retry reads the same
    export), so the failure notice reaches operations at once."""
    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.services.sync import MassEndError

    allow = bool((context.get("params") or {}).get("allow_mass_end", False))
    try:
        return run_step("sync", context, allow_mass_end=allow)
    except MassEndError as exc:
        raise AirflowFailException(f"{exc} (Airflow: trigger cautionflow_sync with allow_mass_end)") from exc


SMTP_CONNECTION = "cautionflow_smtp"


async def smtp_connection_overrides() -> dict[str, Any]:
    """The Airflow Connection `cautionflow_smtp`, when defined, as overrides of the config's smtp
    settings: host, port, login, password, and from its extra both the Airflow SMTP provider's
    conventions (`from_email`, `disable_tls`, `disable_ssl`, `timeout`, `retry_limit`) and
    cautionflow's own (`security`, `sender`, `allow_insecure`); see `connection_extra_overrides`.
    Fetched with `Connection.async_get` inside the async task; the password is never logged."""
    from airflow.sdk import Connection
    from airflow.sdk.exceptions import AirflowNotFoundException

    try:
        conn = await Connection.async_get(SMTP_CONNECTION)
    except AirflowNotFoundException:
        return {}
    log.info("smtp settings from Airflow connection %s", SMTP_CONNECTION)
    return smtp_overrides_from_connection(conn, await conn.aextra_dejson())


def smtp_overrides_from_connection(conn: Any, extra: dict[str, Any]) -> dict[str, Any]:
    """An SMTP Connection (its fields and its extra as a dict) as overrides of the config's smtp."""
    from cautionflow.adapters.mail import connection_extra_overrides

    return {
        "host": conn.host or None,
        "port": conn.port or None,
        "login": conn.login or None,
        "password": conn.password or None,
        **connection_extra_overrides(extra or {}, SMTP_CONNECTION),
    }


async def _run_mail_task(step: str, noun: str, context: Any) -> dict[str, Any]:
    """A mail step in the task's event loop: pending mail fails the try so Airflow retries it;
    mail the server refused, or whose delivery is uncertain (the server may have it), fails the task
    without retries. A retry never resends uncertain mail anyway (it is never claimed again), so
    pending mail is still retried first."""
    import asyncio

    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow import steps

    config = await asyncio.to_thread(config_from_airflow)  # Variable and Connections: blocking calls
    overrides = await smtp_connection_overrides()
    as_of = as_of_date(context, config.timezone)
    run_id = f"{context['dag'].dag_id}/{context['run_id']}"
    run = getattr(steps, f"run_{step}_async")
    summary = await _refusing_unready_register(run(config, as_of=as_of, run_id=run_id, smtp_overrides=overrides))
    log.info("cautionflow %s summary: %s", step, summary)
    if summary["pending"]:
        raise RuntimeError(f"{summary['pending']} {noun} still pending; a retry sends them: {summary['waiting']}")
    if summary["failed"]:
        raise AirflowFailException(f"{summary['failed']} {noun} refused by the server: {summary.get('failures', '')}")
    if summary.get("uncertain"):
        raise AirflowFailException(
            f"{summary['uncertain']} {noun} sent but never confirmed by the server (uncertain, not resent): "
            f"{summary.get('uncertain_messages', '')}"
        )
    if summary.get("not_dispatched"):  # a letter's own data (not one address): a retry finds it the same
        raise AirflowFailException(
            f"{summary['not_dispatched']} letter(s) could not be dispatched and stay approved: {summary['problems']}"
        )
    return summary


async def _refusing_unready_register(step: Any) -> dict[str, Any]:
    """Await a mail step; a register that is missing, never synced or too old fails the task without
    retries (a retry in minutes would find it the same), so the failure callback tells operations."""
    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.adapters.register import RegisterNotReadyError

    try:
        return await step
    except RegisterNotReadyError as exc:
        raise AirflowFailException(str(exc)) from None


async def run_reminders_task(context: Any) -> dict[str, Any]:
    return await _run_mail_task("reminders", "review reminder(s)", context)


async def run_digests_task(context: Any) -> dict[str, Any]:
    return await _run_mail_task("digests", "digest(s)", context)


async def run_letters_dispatch_task(context: Any) -> dict[str, Any]:
    """With `letters.auto_approve`, the letters DAG's dispatch: print batch and letters by email."""
    return await _run_mail_task("letters_dispatch", "letter email(s)", context)


# --- operations failure notices -------------------------------------------------------------------

FAILURE_NOTICE_RETRY = (3, 1.0, 5.0)  # attempts, initial and maximum backoff (seconds)
FAILURE_NOTICE_TIMEOUT = 15.0  # seconds per SMTP operation: a callback must not hang the worker


def _run_coroutine(coro: Any) -> Any:
    """Run a coroutine to completion from sync code: `asyncio.run`, or in a helper thread when this
    thread already runs an event loop (a callback is sync, but may be called from async code)."""
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(coro)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cautionflow-notice") as pool:
        return pool.submit(asyncio.run, coro).result()


def _failure_notice_from_context(context: Any) -> Any:
    from cautionflow.domain.operations import failure_notice

    ti = context.get("ti") or context.get("task_instance")
    dag = context.get("dag")
    try:
        log_url = getattr(ti, "log_url", None)
    except Exception:  # noqa: BLE001 - a link is a nicety; the notice goes without it
        log_url = None
    return failure_notice(
        dag_id=getattr(dag, "dag_id", None) or getattr(ti, "dag_id", "?"),
        task_id=getattr(ti, "task_id", None) or getattr(context.get("task"), "task_id", "?"),
        run_id=context.get("run_id") or getattr(ti, "run_id", "?"),
        try_number=getattr(ti, "try_number", None),
        logical_date=context.get("logical_date"),
        error=context.get("exception"),
        log_url=log_url,
    )


def notify_operations_of_failure(context: Any, clock: Clock = system_clock) -> None:
    """`on_failure_callback` for every cautionflow task: email the config's `operations` recipients
    that a task failed after its retries (DAG, task, run, the error's type and first lines, scrubbed
    of personal data, and the log link). Sent directly, not through the outbox: a failure notice is
    not a disclosure, and must go even when the register is what is broken. Never raises: a failing
    callback must not hide the task's own error, so every problem here is logged as a warning."""
    try:
        _notify_operations_of_failure(context, clock)
    except Exception as exc:  # noqa: BLE001 - see above
        log.warning("could not send the operations failure notice: %s: %s", type(exc).__name__, exc)


def _notify_operations_of_failure(context: Any, clock: Clock = system_clock) -> None:
    notice = _failure_notice_from_context(context)
    config = config_from_airflow()
    if not _operations_recipients(config, "failure notice", notice.subject):
        return
    try:
        overrides = _run_coroutine(smtp_connection_overrides())
    except Exception as exc:  # noqa: BLE001 - the file's settings may still work
        log.warning("smtp connection %s unreadable (%s); using the config's smtp settings", SMTP_CONNECTION,
                    type(exc).__name__)
        overrides = {}
    _run_coroutine(send_operations_notice(
        config, subject=notice.subject, text=notice.text, kind="operations-failure", what="failure notice",
        overrides=overrides, clock=clock,
    ))


def _operations_recipients(config: CautionflowConfig, what: str, subject: str) -> list[Any]:
    """The config's operations recipients, when there are any and mail can be sent (else logged)."""
    recipients = [r for r in config.recipients if r.role == "operations"]
    if not recipients:
        log.info("no operations recipients in the config: no %s sent for %s", what, subject)
        return []
    if config.smtp is None:
        log.warning("the config has no smtp section: no %s sent for %s", what, subject)
        return []
    return recipients


async def send_operations_notice(
    config: CautionflowConfig, *, subject: str, text: str, kind: str, what: str, overrides: dict[str, Any],
    tls_context: Any = None, clock: Clock = system_clock,
) -> Any:
    """A plain-text notice to every operations recipient, sent directly (not through the outbox: a
    notice is not a disclosure, and must go even when the register is what is broken), with a short
    retry and timeout. Returns the delivery report (None when there is no one to send it to)."""
    import dataclasses
    import uuid

    from cautionflow.adapters.mail import OutgoingMessage, RetryPolicy, SmtpSettings, build_message, deliver

    recipients = _operations_recipients(config, what, subject)
    if not recipients:
        return None
    settings = SmtpSettings.from_config(config.smtp, overrides=overrides, tls_context=tls_context)
    settings = dataclasses.replace(settings, timeout=min(settings.timeout, FAILURE_NOTICE_TIMEOUT),
                                   data_timeout=min(settings.data_timeout, FAILURE_NOTICE_TIMEOUT))
    now = clock()
    messages = []
    label = kind.removeprefix("operations-")
    for recipient in recipients:
        message_id = f"<cautionflow.{label}.{uuid.uuid4().hex}@{settings.sender_domain}>"
        data = build_message(
            sender=settings.sender, to_name=recipient.name, to_email=recipient.email, subject=subject,
            message_id=message_id, date=now, text=text, headers={"X-Cautionflow-Kind": kind},
        )
        messages.append(OutgoingMessage(message_id, (recipient.email,), data.encode("ascii")))
    attempts, initial, most = FAILURE_NOTICE_RETRY
    report = await deliver(
        settings, messages, on_accepted=lambda _id: None, on_failed=lambda _failure: None,
        retry=RetryPolicy(attempts=attempts, initial_delay=initial, max_delay=most),
    )
    for failure in report.failures:
        log.warning("operations %s not sent (%s): %s", what, failure.message_id, failure.reply)
    if report.accepted:
        log.info("operations %s sent to %d recipient(s): %s", what, len(report.accepted), subject)
    return report


# --- the register page (inside the Airflow api-server) ----------------------------------------------



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


# --- lateness alert: the daily sync has not finished by 07:00 --------------------------------------


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


async def check_sync_finished_task(
    context: Any, *, tls_context: Any = None, clock: Clock = system_clock
) -> dict[str, Any]:
    """The `cautionflow_sync_watch` task: if the sync for this run's day had not finished by this
    run's logical date (07:00 Europe/London), email the operations recipients (dates and times only).
    It reads the register's `sync_runs`, so it also notices a day on which no sync ran at all."""
    import asyncio

    from cautionflow.adapters.database import safe_url
    from cautionflow.adapters.register import Register
    from cautionflow.domain.operations import LatenessNotice, sync_is_late
    from cautionflow.services.sync_watch import sync_progress

    config = await asyncio.to_thread(config_from_airflow)  # Variable and Connections: blocking calls
    deadline = context.get("logical_date") or context["dag_run"].run_after
    as_of = as_of_date(context, config.timezone)

    def progress() -> tuple[Any, Any]:
        register = Register(config.register_url)
        try:
            return sync_progress(register, as_of)
        finally:
            register.dispose()

    def register_exists() -> bool:
        register = Register(config.register_url)
        try:
            return register.exists()
        finally:
            register.dispose()

    finished_at, last = await asyncio.to_thread(progress)
    summary: dict[str, Any] = {"as_of": as_of.isoformat(), "deadline": deadline.isoformat(),
                               "finished_at": finished_at.isoformat() if finished_at else None, "late": False}
    if not sync_is_late(finished_at, deadline):
        log.info("the sync for %s finished at %s, by its deadline %s", as_of, finished_at, deadline)
        return summary
    base = airflow_base_url()
    notice = LatenessNotice(
        as_of=as_of, deadline=deadline, timezone=config.timezone, last_sync_as_of=last, finished_at=finished_at,
        dag_url=f"{base.rstrip('/')}/dags/cautionflow_sync" if base else None,
    )
    log.warning("%s", notice.subject)
    try:
        overrides = await smtp_connection_overrides()
    except Exception as exc:  # noqa: BLE001 - the file's settings may still work
        log.warning("smtp connection %s unreadable (%s); using the config's smtp settings", SMTP_CONNECTION,
                    type(exc).__name__)
        overrides = {}
    operations = _operations_recipients(config, "lateness notice", notice.subject)
    if not operations:
        return {**summary, "late": True, "notified": 0}
    from cautionflow.services.operations_notices import send_to_operations_once_a_day
    from cautionflow.steps import smtp_settings

    if not await asyncio.to_thread(register_exists):
        # No register, so no outbox to send it once through (only the sync creates a register): the
        # notice goes directly, as a failure notice does; a rerun may repeat it, which beats silence.
        log.warning("no register at %s: the lateness notice goes directly", safe_url(config.register_url))
        report = await send_operations_notice(
            config, subject=notice.subject, text=notice.text, kind="operations-late", what="lateness notice",
            overrides=overrides, tls_context=tls_context, clock=clock,
        )
        if report is not None and report.failures:
            raise RuntimeError(f"the lateness notice was not accepted: {[f.reply for f in report.failures]}")
        return {**summary, "late": True, "notified": len(report.accepted) if report else 0, "register": "missing"}
    settings = smtp_settings(config, "lateness notices", True, overrides, tls_context)

    async def send() -> Any:
        register = Register(config.register_url)
        try:
            await asyncio.to_thread(register.migrate)
            return await send_to_operations_once_a_day(
                register, settings, operations, as_of=as_of, run_id=context.get("run_id") or "sync-watch",
                content="sync-late", subject=notice.subject, text=notice.text, header_kind="operations-late",
                clock=clock,
            )
        finally:
            register.dispose()

    result = await send()  # through the outbox, once per recipient and day: a rerun sends nothing twice
    if result.waiting:
        raise RuntimeError(f"the lateness notice was not accepted: {[w['error'] for w in result.waiting]}")
    return {**summary, "late": True, "notified": result.sent, "already_notified": result.already_sent}


# --- the daily run summary to operations -----------------------------------------------------------


async def run_summary_task(context: Any, clock: Clock = system_clock) -> dict[str, Any]:
    """The digests DAG's last task: the counts-only daily summary to the operations recipients, when
    `operations.daily_summary` is on; once per recipient and day (the outbox). Pending mail fails the
    try so Airflow retries it; mail the server refused fails the task without retries."""
    import asyncio

    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.services.run_summary import run_summary_async

    config = await asyncio.to_thread(config_from_airflow)
    overrides = await smtp_connection_overrides() if config.operations.daily_summary else {}
    as_of = as_of_date(context, config.timezone)
    run_id = f"{context['dag'].dag_id}/{context['run_id']}"
    summary = await _refusing_unready_register(
        run_summary_async(config, as_of=as_of, run_id=run_id, smtp_overrides=overrides, clock=clock)
    )
    log.info("cautionflow daily run summary: %s", {k: v for k, v in summary.items() if k != "counts"})
    if summary["pending"]:
        raise RuntimeError(f"{summary['pending']} daily summary(ies) still pending; a retry sends them")
    if summary["failed"]:
        raise AirflowFailException(f"{summary['failed']} daily summary(ies) refused by the server")
    if summary.get("uncertain"):
        raise AirflowFailException(f"{summary['uncertain']} daily summary(ies) sent but never confirmed (uncertain)")
    return summary
