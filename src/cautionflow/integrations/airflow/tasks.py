"""What the DAG tasks call: each runs one step from the step table (`cautionflow.steps.STEPS`) for
its Airflow run, and turns the step's outcome into the task's: the summary becomes the XCom, work
left undone fails the try (Airflow retries it), and what a retry cannot mend fails without retries
so the failure notice reaches operations at once."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING, Any

from cautionflow.clock import Clock, system_clock
from cautionflow.integrations.airflow.settings import (
    airflow_base_url,
    as_of_date,
    config_from_airflow,
    run_id_of,
    smtp_connection_overrides,
    smtp_overrides_or_none,
)

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig

log = logging.getLogger(__name__)


def _task_config() -> CautionflowConfig:
    """The config for a task, refused before any work when the deployment's shape is unsafe on
    Airflow's executor (a SQLite register or unshared output folders on CeleryExecutor, ...; see
    `cautionflow.deployment_shape`): without retries, since only a person can change it, so the
    failure notice reaches operations at once with the line saying what to configure (one line a
    problem: the notice keeps each line whole). The command line is not checked: it runs on the one
    machine it runs on."""
    from airflow.configuration import conf
    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.deployment_shape import unsafe_shape_problems

    config = config_from_airflow()
    problems = unsafe_shape_problems(conf.get("core", "executor", fallback="LocalExecutor"), config)
    if problems:
        raise AirflowFailException("\n".join(problems))
    return config


def run_step(step: str, context: Any, **kwargs: Any) -> dict[str, Any]:
    """Run one pipeline step for this task's run; the summary becomes the task's XCom."""
    from cautionflow.steps import STEPS

    config = _task_config()
    as_of = as_of_date(context, config.timezone)
    log.info("cautionflow %s for %s as of %s", step, config.organisation, as_of)
    summary = STEPS[step].run(config, as_of=as_of, run_id=run_id_of(context), **kwargs)
    log.info("cautionflow %s summary: %s", step, summary)
    return summary


def run_sync_task(context: Any) -> dict[str, Any]:
    """The sync DAG's task. The run's `allow_mass_end` param passes an officer's real clean-up past
    the mass-end guard; a refused sync fails the task without retries (a retry reads the same
    export), so the failure notice reaches operations at once."""
    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.steps import mass_end_errors

    allow = bool((context.get("params") or {}).get("allow_mass_end", False))
    try:
        return run_step("sync", context, allow_mass_end=allow)
    except mass_end_errors() as exc:
        raise AirflowFailException(f"{exc} (Airflow: trigger cautionflow_sync with allow_mass_end)") from exc


async def _run_mail_task(step: str, noun: str, context: Any) -> dict[str, Any]:
    """A mail step in the task's event loop: pending mail fails the try so Airflow retries it;
    mail the server refused, or whose delivery is uncertain (the server may have it), fails the task
    without retries. A retry never resends uncertain mail anyway (it is never claimed again), so
    pending mail is still retried first."""
    import asyncio

    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.steps import STEPS

    config = await asyncio.to_thread(_task_config)  # Variable and Connections: blocking calls
    overrides = await smtp_connection_overrides()
    as_of = as_of_date(context, config.timezone)
    run = STEPS[step].run_async
    summary = await _refusing_unready_register(
        run(config, as_of=as_of, run_id=run_id_of(context), smtp_overrides=overrides)
    )
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

    from cautionflow.steps import mail_not_ready_errors

    try:
        return await step
    except mail_not_ready_errors() as exc:
        raise AirflowFailException(str(exc)) from None


async def run_reminders_task(context: Any) -> dict[str, Any]:
    return await _run_mail_task("reminders", "review reminder(s)", context)


async def run_appeals_task(context: Any) -> dict[str, Any]:
    """The open appeals to the `appeals` recipients: weekly on their weekday, daily once one is overdue."""
    return await _run_mail_task("appeals", "appeals list(s)", context)


async def run_digests_task(context: Any) -> dict[str, Any]:
    return await _run_mail_task("digests", "digest(s)", context)


async def run_urgent_task(context: Any) -> dict[str, Any]:
    """The `cautionflow_urgent` task: sync, then the urgent notices. A sync refused by the mass-end
    guard or an unreadable source does not fail it (the notices of changes already in the register
    still go; operations are told once a day through the outbox); pending notices fail the try, so
    Airflow retries them, and a refused one fails the task without retries, as for the digests."""
    return await _run_mail_task("urgent", "urgent notice(s)", context)


async def run_letters_dispatch_task(context: Any) -> dict[str, Any]:
    """With `letters.auto_approve`, the letters DAG's dispatch: print batch and letters by email."""
    return await _run_mail_task("letters_dispatch", "letter email(s)", context)


