"""The shipped policy profiles, one YAML file per landlord, and the loader.

A new landlord copies a shipped file, edits the values (each is commented with the clause it
comes from) and passes its path; no code changes. The profile's name is the file name.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import yaml

from cautionflow.domain.policy import PolicyProfile, ProfileError, parse_profile
from cautionflow.resources import package_folder

__all__ = ["PROFILE_DIR", "PolicyProfile", "ProfileError", "load_profile", "shipped_profiles"]

# The shipped profiles are package data (pyproject's package-data), found through importlib.resources.
PROFILE_DIR = package_folder(__name__)


class _Loader(yaml.SafeLoader):
    """Safe YAML that leaves dates as text, so a bad date is reported against its field."""


_Loader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def shipped_profiles() -> tuple[str, ...]:
    return tuple(sorted(p.stem for p in PROFILE_DIR.glob("*.yaml")))


def load_profile(name_or_path: str | Path, *, home: Path | None = None) -> PolicyProfile:
    """A shipped profile by name ("dover"), or any profile file by path ("acme.yaml"); a relative
    path is read from `home` (a deployment's project home, as the config's `policy` means it) when
    given, else from the working directory."""
    text = str(name_or_path)
    looks_like_path = isinstance(name_or_path, Path) or text.endswith((".yaml", ".yml")) or "/" in text
    if looks_like_path:
        path = Path(text)
        if home is not None and not path.is_absolute():
            path = home / path
        return _load_file(path.resolve())
    if text not in shipped_profiles():
        raise ProfileError(
            f"unknown policy profile {text!r}; shipped profiles: {', '.join(shipped_profiles())} "
            "(or give the path to a .yaml file)")
    return _load_file(PROFILE_DIR / f"{text}.yaml")


@lru_cache(maxsize=32)
def _load_file_cached(path: Path, mtime_ns: int) -> PolicyProfile:
    source = path.name
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_Loader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" (line {mark.line + 1})" if mark is not None else ""
        raise ProfileError(f"profile {source!r}: not valid YAML{where}") from None
    except UnicodeDecodeError:
        raise ProfileError(f"profile {source!r}: not a UTF-8 text file") from None
    return parse_profile(data, name=path.stem, source=source)


def _load_file(path: Path) -> PolicyProfile:
    try:
        mtime_ns = path.stat().st_mtime_ns
    except FileNotFoundError:
        raise ProfileError(f"profile file not found: {path}") from None
    except OSError as exc:
        raise ProfileError(f"profile file cannot be read: {path}: {exc.strerror}") from None
    if not path.is_file():
        raise ProfileError(f"profile file cannot be read: {path}: not a file")
    return _load_file_cached(path, mtime_ns)
