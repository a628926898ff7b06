"""An installed wheel works: built from this repository, installed into a fresh venv outside it, and
run from a folder with no include/ of its own, so templates, fonts, SQL and profiles can only come
from the package data the wheel carries (cautionflow.resources, cautionflow.profiles).

Offline: the wheel is built with this venv's setuptools (no build isolation), and the fresh venv
reaches the dependencies through a .pth line naming this venv's site-packages. A path line in a
.pth file does not process the .pth files inside that folder, so the repository's editable install
(`__editable__.cautionflow-*.pth`, which puts src/ on sys.path) is not applied there; the test
checks that `cautionflow` is imported from the fresh venv. Synthetic data only.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import stat
import subprocess
import sys
import sysconfig
import zipfile
from html import unescape
from pathlib import Path

import pytest
import yaml

from tests.deployment import CONTACT
from tests.smtp_server import serving
from tests.support import AS_OF, REPO

pytestmark = pytest.mark.wheel

# Beyond Latin-1 (Ŵ, ŷ), so every letter embeds DejaVu Sans: the shipped fonts must be found.
ORGANISATION = "Cartrefi Tŷ Ŵyn (wheel test)"


def _run(args: list[str | Path], *, cwd: Path, env: dict[str, str] | None = None, timeout: float = 600):
    result = subprocess.run(
        [str(a) for a in args], cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout
    )
    assert result.returncode == 0, f"{args[:3]} exited {result.returncode}\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"
    return result


def _build_wheel(tmp_path: Path) -> Path:
    import setuptools

    major = int(setuptools.__version__.split(".")[0])
    assert major >= 77, f"setuptools {setuptools.__version__} cannot build this project; run `make install`"
    # A copy of the files the build reads, so the build's own droppings (build/, *.egg-info) stay out
    # of the working tree. symlinks=True keeps src/cautionflow/resources' relative links as links,
    # which resolve inside the copy too: the build must follow them, as it does from a checkout.
    source = tmp_path / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(REPO / name, source / name)
    junk = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info", "config")
    shutil.copytree(REPO / "src", source / "src", symlinks=True, ignore=junk)
    shutil.copytree(REPO / "include", source / "include", symlinks=True, ignore=junk)
    assert (source / "src/cautionflow/resources/templates").is_symlink()
    dist = tmp_path / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index",
          "-w", dist, source], cwd=tmp_path)
    (wheel,) = dist.glob("cautionflow-*.whl")
    return wheel


def _fresh_venv(tmp_path: Path, wheel: Path) -> Path:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", venv], cwd=tmp_path)
    python = venv / "bin" / "python"
    _run([python, "-m", "pip", "install", "--no-deps", "--no-index", wheel], cwd=tmp_path)
    site = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                     cwd=tmp_path).stdout.strip())
    (site / "cautionflow_test_dependencies.pth").write_text(sysconfig.get_path("purelib") + "\n")
    return venv


def test_the_installed_wheel_runs_the_pipeline_outside_the_repository(tmp_path):
    assert not tmp_path.resolve().is_relative_to(REPO)
    wheel = _build_wheel(tmp_path)

    # The wheel carries the files themselves (not links), one copy each: templates, fonts, SQL, profiles.
    with zipfile.ZipFile(wheel) as archive:
        entries = {info.filename: info for info in archive.infolist()}
    shipped = {p.relative_to(REPO / "include").as_posix() for p in (REPO / "include").rglob("*") if p.is_file()}
    expected = {f"cautionflow/resources/{name}" for name in shipped if not name.startswith("config/")}
    expected |= {f"cautionflow/profiles/{p.name}" for p in (REPO / "src/cautionflow/profiles").glob("*.yaml")}
    assert {"cautionflow/resources/templates/letters/base.html", "cautionflow/resources/fonts/DejaVuSans.ttf",
            "cautionflow/resources/sql/source_alerts.sql", "cautionflow/profiles/teign.yaml"} <= expected
    assert expected <= set(entries), sorted(expected - set(entries))
    for name in expected:
        original = (REPO / "include" / name.removeprefix("cautionflow/resources/") if "/resources/" in name
                    else REPO / "src" / name)
        assert not stat.S_ISLNK(entries[name].external_attr >> 16), name
        assert entries[name].file_size == original.stat().st_size, name
    assert not any(name.startswith("cautionflow/resources/config") for name in entries)

    venv = _fresh_venv(tmp_path, wheel)
    home = tmp_path / "home"
    home.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "CAUTIONFLOW_", "AIRFLOW"))}
    env.update(CAUTIONFLOW_HOME=str(home), AIRFLOW_HOME=str(tmp_path / "airflow"),
               PATH=f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}")

    # Imported from the fresh venv, never the repository's src/; its data folders are the installed ones.
    where = json.loads(_run([venv / "bin" / "python", "-c", (
        "import json, cautionflow\n"
        "from cautionflow.adapters.templates import SHIPPED_TEMPLATES\n"
        "from cautionflow.profiles import PROFILE_DIR\n"
        "from cautionflow.resources import shipped_folder\n"
        "from cautionflow.adapters.pdf import FONTS_DIR\n"
        "print(json.dumps({'package': cautionflow.__file__, 'templates': str(SHIPPED_TEMPLATES),\n"
        "    'fonts': str(FONTS_DIR), 'profiles': str(PROFILE_DIR), 'sql': str(shipped_folder('sql'))}))"
    )], cwd=home, env=env).stdout)
    for path in where.values():
        assert Path(path).resolve().is_relative_to(venv.resolve()), where
        assert not Path(path).resolve().is_relative_to(REPO), where

    cautionflow = venv / "bin" / "cautionflow"
    built = _run([cautionflow, "demo-data", "--out", "housing.db", "--as-of", AS_OF.isoformat()], cwd=home, env=env)
    assert json.loads(built.stdout.splitlines()[-1])["alerts"] > 0
    with serving() as server:
        config = {
            "organisation": ORGANISATION,
            "policy": "teign",  # a shipped profile, by name
            "register_url": "sqlite:///register.db",
            # The source query the wheel ships, from the installed package.
            "source": {"url": "sqlite:///housing.db", "query": str(Path(where["sql"]) / "source_alerts.sql")},
            "smtp": {"host": "127.0.0.1", "port": server.port, "security": "none",
                     "sender": "Cartrefi <alerts@example.org>", "password_env": None},
            "recipients": [
                {"name": "Acme Repairs", "email": "rota@acme.example", "role": "contractor",
                 "areas": ["NORTH", "EAST", "SOUTH", "WEST", "CENTRAL"]},
                {"name": "Housing Officers", "email": "officers@example.org", "role": "officer"},
            ],
            "letters": {"output_dir": "letters", "contact": CONTACT},
            "output_dir": "reports",
        }
        (home / "cfg.yaml").write_text(yaml.safe_dump(config, allow_unicode=True), encoding="utf-8")
        assert not (home / "include").exists()
        ran = _run([cautionflow, "run", "all", "--config", "cfg.yaml", "--as-of", AS_OF.isoformat()], cwd=home, env=env)
    summary = json.loads(ran.stdout.splitlines()[-1])
    assert summary["sync"]["inserted"] > 0 and summary["letters"]["queued"] > 0, summary
    assert "not found" not in ran.stderr, ran.stderr  # neither a template nor the Unicode font was missing

    # Reports rendered from the shipped templates.
    report = (home / "reports" / f"all-alerts-{AS_OF}.html").read_text(encoding="utf-8")
    assert ORGANISATION in report and "<table" in report

    # A resident's letter, an A4 PDF with the shipped DejaVu Sans embedded for the organisation's name.
    from pypdf import PdfReader

    pdfs = sorted((home / "letters").rglob("*.pdf"))
    assert pdfs
    reader = PdfReader(io.BytesIO(pdfs[0].read_bytes()))
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert ORGANISATION in text
    page = reader.pages[0]
    faces = {str(f.get_object()["/BaseFont"]).lstrip("/").split("+")[-1] for f in page["/Resources"]["/Font"].values()}
    assert faces & {"DejaVuSansBook", "DejaVuSansBold"}, faces

    # Mail rendered from the shipped email templates reached the SMTP server.
    digests = server.handler.messages_for("rota@acme.example")
    assert digests, [r.recipient for r in server.handler.received]
    html = unescape(digests[0].get_body(("html",)).get_content())  # non-ASCII arrives as &#375; etc.
    assert f"{ORGANISATION} caution alerts for Acme Repairs" in html
