"""The CI configs, generated from settings.toml and checked against it.

Four files name the commits (`BUILD_COMMIT`, and `DAILY_COMMIT` for cron builds), each near its
top: settings.toml (the source of truth), .travis.yml (Linux and macOS jobs), appveyor.yml
(Windows) and .github/workflows/wheels.yml (every platform). `rewrite_commits` changes them
together with line edits (comments and layout kept), and parses every file afterwards to check
the edit did what it should; `check` compares the commits and the matrices; `render_*` write
the CI configs from settings.toml (`python -m multibuild check-config --write`).
"""

from __future__ import annotations

import dataclasses
import re
import sys
import textwrap
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from multibuild import cibw
from multibuild.containers.credentials import UPLOAD_CREDENTIALS
from multibuild.errors import ConfigurationError
from multibuild.jobs import APPVEYOR_IMAGE, TRAVIS_OSX_IMAGE, jobs
from multibuild.settings import SETTINGS_FILE, Settings, load_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KEYS = ("BUILD_COMMIT", "DAILY_COMMIT")
TRAVIS = ".travis.yml"
APPVEYOR = "appveyor.yml"
GITHUB = ".github/workflows/wheels.yml"
CIBUILDWHEEL = cibw.CONFIG_FILE
CI_FILES = (TRAVIS, APPVEYOR, GITHUB)
# The files that name the commits, and the files generated from settings.toml.
ALL_FILES = (SETTINGS_FILE, *CI_FILES)
GENERATED = (*CI_FILES, CIBUILDWHEEL)

# A commit as these files may name it: a branch, a tag or a hash (no spaces, quotes, `#`, `$`).
_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/+@-]{0,199}$")

Cell = tuple[str, str, str]  # (os, PLAT, python)


def check_ref(ref: str) -> str:
    if not _REF.match(ref) or ".." in ref or ref.endswith((".lock", "/", ".")) or "@{" in ref:
        raise ConfigurationError(
            f"{ref!r} is not a commit these files can name (a branch, tag or hash: letters, "
            "digits and . _ / + @ -)"
        )
    return ref


def _line_pattern(path: str, key: str) -> re.Pattern[str]:
    if path == SETTINGS_FILE:
        return re.compile(
            rf"^(?P<lead>\s*{key}\s*=\s*)(?P<q>[\"'])(?P<value>[^\"']*)(?P=q)(?P<tail>\s*(#.*)?)$"
        )
    if path == TRAVIS:
        return re.compile(
            rf"^(?P<lead>\s*-\s*{key}=)(?P<q>[\"']?)(?P<value>[^\"'\s#]*)(?P=q)(?P<tail>\s*(#.*)?)$"
        )
    return re.compile(
        rf"^(?P<lead>\s*{key}:\s*)(?P<q>[\"']?)(?P<value>[^\"'\s#]*)(?P=q)(?P<tail>\s*(#.*)?)$"
    )


def _find_line(path: str, text: str, key: str) -> tuple[int, re.Match[str]]:
    pattern = _line_pattern(path, key)
    found = [(i, m) for i, line in enumerate(text.splitlines()) if (m := pattern.match(line))]
    if len(found) != 1:
        raise ConfigurationError(
            f"{path}: expected exactly one {key} line, found {len(found)} "
            "(regenerate with `python -m multibuild check-config --write`)"
        )
    return found[0]


def read_commits_text(path: str, text: str) -> dict[str, str]:
    """The commits a file names, by parsing it (not by the line patterns)."""
    try:
        if path == SETTINGS_FILE:
            project = tomllib.loads(text).get("project", {})
            values: dict[str, Any] = {k: project.get(k) for k in KEYS}
        else:
            data = yaml.safe_load(text) or {}
            if path == TRAVIS:
                values = {}
                for item in (data.get("env") or {}).get("global") or []:
                    if isinstance(item, str) and "=" in item:
                        key, _, value = item.partition("=")
                        values[key.strip()] = value.strip().strip("\"'")
            elif path == APPVEYOR:
                values = dict((data.get("environment") or {}).get("global") or {})
            else:
                values = dict(data.get("env") or {})
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ConfigurationError(f"{path} does not parse: {error}") from None
    result: dict[str, str] = {}
    for key in KEYS:
        found = values.get(key)
        if not isinstance(found, str):
            raise ConfigurationError(f"{path}: {key} missing or not a string ({found!r})")
        result[key] = found
    return result


