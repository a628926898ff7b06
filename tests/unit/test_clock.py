"""Time is an input (issue 12): product code asks a `Clock`, and only `cautionflow.clock` reads the
machine's. The scan below is what keeps it so: a new `datetime.now()` anywhere else fails here."""

from __future__ import annotations

import ast
import datetime as dt
from pathlib import Path

import pytest

from cautionflow.clock import FixedClock, system_clock

SOURCE = Path(__file__).resolve().parents[2]
PRODUCT = ("src/cautionflow", "dags", "plugins")
WALL_CLOCK_CALLS = {"now", "utcnow", "today", "time", "time_ns", "localtime", "gmtime"}
ALLOWED = {"src/cautionflow/clock.py"}  # system_clock: the one place the machine's time is read


def wall_clock_reads(path: Path, root: Path = SOURCE) -> list[str]:
    """`x.now()`, `date.today()`, `time.time()`, ... calls in one file (monotonic timers are fine: they
    measure durations, not dates)."""
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in WALL_CLOCK_CALLS:
            owner = ast.unparse(node.func.value)
            if node.func.attr in {"time", "time_ns", "localtime", "gmtime"} and owner != "time":
                continue  # e.g. a datetime's .time(): a part of a value, not the clock
            found.append(f"{path.relative_to(root)}:{node.lineno}: {ast.unparse(node.func)}()")
    return found


def test_only_the_clock_module_reads_the_machines_time():
    files = [p for folder in PRODUCT for p in sorted((SOURCE / folder).rglob("*.py"))]
    assert len(files) > 50  # the scan really saw the product
    reads = [r for p in files if str(p.relative_to(SOURCE)) not in ALLOWED for r in wall_clock_reads(p)]
    assert reads == []


def test_the_scan_catches_a_hidden_read(tmp_path):
    sneaky = tmp_path / "helper.py"
    sneaky.write_text("import datetime as dt, time\nstamp = dt.datetime.now(dt.UTC)\nt = time.time()\n"
                      "d = dt.date.today()\nok = stamp.time()\n")
    assert wall_clock_reads(sneaky, tmp_path) == [
        "helper.py:2: dt.datetime.now()", "helper.py:3: time.time()", "helper.py:4: dt.date.today()"]


def test_a_fixed_clock_shows_its_moment_until_moved():
    clock = FixedClock(dt.datetime(2026, 11, 28, 23, 59, tzinfo=dt.UTC))
    assert clock() == clock() == dt.datetime(2026, 11, 28, 23, 59, tzinfo=dt.UTC)
    assert clock.advance(minutes=2)() == dt.datetime(2026, 11, 29, 0, 1, tzinfo=dt.UTC)


def test_a_fixed_clock_needs_a_time_zone():
    with pytest.raises(ValueError, match="aware datetime"):
        FixedClock(dt.datetime(2026, 11, 28, 23, 59))


def test_the_system_clock_is_aware_utc():
    assert system_clock().utcoffset() == dt.timedelta(0)
