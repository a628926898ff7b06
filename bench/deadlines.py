"""Benchmark the deadline engine: vectorised vs per-row, in memory and CSV to CSV.

    python -m bench.deadlines              # 1,000,000 synthetic alerts
    python -m bench.deadlines --rows 50000 # a quick run

Both implementations are measured in the same run, pinned to one CPU core. The per-row
reference is measured in memory on a sample and scaled (it says so); the CSV comparison runs
both on the whole file and checks that they write the same bytes. Synthetic data only.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from cautionflow.commands import compute_deadlines as command
from cautionflow.domain.calendar import WorkingCalendar
from cautionflow.domain.codes import ALERT_CODES
from cautionflow.domain.csv_format import SpreadsheetCsv, safe_text
from cautionflow.domain.deadlines import (
    DATE_OUTPUTS,
    INPUT_COLUMNS,
    OUTPUT_COLUMNS,
    AlertDeadlines,
    compute_deadlines,
    deadlines_for_alert,
    iso_text,
)
from cautionflow.domain.policy import PolicyProfile
from cautionflow.profiles import load_profile, shipped_profiles

AS_OF = date(2026, 6, 1)
CSV_POLICY = "dover"  # working-day deadlines and moved review dates: the most work per row


def synthetic_alerts(rows: int, seed: int = 20260601) -> pd.DataFrame:
    """Five landlords' registers one after another (grouped by profile), as read from CSV:
    text cells, '' when empty, realistic gaps and about 2% bad data.
    """
    rng = np.random.default_rng(seed)
    names = shipped_profiles()

    def iso(days: np.ndarray, present: np.ndarray) -> np.ndarray:
        # equal dates share one string object, as pandas.read_csv returns them
        return np.where(present, iso_text(days), "")

    codes = np.array(sorted(ALERT_CODES), dtype=object)[rng.integers(0, len(ALERT_CODES), rows)]
    codes[rng.random(rows) < 0.01] = "XYZ"  # unknown code
    codes[rng.random(rows) < 0.01] = "dnv"  # lower case, still DNV
    effective = np.datetime64("2015-01-01") + rng.integers(0, 11 * 365, rows)
    reviewed = effective + rng.integers(30, 800, rows)
    has_review = rng.random(rows) < 0.5
    base = np.where(has_review, reviewed, effective)
    ends = base + rng.integers(185, 365, rows)  # 6 to 12 months, inside every profile's limits
    outliers = rng.random(rows) < 0.02
    ends[outliers] = base[outliers] + rng.integers(-30, 600, int(outliers.sum()))  # some break them
    notified = effective + rng.integers(0, 15, rows)
    has_notice = rng.random(rows) < 0.7
    received = notified + rng.integers(0, 30, rows)

    effective_text = iso(effective, rng.random(rows) >= 0.002)
    effective_text[rng.random(rows) < 0.002] = "31/12/2025"  # a date in the wrong form
    return pd.DataFrame({
        "alert_id": np.char.add("A-", np.arange(rows).astype(str)).astype(object),
        "profile": np.array(names, dtype=object)[np.sort(rng.integers(0, len(names), rows))],
        "alert_code": codes,
        "effective_from": effective_text,
        "last_reviewed_on": iso(reviewed, has_review),
        "ends_on": iso(ends, rng.random(rows) < 0.3),
        "notified_on": iso(notified, has_notice),
        "appeal_received_on": iso(received, has_notice & (rng.random(rows) < 0.07)),
        "postcode": np.array(["CT16 3PJ", "EX2 7LA", "NE1 4XF", "SE1 9GF"], dtype=object)[
            rng.integers(0, 4, rows)],
        "note": np.array(["", "ring first", 'says "call back"', "gate code 1234, side door"], dtype=object)[
            rng.integers(0, 4, rows)],  # text that needs CSV quoting
    })


def vectorised(frame: pd.DataFrame, profiles: dict[str, PolicyProfile]) -> pd.DataFrame:
    """All the registers: one engine call per profile's run of rows, results in row order."""
    names = frame["profile"].to_numpy()
    starts = [0, *(np.flatnonzero(names[1:] != names[:-1]) + 1).tolist()]
    stops = [*starts[1:], len(frame)]
    parts = [
        compute_deadlines(frame.iloc[start:stop], profiles[names[start]], AS_OF)
        for start, stop in zip(starts, stops, strict=True)
    ]
    return pd.concat(parts)


def per_row(frame: pd.DataFrame, profiles: dict[str, PolicyProfile]) -> list[AlertDeadlines]:
    calendars = {name: WorkingCalendar(p.calendar) for name, p in profiles.items()}
    columns = [frame[c].tolist() for c in ("profile", *INPUT_COLUMNS)]
    return [
        deadlines_for_alert(
            profiles[name], calendars[name], as_of=AS_OF, **dict(zip(INPUT_COLUMNS, values, strict=True)))
        for name, *values in zip(*columns, strict=True)
    ]


def as_reference(result: pd.DataFrame) -> list[AlertDeadlines]:
    dates = {n: [None if pd.isna(v) else v.date() for v in result[n]] for n in DATE_OUTPUTS}
    rows = zip(*dates.values(), result["overdue"].tolist(), result["error"].tolist(), strict=True)
    return [AlertDeadlines(*row) for row in rows]


