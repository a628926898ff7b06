"""The data the package ships: templates, fonts and the example SQL, read through importlib.resources.

The repository keeps one copy of them, in its top-level include/ folder (landlords and the README
point there). The entries beside this file are relative symlinks into include/, which setuptools
follows when it builds the wheel, so an installed package carries real files and a source checkout
reads include/ itself. A deployment's own include/ (the project home's) and a landlord's
`templates_dir` are searched before these.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

__all__ = ["package_folder", "shipped_folder"]


def package_folder(package: str, *parts: str) -> Path:
    """A folder inside an installed package, as a real path.

    Jinja's FileSystemLoader and fpdf2 open files by name, so they need a folder on disk; files()
    of a regular package (a wheel installed by pip, or a source checkout) is one. A package imported
    from a zip archive is not: that is an install this project does not support, said in one line.
    """
    folder = files(package).joinpath(*parts)
    if not isinstance(folder, Path):
        raise RuntimeError(f"{package} is not installed as files on disk (a zipped install?); "
                           f"cannot read {'/'.join(parts) or 'its data'}")
    return folder


def shipped_folder(name: str) -> Path:
    """The shipped `templates`, `fonts` or `sql` folder (whether it exists is the caller's check).

    Resolved, so in a source checkout it is the include/ folder itself and equals the project
    home's (searched once, named once in a "not found" message)."""
    return package_folder(__name__, name).resolve()
