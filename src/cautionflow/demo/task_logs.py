"""Make the demo's task logs readable in the Airflow UI.

`airflow dags test` (how `make demo` runs each DAG) runs every task in its own process, with no
executor and no supervisor writing a log file, so the UI finds no log for those tasks ("Could not
read served logs"). This splits one `dags test` output into its tasks, as marked by Airflow's own
`[DAG TEST] starting task_id=...` and `[DAG TEST] end task task_id=...` lines, and writes each where
the api-server looks for it, Airflow's default `log_filename_template` under `base_log_folder`:

    LOGS/dag_id=DAG/run_id=RUN/task_id=TASK/attempt=N.log

The UI shows such plain-text lines as they are. The nth start of a task in one output is its
attempt n.

    python -m cautionflow.demo.task_logs var/airflow/demo-2026-11-23-cautionflow_sync.log --into var/airflow/logs
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

_START = re.compile(r"\[DAG TEST\] starting task_id=(?P<task>\S+) map_index=(?P<map>-?\d+)")
_RUNNING = re.compile(r"\[DAG TEST\] running task <TaskInstance: (?P<dag>[^.\s]+)\.(?P<task>\S+) (?P<run>\S+) ")
_END = re.compile(r"\[DAG TEST\] end task task_id=(?P<task>\S+)")


@dataclass(frozen=True, slots=True)
class TaskLog:
    dag_id: str
    run_id: str
    task_id: str
    map_index: int
    attempt: int
    lines: tuple[str, ...]

    @property
    def relative_path(self) -> Path:
        mapped = f"map_index={self.map_index}/" if self.map_index >= 0 else ""
        return Path(f"dag_id={self.dag_id}/run_id={self.run_id}/task_id={self.task_id}/{mapped}attempt={self.attempt}.log")


def split_task_logs(lines: Iterable[str]) -> list[TaskLog]:
    """Each task's lines, from its start marker to its end marker (or the next start, or the end)."""
    out: list[TaskLog] = []
    attempts: Counter[tuple[str, int]] = Counter()
    current: dict | None = None

    def close() -> None:
        if current is not None and current.get("run"):
            attempts[(current["task"], current["map"])] += 1
            out.append(TaskLog(current["dag"], current["run"], current["task"], current["map"],
                               attempts[(current["task"], current["map"])], tuple(current["lines"])))

    for raw in lines:
        line = raw.rstrip("\n")
        start = _START.search(line)
        if start:
            close()
            current = {"task": start["task"], "map": int(start["map"]), "dag": None, "run": None, "lines": []}
        if current is None:
            continue
        current["lines"].append(line)
        running = _RUNNING.search(line)
        if running and running["task"] == current["task"]:
            current["dag"], current["run"] = running["dag"], running["run"]
        end = _END.search(line)
        if end and end["task"] == current["task"]:
            close()
            current = None
    close()
    return out


def write_task_logs(output: Path, into: Path) -> list[Path]:
    """Write each task's log from one `dags test` output; returns the files written."""
    written = []
    for log in split_task_logs(output.read_text(encoding="utf-8", errors="replace").splitlines()):
        path = into / log.relative_path
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("\n".join(log.lines) + "\n", encoding="utf-8")
        written.append(path)
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("output", type=Path, help="the saved output of one `airflow dags test`")
    parser.add_argument("--into", type=Path, required=True, help="Airflow's base_log_folder")
    args = parser.parse_args(argv)
    write_task_logs(args.output, args.into)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
