"""The repository's pinned settings (settings.toml), read once into frozen objects.

settings.toml is the one source of truth: the CI configs are checked against it and the
release tools rewrite it. Every `python -m multibuild` flag defaults to a value from here.
"""

from __future__ import annotations

import difflib
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multibuild.errors import ConfigurationError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

SETTINGS_FILE = "settings.toml"


@dataclass(frozen=True, kw_only=True)
class ProjectSettings:
    name: str
    repo: str
    build_commit: str
    daily_commit: str
    config: Path


@dataclass(frozen=True, kw_only=True)
class BuildSettings:
    config_settings: tuple[str, ...] = ()
    test_requires: tuple[str, ...] = ()
    system_tools: tuple[str, ...] = ()
    # Build in a kept venv with fixed paths instead of an isolated temporary one: compiler
    # caches hit across builds. The build requirements are installed into that venv.
    isolation: bool = True
    ccache: bool = True


@dataclass(frozen=True, kw_only=True)
class MatrixSettings:
    python: tuple[str, ...]
    linux: tuple[str, ...] = ()
    macos: tuple[str, ...] = ()
    windows: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class UploadSettings:
    # Container URLs per channel: a path (relative to settings.toml), file://, swift://, s3://.
    pre_release: str = "containers/pre-release"
    release: str = "containers/release"
    # fnmatch patterns of branch names.
    development_branches: tuple[str, ...] = ("master", "main")
    release_branches: tuple[str, ...] = ("v[0-9]*.[0-9]*.[0-9]*", "maintenance/[0-9]*.[0-9]*.x")
    # Channel for any other branch: "" (no upload), "pre-release" or "release".
    other_branches: str = ""
    # Retention of nightly builds in the pre-release container.
    keep_nightlies: int = 5
    keep_days: int = 30
    # owner/name of the repository whose CI may upload ("": not checked); other repos are forks.
    repository: str = ""


BUILDERS = ("cibuildwheel", "host")


@dataclass(frozen=True, kw_only=True)
class CISettings:
    # How CI jobs build: "cibuildwheel" (Linux in manylinux containers, macOS and Windows on
    # the runner) or "host" (the engine's own pipeline on the runner).
    builder: str = "cibuildwheel"
    manylinux_image: str = "manylinux_2_28"
    # The nightly schedule (cron syntax, UTC) of the GitHub workflow; Travis and Appveyor take
    # theirs in their web interfaces (README.rst, "Nightly builds").
    schedule: str = "17 3 * * *"
    # Encrypted credentials, safe to commit: `travis encrypt NAME=value` outputs, and
    # "NAME=<encrypted value>" from Appveyor's encrypt page.
    travis_secure: tuple[str, ...] = ()
    appveyor_secure: tuple[str, ...] = ()


@dataclass(frozen=True, kw_only=True)
class Settings:
    path: Path
    project: ProjectSettings
    build: BuildSettings
    matrix: MatrixSettings
    upload: UploadSettings = field(default_factory=UploadSettings)
    ci: CISettings = field(default_factory=CISettings)
    libraries: dict[str, str] = field(default_factory=dict)
    # Variables given to config.sh's hooks as they are (the environment wins).
    hook_env: dict[str, str] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent


_KNOWN: dict[str, set[str]] = {
    "project": {"name", "repo", "BUILD_COMMIT", "DAILY_COMMIT", "config"},
    "build": {"config_settings", "test_requires", "system_tools", "isolation", "ccache"},
    "matrix": {"python", "linux", "macos", "windows"},
    "upload": {
        "pre_release",
        "release",
        "development_branches",
        "release_branches",
        "other_branches",
        "keep_nightlies",
        "keep_days",
        "repository",
    },
    "ci": {"builder", "manylinux_image", "schedule", "travis_secure", "appveyor_secure"},
    "libraries": set(),  # free-form: library name -> version
    "hook_env": set(),  # free-form: variable -> value
}


