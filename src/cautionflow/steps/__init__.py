"""The wiring layer: every pipeline step defined once, and the one table of them.

A step takes the validated config, the as-of date and a run id, builds the adapters it needs
(`steps/wiring.py`: the register, the policy profile, SMTP settings, templates), calls one service
and returns a JSON-able summary. Adapters are created inside the step, so credentials never outlive
it. The DAG tasks (`integrations/airflow/tasks.py`), the command line (`cautionflow run STEP`,
`commands/`) and the register page (`web/`) all come here, and only here; nothing above this layer
imports an adapter or a service.

`STEPS` is the table: a step's blocking entry (`run`: the command line, `run all`, the sync-style
tasks), its async entry where it sends mail (`run_async`: the mail tasks await it in their event
loop) and the DAG whose task runs it. To add a step: write its module here (a function taking
`config, *, as_of, run_id`), add a `Step` to `STEPS`, and call `run_step(name)` or the mail task from
a DAG. See the README's "Architecture: where code goes".
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from cautionflow.steps.appeals import run_appeals_async
from cautionflow.steps.deadlines import run_deadlines, run_reminders_async
from cautionflow.steps.digests import run_digests_async, run_summary_async
from cautionflow.steps.housekeeping import run_governance, run_retention
from cautionflow.steps.letters import run_letters, run_letters_dispatch_async
from cautionflow.steps.sync import run_sync
from cautionflow.steps.urgent import run_urgent_async
from cautionflow.steps.wiring import policy_profile

Summary = dict[str, Any]


def blocking(step: Callable[..., Awaitable[Summary]]) -> Callable[..., Summary]:
    """An async mail step for callers without an event loop (the command line, `run all`)."""

    def run(config: Any, **kwargs: Any) -> Summary:
        return asyncio.run(step(config, **kwargs))

    run.__doc__ = step.__doc__
    run.__name__ = step.__name__.removesuffix("_async")
    return run


@dataclass(frozen=True)
class Step:
    """One pipeline step: `run` blocks; `run_async` (mail steps only) is what an async task awaits."""

    name: str
    dag_id: str
    run: Callable[..., Summary]
    run_async: Callable[..., Awaitable[Summary]] | None = None

    @classmethod
    def sending_mail(cls, name: str, dag_id: str, run_async: Callable[..., Awaitable[Summary]]) -> Step:
        return cls(name, dag_id, blocking(run_async), run_async)


_TABLE = (
    Step("sync", "cautionflow_sync", run_sync),
    Step("deadlines", "cautionflow_deadlines", run_deadlines),
    Step.sending_mail("reminders", "cautionflow_deadlines", run_reminders_async),
    Step.sending_mail("appeals", "cautionflow_deadlines", run_appeals_async),
    Step("letters", "cautionflow_letters", run_letters),
    Step.sending_mail("letters_dispatch", "cautionflow_letters", run_letters_dispatch_async),
    Step.sending_mail("digests", "cautionflow_digests", run_digests_async),
    Step.sending_mail("summary", "cautionflow_digests", run_summary_async),
    # Every 15 minutes, its own sync first; not in PIPELINE: `run all` is the daily pipeline.
    Step.sending_mail("urgent", "cautionflow_urgent", run_urgent_async),
    Step("retention", "cautionflow_housekeeping", run_retention),
    Step("governance", "cautionflow_housekeeping", run_governance),
)
STEPS: dict[str, Step] = {step.name: step for step in _TABLE}
# `cautionflow run STEP` offers these (the letters' dispatch and the run summary run inside the
# letters and digests steps' DAGs; by hand, `cautionflow letters dispatch`); `run all` runs PIPELINE.
COMMAND_STEPS: tuple[str, ...] = (
    "sync", "deadlines", "reminders", "appeals", "digests", "urgent", "letters", "retention", "governance",
)
PIPELINE: tuple[str, ...] = ("sync", "deadlines", "reminders", "appeals", "letters", "digests")
# Every cautionflow DAG, in the order operations read them (the register page shows them so).
DAGS: tuple[str, ...] = (
    *dict.fromkeys(step.dag_id for step in _TABLE if step.dag_id != "cautionflow_housekeeping"),
    "cautionflow_sync_watch", "cautionflow_housekeeping",
)

# The blocking entries by name, for callers that run one step directly (tests, notebooks).
run_reminders = STEPS["reminders"].run
run_appeals = STEPS["appeals"].run
run_digests = STEPS["digests"].run
run_summary = STEPS["summary"].run
run_urgent = STEPS["urgent"].run


def step_errors() -> tuple[type[BaseException], ...]:
    """The errors a person fixes (config, source, register), reported as one line."""
    from cautionflow.adapters.register import RegisterError
    from cautionflow.adapters.source import SourceError
    from cautionflow.config import ConfigError
    from cautionflow.domain.policy import ProfileError
    from cautionflow.domain.validation import SourceShapeError
    from cautionflow.services.sync import MassEndError  # EmptySourceError is one

    return (ConfigError, SourceError, RegisterError, SourceShapeError, MassEndError, ProfileError)


def mail_not_ready_errors() -> tuple[type[BaseException], ...]:
    """A register that is missing, never synced or too old to mail from (a retry finds it the same)."""
    from cautionflow.adapters.register import RegisterNotReadyError

    return (RegisterNotReadyError,)


def mass_end_errors() -> tuple[type[BaseException], ...]:
    """A sync refused by the mass-end guard (a retry reads the same export)."""
    from cautionflow.services.sync import MassEndError

    return (MassEndError,)


__all__ = [
    "COMMAND_STEPS", "DAGS", "PIPELINE", "STEPS", "Step", "blocking", "mail_not_ready_errors", "mass_end_errors",
    "policy_profile", "run_appeals", "run_appeals_async", "run_deadlines", "run_digests", "run_digests_async", "run_governance", "run_letters",
    "run_letters_dispatch_async", "run_reminders", "run_reminders_async", "run_retention", "run_summary",
    "run_summary_async", "run_sync", "run_urgent", "run_urgent_async", "step_errors",
]
