"""The test run's own guard (issue 12): a process a test starts and leaves running fails the run.

Checked the only honest way: a real pytest run, in a subprocess, of one test that leaks a child
(in a new session, so that it is not in the test's process group), with this suite's conftest as
a plugin; then the same test cleaning up after itself."""

from __future__ import annotations

import subprocess
import sys

from tests.support import REPO

LEAKY = '''
import subprocess, sys

def test_leaks_a_child():
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
'''

TIDY = '''
import subprocess, sys
from tests.support import stop_process_group

def test_stops_its_child():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    stop_process_group(child)
'''


def run_pytest(tmp_path, source: str) -> subprocess.CompletedProcess[str]:
    (tmp_path / "test_child.py").write_text(source)
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_child.py")],
        cwd=REPO, capture_output=True, text=True, timeout=120,
    )


def test_a_child_left_running_fails_the_run_and_is_killed(tmp_path):
    result = run_pytest(tmp_path, LEAKY)

    assert result.returncode == 1, result.stdout[-3000:]
    assert "1 passed" in result.stdout  # the test itself passed: the guard is what failed the run
    assert "process(es) started by the tests outlived them" in result.stdout
    assert "time.sleep(300)" in result.stdout
    leftover = subprocess.run(["pgrep", "-f", "import time; time.sleep(300)"], capture_output=True, text=True)
    assert leftover.stdout == "", "the guard must kill what it reports"


def test_a_child_stopped_by_its_test_passes(tmp_path):
    result = run_pytest(tmp_path, TIDY)

    assert result.returncode == 0, result.stdout[-3000:]
    assert "outlived" not in result.stdout