def read_commits(root: Path) -> dict[str, dict[str, str]]:
    return {path: read_commits_text(path, _read(root, path)) for path in ALL_FILES}


def _read(root: Path, path: str) -> str:
    try:
        return (root / path).read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigurationError(f"cannot read {root / path}: {error}") from None


def rewrite_text(path: str, text: str, key: str, value: str) -> str:
    """`text` with its one `key` line naming `value`; everything else byte for byte."""
    check_ref(value)
    index, match = _find_line(path, text, key)
    quote = match["q"]
    if path not in (SETTINGS_FILE, TRAVIS):
        quote = quote or '"'  # YAML would read 1.10 as a number, `yes` as a boolean
    lines = text.splitlines(keepends=True)
    ending = lines[index][len(lines[index].rstrip("\r\n")) :]
    lines[index] = f"{match['lead']}{quote}{value}{quote}{match['tail']}{ending}"
    new = "".join(lines)
    got = read_commits_text(path, new)[key]
    if got != value:
        raise ConfigurationError(f"{path}: rewriting {key} gave {got!r}, not {value!r}")
    return new


def rewrite_commits(root: Path, changes: dict[str, str]) -> list[str]:
    """Set the commits (`{"BUILD_COMMIT": ref, ...}`) in all four files at once: every new text
    is made and checked first, then each file is replaced by a rename. The files changed."""
    for key in changes:
        if key not in KEYS:
            raise ConfigurationError(f"unknown key {key}")
    new_texts = {}
    for path in ALL_FILES:
        old = _read(root, path)
        text = old
        for key, value in changes.items():
            text = rewrite_text(path, text, key, value)
        if text != old:
            new_texts[path] = text
    for path, text in new_texts.items():
        target = root / path
        tmp = target.with_name(target.name + ".tmp")
        tmp.write_text(text, encoding="utf-8", newline="")
        tmp.replace(target)
    problems = check(root)
    if problems:
        raise ConfigurationError("after the rewrite:\n" + "\n".join(problems))
    return list(new_texts)


# -- generation ----------------------------------------------------------------------------------

HEADER = """\
# Generated from settings.toml by `python -m multibuild check-config --write`: change the
# matrix there and regenerate. scripts/set-build-commit rewrites the commits below in place
# (in every CI config and settings.toml at once).
"""

# The Python that runs the engine on CI runners; cibuildwheel brings each job's own CPython.
ENGINE_PYTHON = "3.12"
CI_COMMAND = "python -m multibuild ci"
NOT_A_PULL_REQUEST = "github.event_name != 'pull_request'"


def _commits_block(settings: Settings, style: str, indent: str) -> str:
    build, daily = settings.project.build_commit, settings.project.daily_commit
    if style == "travis":
        return (
            f"{indent}# The commit built (scripts/set-build-commit REF).\n"
            f"{indent}- BUILD_COMMIT={build}\n"
            f"{indent}# What cron (nightly) builds build (scripts/set-build-commit --daily REF).\n"
            f"{indent}- DAILY_COMMIT={daily}\n"
        )
    return (
        f"{indent}# The commit built (scripts/set-build-commit REF).\n"
        f'{indent}BUILD_COMMIT: "{build}"\n'
        f"{indent}# What cron (nightly) builds build (scripts/set-build-commit --daily REF).\n"
        f'{indent}DAILY_COMMIT: "{daily}"\n'
    )


def _secure_value(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9+/=_-]+", value):
        raise ConfigurationError(f"an encrypted value holds characters it cannot: {value[:20]}...")
    return value


