"""The layers' import rules (README, "Architecture: where code goes") are checked by a tool, and a
break of each kind fails it: import-linter's contracts for the package, ruff's banned-api for the
DAG files and the plugin. Each test breaks a copy of the tree, never the checkout."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import REPO

BIN = Path(sys.executable).parent


def copy_of_the_tree(tmp_path: Path) -> Path:
    tree = tmp_path / "tree"
    shutil.copytree(REPO / "src", tree / "src", ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"),
                    symlinks=True)
    for folder in ("dags", "plugins"):
        shutil.copytree(REPO / folder, tree / folder, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tree / "pyproject.toml")
    return tree


def lint_imports(tree: Path) -> subprocess.CompletedProcess[str]:
    # The copy's package first on the path, so import-linter reads the copy, not the installed checkout.
    return subprocess.run(
        [str(BIN / "lint-imports"), "--no-cache"], cwd=tree, capture_output=True, text=True,
        env={"PATH": f"{BIN}:/usr/bin:/bin", "PYTHONPATH": str(tree / "src")}, timeout=300,
    )


def add_import(path: Path, line: str) -> None:
    """Put `line` after the module's `from __future__` import."""
    text = path.read_text()
    anchor = "from __future__ import annotations\n"
    assert anchor in text, path
    path.write_text(text.replace(anchor, anchor + line + "\n", 1))


def test_the_tree_as_it_is_keeps_every_contract(tmp_path):
    done = lint_imports(copy_of_the_tree(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 broken" in done.stdout


@pytest.mark.parametrize(("module", "line", "contract"), [
    ("domain/codes.py", "import cautionflow.config  # noqa: F401",
     "cautionflow.domain is not allowed to import cautionflow.config"),
    ("domain/deadlines.py", "import sqlalchemy  # noqa: F401", "cautionflow.domain is not allowed to import sqlalchemy"),
    ("services/status.py", "import cautionflow.steps  # noqa: F401",
     "cautionflow.services is not allowed to import cautionflow.steps"),
    ("services/digests.py", "from sqlalchemy import select  # noqa: F401",
     "cautionflow.services is not allowed to import sqlalchemy"),
    ("commands/status.py", "from cautionflow.adapters.register import Register  # noqa: F401",
     "cautionflow.commands is not allowed to import cautionflow.adapters"),
    ("web/register_page.py", "from cautionflow.services import status  # noqa: F401",
     "cautionflow.web is not allowed to import cautionflow.services"),
    ("commands/run.py", "import cautionflow.cli  # noqa: F401", "cautionflow.commands is not allowed to import cautionflow.cli"),
])
def test_a_break_of_a_layer_rule_fails_the_lint(tmp_path, module, line, contract):
    tree = copy_of_the_tree(tmp_path)
    add_import(tree / "src/cautionflow" / module, line)
    done = lint_imports(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert contract in " ".join(done.stdout.split()), done.stdout


def test_a_dag_file_importing_an_adapter_fails_the_lint(tmp_path):
    tree = copy_of_the_tree(tmp_path)
    clean = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "dags", "plugins"], cwd=tree,
                           capture_output=True, text=True, timeout=120)
    assert clean.returncode == 0, clean.stdout
    add_import(tree / "dags/cautionflow_sync.py", "from cautionflow.adapters.register import Register  # noqa: F401")
    add_import(tree / "plugins/cautionflow_register_page.py", "import cautionflow.services.status  # noqa: F401")
    done = subprocess.run([str(BIN / "ruff"), "check", "--no-cache", "dags", "plugins"], cwd=tree,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1
    assert "TID251 `cautionflow.adapters` is banned" in done.stdout
    assert "dags/cautionflow_sync.py" in done.stdout
    assert "TID251 `cautionflow.services` is banned" in done.stdout
    assert "plugins/cautionflow_register_page.py" in done.stdout
