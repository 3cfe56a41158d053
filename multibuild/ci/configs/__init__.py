"""The CI configs, generated from settings.toml and checked against it.

settings.toml is the source of truth; each provider's config (`Provider`: .travis.yml for Linux
and macOS, appveyor.yml for Windows, the GitHub workflow for every platform) and
cibuildwheel.toml are rendered from it (`python -m multibuild check-config --write`), and each
shows BUILD_COMMIT and DAILY_COMMIT at its top. `set_commits` changes them in settings.toml
(one line each, comments kept) and regenerates the rest; `check_configs` reports, with file and
line, every way the files disagree with settings.toml.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from multibuild._compat import tomllib
from multibuild.ci.configs.appveyor import Appveyor
from multibuild.ci.configs.base import KEYS, Provider
from multibuild.ci.configs.github import GitHub
from multibuild.ci.configs.travis import Travis
from multibuild.cibuildwheel import config as cibuildwheel
from multibuild.errors import ConfigurationError
from multibuild.matrix import jobs
from multibuild.settings import SETTINGS_FILE, Settings, load_settings
from multibuild.util.git import ref_problem

PROVIDERS: tuple[Provider, ...] = (Travis(), Appveyor(), GitHub())
CI_FILES = tuple(provider.path for provider in PROVIDERS)
CIBUILDWHEEL = cibuildwheel.CONFIG_FILE
# The files generated from settings.toml, and the files that show the commits.
GENERATED = (*CI_FILES, CIBUILDWHEEL)
ALL_FILES = (SETTINGS_FILE, *CI_FILES)
RENDERERS: dict[str, Callable[[Settings], str]] = {
    **{provider.path: provider.render for provider in PROVIDERS},
    CIBUILDWHEEL: cibuildwheel.render,
}
_PROVIDER = {provider.path: provider for provider in PROVIDERS}
_SETTINGS_LINE = (
    r"^(?P<lead>\s*{key}\s*=\s*)(?P<q>[\"'])(?P<value>[^\"']*)(?P=q)(?P<tail>\s*(#.*)?)$"
)

# A commit as these files may name it: a ref git accepts (util.git.ref_problem), and only these
# characters, so the YAML stays plain (no spaces, quotes, `#`, `$`).
_YAML_SAFE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+@-]{0,199}$")


def check_ref(ref: str) -> str:
    problem = ref_problem(ref)
    if problem:
        raise ConfigurationError(f"{ref!r} is not a commit these files can name: {problem}")
    if not _YAML_SAFE.match(ref):
        raise ConfigurationError(
            f"{ref!r} is not a commit these files can name (a branch, tag or hash: letters, "
            "digits and . _ / + @ -)"
        )
    return ref


def _read(root: Path, path: str) -> str:
    try:
        return (root / path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"cannot read {root / path}: {error}") from None


def _parse(path: str, text: str) -> Any:
    try:
        return tomllib.loads(text) if path.endswith(".toml") else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ConfigurationError(f"{path} does not parse: {error}") from None


def _settings_line(key: str) -> re.Pattern[str]:
    return re.compile(_SETTINGS_LINE.format(key=key))


def _settings_line_of(text: str, key: str) -> str:
    """settings.toml:N, the line that pins `key` (the file alone if not exactly one)."""
    pattern = _settings_line(key)
    found = [i for i, line in enumerate(text.splitlines(), 1) if pattern.match(line)]
    return f"{SETTINGS_FILE}:{found[0]}" if len(found) == 1 else SETTINGS_FILE


def read_commits_text(text: str) -> dict[str, str]:
    """The commits settings.toml's text pins (DAILY_COMMIT defaults to BUILD_COMMIT). The CI
    configs show them too, but nothing reads them there: check_configs compares each config
    with what settings.toml renders."""
    project = (_parse(SETTINGS_FILE, text) or {}).get("project", {})
    # A release's sdist ([project] sdist) pins no commit: the files show empty ones.
    unpinned = "" if project.get("sdist") else None
    values: dict[str, Any] = {k: project.get(k, unpinned) for k in KEYS}
    values["DAILY_COMMIT"] = values["DAILY_COMMIT"] or values["BUILD_COMMIT"]
    result: dict[str, str] = {}
    for key in KEYS:
        found = values.get(key)
        if not isinstance(found, str):
            raise ConfigurationError(f"{SETTINGS_FILE}: {key} missing or not a string ({found!r})")
        result[key] = found
    return result


def read_commits(root: Path) -> dict[str, str]:
    """The commits root's settings.toml pins."""
    return read_commits_text(_read(root, SETTINGS_FILE))