def timed(action: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = action()
    return time.perf_counter() - start, result


def csv_per_row(source: Path, target: Path, profile: PolicyProfile) -> None:
    """The CSV job done one row at a time with the csv module: the baseline for the command."""
    calendar = WorkingCalendar(profile.calendar)
    with (source.open(newline="", encoding="utf-8") as inp,
          target.open("w", newline="", encoding="utf-8") as out):
        reader = csv.reader(inp)
        header = next(reader)
        where = {name: header.index(name) for name in INPUT_COLUMNS}
        writer = csv.writer(out, dialect=SpreadsheetCsv)  # the command's CSV rules, cell by cell
        writer.writerow([safe_text(c) for c in (*header, *OUTPUT_COLUMNS)])
        for row in reader:
            values = {name: row[i] for name, i in where.items()}
            result = deadlines_for_alert(profile, calendar, as_of=AS_OF, **values)
            writer.writerow([safe_text(c) for c in (
                *row,
                *(getattr(result, n).isoformat() if getattr(result, n) else "" for n in DATE_OUTPUTS),
                "true" if result.overdue else "false",
                result.error or "",
            )])


def csv_command(source: Path, target: Path) -> None:
    """`compute-deadlines` in this process (its handler, stdout sent to a file)."""
    parser = argparse.ArgumentParser(prog="cautionflow")
    command.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        ["compute-deadlines", "--policy", CSV_POLICY, "--input", str(source), "--as-of", str(AS_OF)])
    with target.open("w", encoding="utf-8", newline="") as out, contextlib.redirect_stdout(out):
        args.handler(args)


def csv_subprocess(source: Path, target: Path) -> str | None:
    """The real `python -m cautionflow compute-deadlines`, start-up included; None if it ran."""
    probe = subprocess.run([sys.executable, "-c", "import cautionflow.cli as c; c.build_parser()"],
                           capture_output=True, text=True)
    if probe.returncode != 0:
        return probe.stderr.strip().splitlines()[-1]
    with target.open("w", encoding="utf-8") as out:
        subprocess.run([sys.executable, "-m", "cautionflow", "compute-deadlines", "--policy", CSV_POLICY,
                        "--input", str(source), "--as-of", AS_OF.isoformat()], stdout=out, check=True)
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.deadlines", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=1_000_000,
                        help="alerts to generate (default 1,000,000)")
    parser.add_argument("--sample", type=int, default=100_000,
                        help="rows the per-row reference runs on in memory, then scaled (default 100,000)")
    parser.add_argument("--skip-csv", action="store_true", help="only the in-memory comparison")
    args = parser.parse_args(argv)

    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {0})  # one core, so the figures do not depend on what else runs
    profiles = {name: load_profile(name) for name in shipped_profiles()}
    for profile in profiles.values():
        WorkingCalendar(profile.calendar).is_working_day(AS_OF)  # load the bank holidays before timing
    frame = synthetic_alerts(args.rows)
    step = max(1, args.rows // args.sample)
    sample = frame.iloc[::step]  # spread over all five registers
    vectorised(frame.iloc[::1000], profiles)  # warm up imports and caches

    print(f"cautionflow deadlines benchmark: {args.rows:,} synthetic alerts, {len(profiles)} profiles "
          f"(grouped by profile), as of {AS_OF}, pinned to CPU 0")
    fast_seconds, fast = timed(lambda: vectorised(frame, profiles))
    slow_seconds, slow = timed(lambda: per_row(sample, profiles))
    scaled = slow_seconds * args.rows / len(sample)
    agree = as_reference(fast.iloc[::step]) == slow
    errors = int(fast["error"].notna().sum())
    print("\nIn memory")
    fast_rate = args.rows / fast_seconds
    print(f"  vectorised compute_deadlines    {fast_seconds:8.2f} s  {fast_rate:12,.0f} rows/s")
    print(f"  per-row deadlines_for_alert     {scaled:8.2f} s  {len(sample) / slow_seconds:12,.0f} rows/s"
          f"  (measured {slow_seconds:.2f} s on every {step}th row, {len(sample):,} rows, scaled)")
    print(f"  ratio {scaled / fast_seconds:.1f}x (goal >= 20x); vectorised under 1 s: "
          f"{'yes' if fast_seconds < 1 else 'no'}; rows with an error: {errors:,}")
    print(f"  both give identical results on the {len(sample):,} sampled rows: {'yes' if agree else 'NO'}")
    if not agree:
        return 1
    if args.skip_csv:
        return 0

    with tempfile.TemporaryDirectory(prefix="cautionflow-bench-") as tmp:
        source, ours, theirs = Path(tmp, "alerts.csv"), Path(tmp, "command.csv"), Path(tmp, "per_row.csv")
        frame.drop(columns="profile").to_csv(source, index=False, lineterminator="\n")
        size_mb = source.stat().st_size / 1e6
        command_seconds, _ = timed(lambda: csv_command(source, ours))
        baseline_seconds, _ = timed(lambda: csv_per_row(source, theirs, profiles[CSV_POLICY]))
        same = ours.read_bytes() == theirs.read_bytes()
        print(f"\nCSV to CSV ({args.rows:,} rows, {size_mb:.0f} MB in, profile {CSV_POLICY})")
        print(f"  compute-deadlines (read_csv, engine, csv out){command_seconds:8.2f} s  "
              f"{args.rows / command_seconds:12,.0f} rows/s")
        print(f"  per-row with the csv module                   {baseline_seconds:8.2f} s  "
              f"{args.rows / baseline_seconds:12,.0f} rows/s  (whole file)")
        print(f"  ratio {baseline_seconds / command_seconds:.1f}x (goal >= 5x); "
              f"identical output files: {'yes' if same else 'NO'}")
        cli_seconds, problem = timed(lambda: csv_subprocess(source, Path(tmp, "cli.csv")))
        if problem:
            print(f"  python -m cautionflow compute-deadlines: not run, the CLI cannot start: {problem}")
        else:
            print(f"  python -m cautionflow compute-deadlines as a process, start-up included: "
                  f"{cli_seconds:.2f} s")
        if not same:
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