def render_travis(settings: Settings) -> str:
    entries = []
    for job in jobs(settings):
        if job.os == "windows":
            continue
        lines = [f"    - name: {job.id}"]
        if job.os == "linux":
            lines += [
                "      os: linux",
                "      dist: jammy",
                f"      arch: {'arm64' if job.plat == 'aarch64' else 'amd64'}",
                "      services: docker",
                "      language: python",
                f'      python: "{ENGINE_PYTHON}"',
            ]
        else:
            lines += [
                "      os: osx",
                f"      osx_image: {TRAVIS_OSX_IMAGE}",
                "      language: shell",
            ]
            note = job.travis_notes()
            if note:
                lines += [f"      # {line}" for line in textwrap.wrap(note, 88)]
        lines.append(f"      env: MB_JOB={job.id}")
        entries.append("\n".join(lines))
    secure = "".join(f'    - secure: "{_secure_value(v)}"\n' for v in settings.ci.travis_secure)
    return (
        HEADER
        + "env:\n  global:\n"
        + _commits_block(settings, "travis", "    ")
        + "    # Upload credentials, encrypted (`travis encrypt NAME=value`, kept in\n"
        + "    # settings.toml [ci] travis_secure). Travis decrypts them for this repository's\n"
        + "    # pushes and cron builds, never for pull requests.\n"
        + (secure or "    # (none yet)\n")
        + """
# Linux (in manylinux containers) and macOS; Windows: appveyor.yml. Every job runs
# `python -m multibuild ci`, MB_JOB naming it: `nox -s ci -- <MB_JOB>` runs it on a machine
# of its kind. Nightly: a Travis cron job on the development branch (README.rst).
jobs:
  fast_finish: false
  include:
"""
        + "\n".join(entries)
        + "\n\n"
        + """\
install:
  - |
    if [ "$TRAVIS_OS_NAME" = osx ]; then
        brew install gcc pkg-config
    fi
  - python3 -m pip install -e .

script:
  # Builds BUILD_COMMIT (cron: DAILY_COMMIT) with cibuildwheel, repairs and tests it, keeps the
  # build record and log, and uploads by branch (pull requests: never). Fails if any step did.
  - python3 -m multibuild ci
"""
    )


def render_appveyor(settings: Settings) -> str:
    matrix_lines = [f"    - MB_JOB: {job.id}" for job in jobs(settings) if job.os == "windows"]
    secure = []
    for entry in settings.ci.appveyor_secure:
        name, _, value = entry.partition("=")
        secure.append(f"    {name}:\n      secure: {_secure_value(value)}\n")
    engine = "C:\\\\Python" + ENGINE_PYTHON.replace(".", "") + "-x64"
    return (
        HEADER
        + f"image: {APPVEYOR_IMAGE}\n\n"
        + "environment:\n  global:\n"
        + _commits_block(settings, "yaml", "    ")
        + "    # The Python that runs the engine (cibuildwheel brings each job's own).\n"
        + f'    ENGINE_PYTHON: "{engine}"\n'
        + "    # Upload credentials, encrypted (Appveyor's Encrypt YAML page, kept in\n"
        + "    # settings.toml [ci] appveyor_secure); not decrypted for pull requests.\n"
        + "".join(secure)
        + "  # Windows (Linux and macOS: .travis.yml); `nox -s ci -- <MB_JOB>` runs one.\n"
        + "  matrix:\n"
        + "\n".join(matrix_lines)
        + "\n\n"
        + """\
# One job's failure does not stop the others. Nightly: a scheduled build of the development
# branch (README.rst).
matrix:
  fast_finish: false

install:
  - cmd: set "PATH=%ENGINE_PYTHON%;%ENGINE_PYTHON%\\Scripts;%PATH%"
  - python -m pip install -e .

build_script:
  # Builds BUILD_COMMIT (scheduled: DAILY_COMMIT) with cibuildwheel, repairs and tests it,
  # keeps the build record and log, and uploads by branch (pull requests: never).
  - python -m multibuild ci

on_finish:
  # The wheelhouse (wheels, build record, log) stays with the build, failed or not.
  - ps: >-
      Get-ChildItem wheelhouse -ErrorAction SilentlyContinue |
      ForEach-Object { Push-AppveyorArtifact $_.FullName }
"""
    )