@dataclass
class Written:
    path: str
    changed: bool


def _replace(target: Path, text: str) -> bool:
    old = target.read_text(encoding="utf-8") if target.exists() else None
    if old == text:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(target.name + ".tmp")
    tmp.write_text(text, encoding="utf-8", newline="")
    tmp.replace(target)
    return True


def write_configs(root: Path) -> list[Written]:
    """(Re)generate the CI configs and cibuildwheel.toml from settings.toml."""
    settings = load_settings(root / SETTINGS_FILE).pinned()
    rendered = {path: render(settings) for path, render in RENDERERS.items()}
    for path, text in rendered.items():
        _parse(path, text)  # a renderer bug must not reach CI
    return [Written(path, _replace(root / path, text)) for path, text in rendered.items()]


def set_commits(root: Path, changes: Mapping[str, str]) -> list[str]:
    """Set BUILD_COMMIT / DAILY_COMMIT in settings.toml (its one line each: comments and
    layout kept) and regenerate the CI configs. The files changed."""
    path = root / SETTINGS_FILE
    text = _read(root, SETTINGS_FILE)
    for key, value in changes.items():
        if key not in KEYS:
            raise ConfigurationError(f"unknown key {key}")
        check_ref(value)
        pattern = _settings_line(key)
        lines = text.splitlines(keepends=True)
        found = [i for i, line in enumerate(lines) if pattern.match(line.rstrip("\r\n"))]
        if len(found) != 1:
            raise ConfigurationError(
                f"{SETTINGS_FILE}: expected exactly one {key} line in [project], found {len(found)}"
            )
        index = found[0]
        match = pattern.match(lines[index].rstrip("\r\n"))
        assert match is not None
        ending = lines[index][len(lines[index].rstrip("\r\n")) :]
        lines[index] = f"{match['lead']}{match['q']}{value}{match['q']}{match['tail']}{ending}"
        text = "".join(lines)
        if read_commits_text(text)[key] != value:
            raise ConfigurationError(f"{SETTINGS_FILE}: setting {key} did not take")
    load_settings_text_check(path, text)
    changed = [SETTINGS_FILE] if _replace(path, text) else []
    changed += [w.path for w in write_configs(root) if w.changed]
    return changed


def load_settings_text_check(path: Path, text: str) -> None:
    """settings.toml as edited must still load (checked before it is written)."""
    tmp = path.with_name(path.name + ".check")
    try:
        tmp.write_text(text, encoding="utf-8")
        load_settings(tmp)
    finally:
        tmp.unlink(missing_ok=True)


# -- checks --------------------------------------------------------------------------------------


def expected_jobs(settings: Settings, path: str) -> list[str]:
    """The job ids a provider's config runs; for cibuildwheel.toml the build identifiers
    (an Accelerate job builds its PLAT's identifier)."""
    provider = _PROVIDER.get(path)
    if provider is None:
        return list(dict.fromkeys(job.build_id for job in jobs(settings)))
    return [job.id for job in provider.jobs(settings)]


def config_jobs(path: str, data: Any) -> list[str]:
    """The job ids (MB_JOB, cibuildwheel's `build`) a parsed CI config runs."""
    provider = _PROVIDER.get(path)
    if provider is not None:
        return provider.job_ids(data)
    return list(((data.get("tool") or {}).get("cibuildwheel") or {}).get("build") or [])


# Paths of this repository a config may name, and `python -m multibuild COMMAND`.
_PATH = re.compile(
    r"(?<![\w./-])(?:\{project\}/)?((?:scripts|multibuild|\.ci|\.github|docs|tests|bench)/[\w./-]*\w"
    r"|[\w-]+\.(?:sh|toml|rst|md)\b)"
)
_COMMAND = re.compile(r"python3? -m multibuild ([a-z][\w-]*)")


def referenced_paths(text: str) -> set[str]:
    return {m.group(1) for m in _PATH.finditer(text)}


def _first_difference(old: str, new: str) -> tuple[int, str, str]:
    old_lines, new_lines = old.splitlines(), new.splitlines()
    for number, (a, b) in enumerate(zip(old_lines, new_lines, strict=False), start=1):
        if a != b:
            return number, a, b
    number = min(len(old_lines), len(new_lines)) + 1

    def pick(lines: list[str]) -> str:
        return lines[number - 1] if number <= len(lines) else "(end of file)"

    return number, pick(old_lines), pick(new_lines)


@dataclass(frozen=True)
class Problem:
    """What to fix where; `kind` is generated, jobs, path, command, cibuildwheel or read."""

    message: str
    kind: str

    def __str__(self) -> str:
        return self.message