def _check_keys(table: str, data: dict[str, Any], path: Path) -> None:
    known = _KNOWN[table]
    if not known:
        return
    for key in data:
        if key not in known:
            hint = difflib.get_close_matches(key, known, n=1)
            extra = f" (did you mean {hint[0]!r}?)" if hint else ""
            raise ConfigurationError(f"{path}: unknown setting [{table}] {key!r}{extra}")


def _strings(value: Any, where: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigurationError(f"{where} must be a list of strings")
    return tuple(value)


def _typed_values(name: str, table: dict[str, Any]) -> dict[str, Any]:
    """Lists become tuples of strings; scalars must have the type of the field's default."""
    defaults = {"build": BuildSettings(), "upload": UploadSettings(), "ci": CISettings()}[name]
    values: dict[str, Any] = {}
    for key, value in table.items():
        expected = type(getattr(defaults, key))
        if expected is tuple:
            values[key] = _strings(value, f"[{name}] {key}")
        elif not isinstance(value, expected):
            raise ConfigurationError(f"[{name}] {key} must be a {expected.__name__}")
        else:
            values[key] = value
    return values


def find_settings_file(start: Path | None = None) -> Path | None:
    """settings.toml in `start` (default: the working directory) or a parent of it."""
    here = (start or Path.cwd()).resolve()
    for directory in (here, *here.parents):
        candidate = directory / SETTINGS_FILE
        if candidate.is_file():
            return candidate
    return None


def settings_from(path: str | Path | None, *, fallback: Path | None = None) -> Settings | None:
    """The settings every command uses: the file given (it must exist), else settings.toml
    found from the working directory upwards, else from `fallback`; None if there is none."""
    if path:
        given = Path(path)
        if not given.is_file():
            raise ConfigurationError(f"settings file {given} does not exist")
        return load_settings(given)
    found = find_settings_file() or (find_settings_file(fallback) if fallback else None)
    return load_settings(found) if found else None


def load_settings(path: Path) -> Settings:
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as error:
        raise ConfigurationError(f"cannot read settings file {path}: {error}") from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigurationError(f"{path} is not valid TOML: {error}") from None
    for table, values in data.items():
        if table not in _KNOWN:
            raise ConfigurationError(f"{path}: unknown table [{table}]")
        _check_keys(table, values, path)
    try:
        project = data["project"]
        settings = Settings(
            path=path.resolve(),
            project=ProjectSettings(
                name=str(project["name"]),
                repo=str(project["repo"]),
                build_commit=str(project["BUILD_COMMIT"]),
                daily_commit=str(project.get("DAILY_COMMIT", project["BUILD_COMMIT"])),
                config=(path.parent / str(project.get("config", "config.sh"))).resolve(),
            ),
            build=BuildSettings(**_typed_values("build", data.get("build", {}))),
            matrix=MatrixSettings(
                **{
                    key: _strings(value, f"[matrix] {key}")
                    for key, value in data.get("matrix", {"python": []}).items()
                }
            ),
            upload=UploadSettings(**_typed_values("upload", data.get("upload", {}))),
            ci=CISettings(**_typed_values("ci", data.get("ci", {}))),
            libraries={str(k): str(v) for k, v in data.get("libraries", {}).items()},
            hook_env={str(k): str(v) for k, v in data.get("hook_env", {}).items()},
        )
    except KeyError as error:
        raise ConfigurationError(f"{path}: missing required setting {error}") from None
    except TypeError as error:
        raise ConfigurationError(f"{path}: {error}") from None
    if settings.ci.builder not in BUILDERS:
        raise ConfigurationError(
            f"{path}: [ci] builder is one of {', '.join(BUILDERS)}, not {settings.ci.builder!r}"
        )
    for entry in settings.ci.appveyor_secure:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*=\S+", entry):
            raise ConfigurationError(f"{path}: [ci] appveyor_secure entries are NAME=ENCRYPTED")
    return settings