async def run_summary_task(context: Any, clock: Clock = system_clock) -> dict[str, Any]:
    """The digests DAG's last task: the counts-only daily summary to the operations recipients, when
    `operations.daily_summary` is on; once per recipient and day (the outbox). Pending mail fails the
    try so Airflow retries it; mail the server refused fails the task without retries."""
    import asyncio

    from airflow.sdk.exceptions import AirflowFailException

    from cautionflow.steps import STEPS

    config = await asyncio.to_thread(_task_config)
    overrides = await smtp_connection_overrides() if config.operations.daily_summary else {}
    as_of = as_of_date(context, config.timezone)
    summary = await _refusing_unready_register(STEPS["summary"].run_async(
        config, as_of=as_of, run_id=run_id_of(context), smtp_overrides=overrides, clock=clock,
    ))
    log.info("cautionflow daily run summary: %s", {k: v for k, v in summary.items() if k != "counts"})
    if summary["pending"]:
        raise RuntimeError(f"{summary['pending']} daily summary(ies) still pending; a retry sends them")
    if summary["failed"]:
        raise AirflowFailException(f"{summary['failed']} daily summary(ies) refused by the server")
    if summary.get("uncertain"):
        raise AirflowFailException(f"{summary['uncertain']} daily summary(ies) sent but never confirmed (uncertain)")
    return summary


async def check_sync_finished_task(
    context: Any, *, tls_context: Any = None, clock: Clock = system_clock
) -> dict[str, Any]:
    """The `cautionflow_sync_watch` task: if the sync for this run's day had not finished by this
    run's logical date (07:00 Europe/London in the shipped DAG), email the operations recipients
    (dates and times only); see `cautionflow.steps.notices.check_sync_finished_async`."""
    import asyncio

    from cautionflow.steps.notices import check_sync_finished_async

    config = await asyncio.to_thread(_task_config)  # Variable and Connections: blocking calls
    return await check_sync_finished_async(
        config, as_of=as_of_date(context, config.timezone),
        deadline=context.get("logical_date") or context["dag_run"].run_after,
        run_id=context.get("run_id") or "sync-watch", smtp_overrides=smtp_overrides_or_none,
        base_url=airflow_base_url(), tls_context=tls_context, clock=clock,
    )


# --- operations failure notices -------------------------------------------------------------------


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


def _earlier_runs(context: Any) -> tuple[Any, Any]:
    """(the failing task's previous run, its last successful run) as `EarlierRun`s, asked of the
    Task SDK's task instance (`get_previous_ti`: the runs before this one's logical date)."""
    from airflow.sdk import TaskInstanceState

    from cautionflow.domain.operations import EarlierRun

    ti = context.get("ti") or context.get("task_instance")
    run_id = context.get("run_id") or getattr(ti, "run_id", None)

    def earlier(state: Any = None) -> EarlierRun | None:
        found = ti.get_previous_ti(state=state) if state is not None else ti.get_previous_ti()
        if found is None or found.run_id == run_id:
            return None
        ended = getattr(found.state, "value", found.state)
        return EarlierRun(logical_date=found.logical_date, state=None if ended is None else str(ended))

    return earlier(), earlier(TaskInstanceState.SUCCESS)


def _failure_notice_due(context: Any, notice: Any, repeat_hours: int) -> Any:
    """The notice to send (a repeat says so), or None when this failure falls in a window already
    told (`domain.operations.failure_notice_due`). When Airflow cannot say what ran before (no task
    runner, its API unreachable), the notice goes: a notice too many beats a failure untold."""
    import dataclasses

    from cautionflow.domain.operations import failure_notice_due

    try:
        previous, last_success = _earlier_runs(context)
    except Exception as exc:  # noqa: BLE001 - see above
        log.info("earlier runs of %s.%s unknown (%s: %s): the failure notice goes", notice.dag_id, notice.task_id,
                 type(exc).__name__, exc)
        return notice
    if not failure_notice_due(logical_date=notice.logical_date, previous=previous, last_success=last_success,
                              repeat_every=dt.timedelta(hours=repeat_hours)):
        log.info("operations failure notice not repeated: %s.%s failed on its previous run too, and operations "
                 "were told within this %d-hour window (operations.failure_notice_repeat_hours)",
                 notice.dag_id, notice.task_id, repeat_hours)
        return None
    if previous is not None and previous.state == "failed":
        return dataclasses.replace(notice, repeat=True, repeat_hours=repeat_hours,
                                   last_success=last_success.logical_date if last_success else None)
    return notice


def _notify_operations_of_failure(context: Any, clock: Clock = system_clock) -> None:
    from cautionflow.steps.notices import notify_operations, operations_recipients

    notice = _failure_notice_from_context(context)
    config = config_from_airflow()
    # Whom to tell first (the config, local); only then ask Airflow about earlier runs (two API calls).
    if not operations_recipients(config, "failure notice", notice.subject):
        return
    notice = _failure_notice_due(context, notice, config.operations.failure_notice_repeat_hours)
    if notice is None:
        return
    overrides = _run_coroutine(smtp_overrides_or_none())
    _run_coroutine(notify_operations(
        config, subject=notice.subject, text=notice.text, kind="operations-failure", what="failure notice",
        overrides=overrides, clock=clock,
    ))
