"""Deployment shapes that are unsafe on more than one machine, found before a task does any work.

On Airflow's LocalExecutor every task runs on the scheduler's machine, so a SQLite register and
output folders on its own disk are fine. On a distributed executor (CeleryExecutor,
KubernetesExecutor, or any executor this module does not know) the next task may run on another
worker, which cannot see that SQLite file or those folders: the deadlines task would write reports
that the letters task never finds, and the outbox's file lock would hold on one host only. So a
task refuses to start on such a shape, with one line saying what to configure.

Pure: it takes Airflow's `[core] executor` value and the loaded config, and returns the problems;
`cautionflow.integrations.airflow.tasks` reads the executor setting and refuses the task.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cautionflow.config import is_object_store

if TYPE_CHECKING:
    from cautionflow.config import CautionflowConfig

# Executors that run every task on the one machine that also runs the scheduler. Anything else,
# a custom executor included, may run a task elsewhere (SequentialExecutor is gone from Airflow 3
# but is still one machine wherever a config names it).
ONE_MACHINE_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor"})


def executor_names(setting: str) -> tuple[str, ...]:
    """The executor classes Airflow's `[core] executor` names, every entry of every form Airflow 3.3
    reads (airflow.executors.executor_loader): a core name (`CeleryExecutor`), a module path
    (`airflow.providers.celery.executors.celery_executor.CeleryExecutor`), an alias
    (`fast:LocalExecutor`, `remote:my.module.RemoteExecutor`), a comma-separated list (the first is
    the default; a task may name any other), and teams' lists after `;` (`LocalExecutor;team1=
    CeleryExecutor`). Each entry is reduced to its class name: an alias says nothing about where its
    executor runs tasks. Team lists count even when `[core] multi_team` is off (Airflow then ignores
    them): a setting that would become unsafe by turning one flag on is refused now."""
    names: list[str] = []
    for team in setting.split(";"):
        executors = team.split("=", 1)[1] if "=" in team else team
        for entry in executors.split(","):
            executor = entry.strip().rsplit(":", 1)[-1].strip()
            name = executor.rsplit(".", 1)[-1]
            if name and name not in names:
                names.append(name)
    return tuple(names)


def distributed_executors(setting: str) -> tuple[str, ...]:
    """The executors in the setting that may run a task on another machine."""
    return tuple(name for name in executor_names(setting) if name not in ONE_MACHINE_EXECUTORS)


def _is_sqlite(url: str) -> bool:
    # `sqlite:///...`, `sqlite+pysqlite:///...`: the dialect before any `+driver`.
    return url.split(":", 1)[0].split("+", 1)[0].strip().lower() == "sqlite"


def unsafe_shape_problems(setting: str, config: CautionflowConfig) -> tuple[str, ...]:
    """What in `config` is unsafe with the executors `setting` names; () when nothing is, or when
    every executor runs tasks on one machine.

    The register must not be SQLite (its file, and its outbox's file lock, are one machine's). The
    folders the tasks write, `output_dir` (reports) and `letters.output_dir` (letters, print batches,
    translations), must be on storage every worker shares; whether a path is shared cannot be told
    by looking at it (`/mnt/efs/letters` and `/tmp/letters` look alike), so every local path,
    relative or absolute, needs the operator's word for it: `shared_storage: true`. A folder on an
    object store (`s3://`, `gs://`, any URL but `file://`) is the same place from every worker, so
    it needs no such word; a `file://` URL is a local path by another name."""
    executors = distributed_executors(setting)
    if not executors:
        return ()
    on = ", ".join(executors)
    problems = []
    if _is_sqlite(config.register_url):
        problems.append(
            f"a SQLite register is for one machine: with {on} set register_url "
            "(or the Connection cautionflow_register) to PostgreSQL"
        )
    folders = [("output_dir", config.output_dir)]
    if config.letters is not None:  # without a letters section no letter is written
        folders.append(("letters.output_dir", config.letters.output_dir))
    folders = [(field, path) for field, path in folders if not is_object_store(path)]
    if folders and not config.shared_storage:
        named = " and ".join(f"{field} ({path})" for field, path in folders)
        one = len(folders) == 1
        problems.append(
            f"{named} {'is a local folder' if one else 'are local folders'} other workers cannot see: "
            f"with {on} mount {'it' if one else 'them'} on storage every worker shares (NFS, EFS, ...) "
            f"and set shared_storage: true in the config, or use {'an object store URL' if one else 'object store URLs'} "
            "(s3://...)"
        )
    return tuple(problems)