def render_github(settings: Settings) -> str:
    include = [
        f'          - {{job: {job.id}, runner: {job.github_runner}, python: "{job.python}"}}'
        for job in jobs(settings)
    ]
    credentials = "".join(
        f"          {name}: ${{{{ {NOT_A_PULL_REQUEST} && secrets.{name} || '' }}}}\n"
        for name in UPLOAD_CREDENTIALS
    )
    return (
        HEADER
        + "name: wheels\n\nenv:\n"
        + _commits_block(settings, "yaml", "  ")
        + "\n"
        + f"""\
on:
  push:
  pull_request:
  schedule:
    - cron: "{settings.ci.schedule}"  # nightly: DAILY_COMMIT to the pre-release container
  workflow_dispatch:

permissions:
  contents: read

jobs:
  build:
    # `nox -s ci -- <job>` runs one of these on a machine of its kind.
    name: ${{{{ matrix.job }}}}
    runs-on: ${{{{ matrix.runner }}}}
    strategy:
      fail-fast: false
      matrix:
        include:
"""
        + "\n".join(include)
        + "\n"
        + f"""\
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          # The job's CPython (for `[ci] builder = "host"`; cibuildwheel brings its own),
          # then the one that runs the engine.
          python-version: |
            ${{{{ matrix.python }}}}
            {ENGINE_PYTHON}
      - name: Fortran and pkg-config (macOS)
        if: runner.os == 'macOS'
        run: brew install gcc pkg-config
      - name: Install the engine
        run: python -m pip install -e .
      - name: Build, repair, test, upload
        # BUILD_COMMIT (scheduled: DAILY_COMMIT) with cibuildwheel; the record and log are kept
        # and uploaded with the wheels. Credentials are empty for pull requests, which never
        # upload.
        env:
          MB_JOB: ${{{{ matrix.job }}}}
"""
        + credentials
        + f"""\
        run: {CI_COMMAND}
      - name: Keep the wheelhouse (wheels, build record, log)
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: wheelhouse-${{{{ matrix.job }}}}
          path: wheelhouse/*
          if-no-files-found: warn
"""
    )


RENDERERS: dict[str, Callable[[Settings], str]] = {
    TRAVIS: render_travis,
    APPVEYOR: render_appveyor,
    GITHUB: render_github,
    CIBUILDWHEEL: cibw.render,
}


@dataclass
class Written:
    path: str
    changed: bool


def write_configs(root: Path) -> list[Written]:
    """(Re)generate the CI configs and cibuildwheel.toml from settings.toml."""
    settings = load_settings(root / SETTINGS_FILE)
    result = []
    for path, render in RENDERERS.items():
        text = render(settings)
        _parse(path, text)  # a renderer bug must not reach CI
        target = root / path
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        result.append(Written(path, old != text))
    return result


# -- checks --------------------------------------------------------------------------------------


def _parse(path: str, text: str) -> Any:
    try:
        return tomllib.loads(text) if path.endswith(".toml") else yaml.safe_load(text)
    except (tomllib.TOMLDecodeError, yaml.YAMLError) as error:
        raise ConfigurationError(f"{path} does not parse: {error}") from None


def _line_of(path: str, text: str, key: str) -> str:
    try:
        return f"{path}:{_find_line(path, text, key)[0] + 1}"
    except ConfigurationError:
        return path


def config_jobs(path: str, data: Any) -> list[str]:
    """The job ids (MB_JOB, cibuildwheel's `build`) a parsed CI config runs."""
    found: list[str] = []
    if path == TRAVIS:
        for job in (data.get("jobs") or {}).get("include") or []:
            env = dict(w.partition("=")[::2] for w in str(job.get("env", "")).split() if "=" in w)
            found.append(env.get("MB_JOB", f"(a {job.get('os', 'linux')} job without MB_JOB)"))
    elif path == APPVEYOR:
        for job in (data.get("environment") or {}).get("matrix") or []:
            found.append(str(job.get("MB_JOB", "(a job without MB_JOB)")))
    elif path == GITHUB:
        build = ((data.get("jobs") or {}).get("build") or {}).get("strategy") or {}
        for job in (build.get("matrix") or {}).get("include") or []:
            found.append(str(job.get("job", "(a job without `job`)")))
    else:
        found = list(((data.get("tool") or {}).get("cibuildwheel") or {}).get("build") or [])
    return found