def check_configs(
    root: Path,
    *,
    command_names: Collection[str],
    with_cibuildwheel: bool = False,
    environ: Mapping[str, str],
) -> list[Problem]:
    """What disagrees with settings.toml, each with the file and line to fix or the command
    that fixes it; [] when all agree. `command_names`: the `python -m multibuild` commands
    that exist. `with_cibuildwheel`: also ask cibuildwheel itself which builds
    cibuildwheel.toml selects on each platform (it runs with `environ`)."""
    settings = load_settings(root / SETTINGS_FILE).pinned()
    problems: list[Problem] = []
    texts = {}
    for path in GENERATED:
        try:
            texts[path] = _read(root, path)
        except ConfigurationError as error:
            message = f"{error}; `python -m multibuild check-config --write` makes it"
            problems.append(Problem(message, "read"))
    for path, text in texts.items():
        problems += _file_problems(root, path, text, settings=settings, command_names=command_names)
    if with_cibuildwheel and CIBUILDWHEEL in texts:
        problems += _cibuildwheel_problems(root, settings, environ)
    return problems


def _file_problems(
    root: Path,
    path: str,
    text: str,
    *,
    settings: Settings,
    command_names: Collection[str],
) -> list[Problem]:
    """One generated file's jobs, the paths and commands it names, and its text against what
    settings.toml generates."""
    problems: list[Problem] = []
    data = _parse(path, text) or {}
    have, want_jobs = config_jobs(path, data), expected_jobs(settings, path)
    if sorted(have) != sorted(want_jobs):
        missing = sorted(set(want_jobs) - set(have))
        extra = sorted(set(have) - set(want_jobs))
        message = (
            f"{path}: its jobs differ from settings.toml's [matrix] (missing {missing}, "
            f"extra {extra}); `python -m multibuild check-config --write` regenerates it"
        )
        problems.append(Problem(message, "jobs"))
    for name in sorted(referenced_paths(text)):
        if not (root / name).exists():
            message = f"{path}: names {name}, which does not exist in {root}"
            problems.append(Problem(message, "path"))
    for command in sorted(set(_COMMAND.findall(text)) - set(command_names)):
        message = f"{path}: runs `python -m multibuild {command}`, no such command"
        problems.append(Problem(message, "command"))
    rendered = RENDERERS[path](settings)
    if text != rendered:
        number, found, should = _first_difference(text, rendered)
        message = _stale_commit(root, path, number, found, should) or (
            f"{path}:{number}: differs from what settings.toml generates (has "
            f"{found.strip()!r}, should be {should.strip()!r}); "
            "`python -m multibuild check-config --write` regenerates it"
        )
        problems.append(Problem(message, "generated"))
    return problems


# A commit line as the generated configs show it (`BUILD_COMMIT: "v1"`, `- BUILD_COMMIT=v1`).
_SHOWN_COMMIT = re.compile(
    r"^\s*(?:-\s*)?(?P<key>BUILD_COMMIT|DAILY_COMMIT)\s*[:=]\s*\"?(?P<value>[^\"\s]*)"
)


def _stale_commit(root: Path, path: str, number: int, found: str, should: str) -> str | None:
    """The message for a first difference that is a commit line showing another commit than
    settings.toml pins (a hand edit, or settings.toml changed without regenerating)."""
    have, want = _SHOWN_COMMIT.match(found), _SHOWN_COMMIT.match(should)
    if not (have and want and have["key"] == want["key"]):
        return None
    key, pinned = want["key"], want["value"]
    flag = "--daily " if key == "DAILY_COMMIT" else ""
    where = _settings_line_of(_read(root, SETTINGS_FILE), key)
    return (
        f"{path}:{number}: {key} is {have['value']!r} but {where} pins {pinned!r} "
        f"(`scripts/set-build-commit {flag}{pinned}` sets it everywhere)"
    )


def _cibuildwheel_problems(
    root: Path, settings: Settings, environ: Mapping[str, str]
) -> list[Problem]:
    """What cibuildwheel itself selects from cibuildwheel.toml against the matrix."""
    problems: list[Problem] = []
    for platform in ("linux", "macos", "windows"):
        selected = cibuildwheel.build_identifiers(root / CIBUILDWHEEL, platform, environ or {})
        wanted = list({job.build_id for job in jobs(settings) if job.os == platform})
        if sorted(selected) != sorted(wanted):
            message = (
                f"{CIBUILDWHEEL}: cibuildwheel --print-build-identifiers --platform "
                f"{platform} selects {sorted(selected)}, the matrix has {sorted(wanted)}"
            )
            problems.append(Problem(message, "cibuildwheel"))
    return problems
