"""Benchmark: the daily pipeline end to end through Airflow's scheduler, on LocalExecutor and on two
Celery workers (issue 17), at the demo's size and at 10,000 alerts with 300 recipients.

    python -m bench.pipeline_executors [--sizes demo,large] [--executors local,celery]

Each case starts a fresh deployment with real parts (tests/airflow_stack.py: scheduler,
dag-processor, api-server, Redis db 7 and two Celery workers `--concurrency 2`, PostgreSQL for the
metadata, the register and the housing database, an S3-compatible store, an aiosmtpd server in this
process answering at once), unpauses the four daily DAGs and lets the scheduler run them: its 05:30
run of cautionflow_sync, the Assets starting deadlines, letters and digests. Start-up (migrations,
parsing, building the data) is not timed.

Printed, from Airflow's metadata database: each DAG run's wall time (start to end) and the total
(the sync run queued to the digests run finished); for every task the time Airflow adds before it
runs (queued_dttm to start_date: the executor, the broker, the worker starting the task process)
beside the time it ran (start_date to end_date). Then Celery's total over LocalExecutor's, each
size measured in this run. No goal is set for the ratio: it is what a second machine costs and buys.

`[core] parallelism` is 4 on both executors, and two Celery workers of concurrency 2 give the same
four task slots. The daily chain is sequential (each DAG waits for the previous one's Asset), so
more slots would not shorten it; a second worker buys resilience (see test_celery_workers.py), not speed.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from tests.airflow_stack import DAILY, airflow_stack, contractors
from tests.smtp_server import serving

SIZES = {
    # The demo's size: `cautionflow demo-data` defaults and the demo config's recipients.
    "demo": {"alerts": 600, "homes": 20_000, "recipients": None},
    # 10,000 alerts with 300 recipients: 298 contractors, the Night Desk and operations.
    "large": {"alerts": 10_000, "homes": 20_000, "recipients": "300"},
}
EXECUTORS = {"local": "LocalExecutor", "celery": "CeleryExecutor"}


def recipients_for(size: str) -> list[dict] | None:
    if SIZES[size]["recipients"] is None:
        return None
    return [*contractors(298), {"name": "Night Desk", "email": "ooh@callcentre.example", "role": "out_of_hours"},
            {"name": "Operations", "email": "ops@example.org", "role": "operations"}]


def measure(size: str, executor: str) -> dict:
    with tempfile.TemporaryDirectory(prefix="h_celery_bench_") as tmp, serving() as mail:
        spec = SIZES[size]
        with airflow_stack(
            Path(tmp), executor=EXECUTORS[executor], smtp_port=mail.port, alerts=spec["alerts"],
            homes=spec["homes"], recipients=recipients_for(size), smtp_concurrency=4,
        ) as (stack, facts):
            stack.run_pipeline(timeout=3600)
            runs = stack.meta("SELECT dag_id, queued_at, start_date, end_date FROM dag_run WHERE dag_id = ANY(%s)",
                              list(DAILY))
            tis = stack.task_instances()
            mails = len(mail.handler.received)
    by_dag = {d: (q, s, e) for d, q, s, e in runs}
    total = (by_dag["cautionflow_digests"][2] - by_dag["cautionflow_sync"][0]).total_seconds()
    return {
        "size": size, "executor": executor, "as_of": facts["as_of"], "mails": mails, "total": total,
        "dags": {d: (e - s).total_seconds() for d, (_q, s, e) in by_dag.items()},
        "tasks": [(t["dag_id"], t["task_id"], (t["start_date"] - t["queued_dttm"]).total_seconds(),
                   (t["end_date"] - t["start_date"]).total_seconds(), t["hostname"]) for t in tis],
    }


def report(result: dict) -> None:
    print(f"\n{result['size']} on {result['executor']} (as of {result['as_of']}; {result['mails']} emails): "
          f"total {result['total']:.1f} s, sync queued to digests finished")
    for dag_id in DAILY:
        print(f"  {dag_id:<24} run {result['dags'][dag_id]:7.1f} s")
    print(f"  {'task':<46} {'queued->running':>16} {'running':>9}  host")
    for dag_id, task_id, waited, ran, host in result["tasks"]:
        print(f"  {dag_id + '.' + task_id:<46} {waited:14.1f} s {ran:7.1f} s  {host}")
    waits = [w for _d, _t, w, _r, _h in result["tasks"]]
    runs = [r for _d, _t, _w, r, _h in result["tasks"]]
    print(f"  Airflow's per-task overhead (queued->running): median {statistics.median(waits):.1f} s, "
          f"sum {sum(waits):.1f} s; work (running): sum {sum(runs):.1f} s")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="demo,large", help="comma-separated: demo, large (default both)")
    parser.add_argument("--executors", default="local,celery", help="comma-separated: local, celery (default both)")
    args = parser.parse_args()
    sizes = [s.strip() for s in args.sizes.split(",") if s.strip()]
    executors = [e.strip() for e in args.executors.split(",") if e.strip()]
    for name in sizes:
        if name not in SIZES:
            parser.error(f"unknown size {name!r}: demo or large")
    for name in executors:
        if name not in EXECUTORS:
            parser.error(f"unknown executor {name!r}: local or celery")
    results = {}
    for size in sizes:
        for executor in executors:
            started = time.monotonic()
            results[size, executor] = measure(size, executor)
            report(results[size, executor])
            print(f"  (case wall time with start-up: {time.monotonic() - started:.0f} s)")
    print("\nsize   " + "".join(f"{e:>12}" for e in executors) + ("   celery/local" if len(executors) == 2 else ""))
    for size in sizes:
        totals = [results[size, e]["total"] for e in executors]
        ratio = f"   {totals[1] / totals[0]:12.2f}" if len(executors) == 2 and executors == ["local", "celery"] else ""
        print(f"{size:<7}" + "".join(f"{t:10.1f} s" for t in totals) + ratio)


if __name__ == "__main__":
    main()