def expected_jobs(settings: Settings, path: str) -> list[str]:
    oses = {TRAVIS: ("linux", "macos"), APPVEYOR: ("windows",)}.get(
        path, ("linux", "macos", "windows")
    )
    return [job.id for job in jobs(settings) if job.os in oses]


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


class Problem(str):
    """A message saying what to fix where, and its kind: commit, generated, jobs, path,
    command, cibuildwheel or read."""

    kind: str

    def __new__(cls, message: str, kind: str) -> Problem:
        problem = super().__new__(cls, message)
        problem.kind = kind
        return problem


def _with_commits(settings: Settings, commits: dict[str, str]) -> Settings:
    project = dataclasses.replace(
        settings.project,
        build_commit=commits["BUILD_COMMIT"],
        daily_commit=commits["DAILY_COMMIT"],
    )
    return dataclasses.replace(settings, project=project)


def _command_names() -> set[str]:
    from multibuild.commands import COMMANDS  # imported here: the commands import this module

    return {command.NAME for command in COMMANDS}


def check(root: Path, *, with_cibuildwheel: bool = False) -> list[Problem]:
    """What disagrees with settings.toml, each with the file and line to fix or the command
    that fixes it; [] when all agree. `with_cibuildwheel`: also ask cibuildwheel itself which
    builds cibuildwheel.toml selects on each platform."""
    settings = load_settings(root / SETTINGS_FILE)
    problems: list[Problem] = []
    texts = {}
    for path in GENERATED:
        try:
            texts[path] = _read(root, path)
        except ConfigurationError as error:
            message = f"{error}; `python -m multibuild check-config --write` makes it"
            problems.append(Problem(message, "read"))
    try:
        commits = read_commits(root)
    except ConfigurationError as error:
        return [*problems, Problem(str(error), "read")]
    settings_text = _read(root, SETTINGS_FILE)
    for key in KEYS:
        want = commits[SETTINGS_FILE][key]
        flag = "--daily " if key == "DAILY_COMMIT" else ""
        for path in CI_FILES:
            if commits[path][key] != want:
                message = (
                    f"{_line_of(path, texts.get(path, ''), key)}: {key} is "
                    f"{commits[path][key]!r} but {_line_of(SETTINGS_FILE, settings_text, key)} "
                    f"pins {want!r} (`scripts/set-build-commit {flag}{want}` sets it everywhere)"
                )
                problems.append(Problem(message, "commit"))
    for path, text in texts.items():
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
        for command in sorted(set(_COMMAND.findall(text)) - _command_names()):
            message = f"{path}: runs `python -m multibuild {command}`, no such command"
            problems.append(Problem(message, "command"))
        # Commits that differ are reported above, once; here the rest of the file.
        own = _with_commits(settings, commits[path]) if path in commits else settings
        rendered = RENDERERS[path](own)
        if text != rendered:
            number, found, should = _first_difference(text, rendered)
            message = (
                f"{path}:{number}: differs from what settings.toml generates (has "
                f"{found.strip()!r}, should be {should.strip()!r}); "
                "`python -m multibuild check-config --write` regenerates it"
            )
            problems.append(Problem(message, "generated"))
    if with_cibuildwheel and CIBUILDWHEEL in texts:
        for platform in ("linux", "macos", "windows"):
            selected = cibw.build_identifiers(root / CIBUILDWHEEL, platform)
            wanted = [job.id for job in jobs(settings) if job.os == platform]
            if sorted(selected) != sorted(wanted):
                message = (
                    f"{CIBUILDWHEEL}: cibuildwheel --print-build-identifiers --platform "
                    f"{platform} selects {sorted(selected)}, the matrix has {sorted(wanted)}"
                )
                problems.append(Problem(message, "cibuildwheel"))
    return problems
