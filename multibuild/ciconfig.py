"""The CI configs, generated from settings.toml and checked against it.

Four files name the commits (`BUILD_COMMIT`, and `DAILY_COMMIT` for cron builds), each near its
top: settings.toml (the source of truth), .travis.yml (Linux and macOS jobs), appveyor.yml
(Windows) and .github/workflows/wheels.yml (every platform). `rewrite_commits` changes them
together with line edits (comments and layout kept), and parses every file afterwards to check
the edit did what it should; `check` compares the commits and the matrices; `render_*` write
the CI configs from settings.toml (`python -m multibuild check-config --write`).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from multibuild.errors import ConfigurationError
from multibuild.settings import SETTINGS_FILE, Settings, load_settings

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

KEYS = ("BUILD_COMMIT", "DAILY_COMMIT")
TRAVIS = ".travis.yml"
APPVEYOR = "appveyor.yml"
GITHUB = ".github/workflows/wheels.yml"
CI_FILES = (TRAVIS, APPVEYOR, GITHUB)
ALL_FILES = (SETTINGS_FILE, *CI_FILES)

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


# -- the matrix ----------------------------------------------------------------------------------


def settings_cells(
    settings: Settings, oses: Sequence[str] = ("linux", "macos", "windows")
) -> set[Cell]:
    return {
        (os_name, plat, python)
        for os_name in oses
        for plat in getattr(settings.matrix, os_name)
        for python in settings.matrix.python
    }


def _split_env(text: str) -> dict[str, str]:
    result = {}
    for word in str(text).split():
        key, sep, value = word.partition("=")
        if sep:
            result[key] = value.strip("\"'")
    return result


def matrix_cells(path: str, text: str) -> set[Cell]:
    """The (os, PLAT, python) jobs a CI config runs."""
    data = yaml.safe_load(text) or {}
    cells: set[Cell] = set()
    if path == TRAVIS:
        for job in (data.get("jobs") or {}).get("include") or []:
            env = _split_env(job.get("env", ""))
            os_name = {"osx": "macos", "linux": "linux"}.get(str(job.get("os", "linux")), "?")
            cells.add((os_name, env.get("PLAT", "?"), env.get("MB_PYTHON_VERSION", "?")))
    elif path == APPVEYOR:
        for job in (data.get("environment") or {}).get("matrix") or []:
            cells.add(("windows", str(job.get("PLAT", "?")), str(job.get("PYTHON_VERSION", "?"))))
    else:
        build = ((data.get("jobs") or {}).get("build") or {}).get("strategy") or {}
        for job in (build.get("matrix") or {}).get("include") or []:
            cells.add((str(job.get("platform")), str(job.get("plat")), str(job.get("python"))))
    return cells


def check(root: Path) -> list[str]:
    """What disagrees with settings.toml (commits, matrices); [] when all agree."""
    settings = load_settings(root / SETTINGS_FILE)
    problems = []
    try:
        commits = read_commits(root)
    except ConfigurationError as error:
        return [str(error)]
    for key in KEYS:
        values = {path: c[key] for path, c in commits.items()}
        if len(set(values.values())) != 1:
            shown = ", ".join(f"{p}: {v}" for p, v in values.items())
            problems.append(f"{key} differs: {shown} (scripts/set-build-commit fixes it)")
    expected = {
        TRAVIS: settings_cells(settings, ("linux", "macos")),
        APPVEYOR: settings_cells(settings, ("windows",)),
        GITHUB: settings_cells(settings),
    }
    for path, want in expected.items():
        have = matrix_cells(path, _read(root, path))
        if have != want:
            missing = sorted(want - have)
            extra = sorted(have - want)
            problems.append(
                f"{path}: matrix differs from settings.toml (missing {missing}, extra {extra}); "
                "`python -m multibuild check-config --write` regenerates it"
            )
    return problems


# -- generation ----------------------------------------------------------------------------------

HEADER = """\
# Generated from settings.toml by `python -m multibuild check-config --write`: change the
# matrix there and regenerate. scripts/set-build-commit rewrites the commits below in place
# (in every CI config and settings.toml at once).
"""

_GH_RUNNERS = {
    ("linux", "x86_64"): "ubuntu-24.04",
    ("linux", "aarch64"): "ubuntu-24.04-arm",
    ("macos", "x86_64"): "macos-13",
    ("macos", "arm64"): "macos-14",
    ("macos", "universal2"): "macos-14",
    ("windows", "AMD64"): "windows-2022",
    ("windows", "x86"): "windows-2022",
    ("windows", "ARM64"): "windows-11-arm",
}
_ARCH = {"AMD64": "x64", "x86": "x86", "ARM64": "arm64"}


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


def render_travis(settings: Settings) -> str:
    jobs = []
    for os_name, travis_os in (("linux", "linux"), ("macos", "osx")):
        for plat in getattr(settings.matrix, os_name):
            for python in settings.matrix.python:
                lines = [f"    - os: {travis_os}"]
                if travis_os == "linux":
                    lines += [
                        "      dist: jammy",
                        "      language: python",
                        f'      python: "{python}"',
                    ]
                    if plat != "x86_64":
                        lines.append(f"      arch: {'arm64' if plat == 'aarch64' else plat}")
                else:
                    lines += ["      language: shell", "      osx_image: xcode15.4"]
                lines.append(f'      env: "MB_PYTHON_VERSION={python} PLAT={plat}"')
                jobs.append("\n".join(lines))
    return (
        HEADER
        + "env:\n  global:\n"
        + _commits_block(settings, "travis", "    ")
        + "\n# Linux and macOS (Windows: appveyor.yml).\njobs:\n  include:\n"
        + "\n".join(jobs)
        + "\n\n"
        + """\
install:
  - |
    if [ "$TRAVIS_OS_NAME" = osx ]; then
        brew install "python@$MB_PYTHON_VERSION" gcc pkg-config
    fi
  - python3 -m pip install -e .

script:
  # Cron builds build DAILY_COMMIT, every other build BUILD_COMMIT.
  - |
    COMMIT="$BUILD_COMMIT"
    if [ "$TRAVIS_EVENT_TYPE" = cron ]; then COMMIT="$DAILY_COMMIT"; fi
    python3 -m multibuild build --commit "$COMMIT" --python "$MB_PYTHON_VERSION" \\
        --install-system-deps
  # Wheels, or a failed build's record and log. The channel (pre-release, release, none for
  # pull requests) is decided from the CI environment; Travis gives pull requests no secure
  # variables. A failed upload fails the job.
  - python3 -m multibuild upload wheelhouse
"""
    )


def render_appveyor(settings: Settings) -> str:
    jobs = []
    for plat in settings.matrix.windows:
        for python in settings.matrix.python:
            suffix = "-x64" if plat == "AMD64" else "-arm64" if plat == "ARM64" else ""
            folder = f"C:\\\\Python{python.replace('.', '')}{suffix}"
            jobs.append(
                f'    - PYTHON_VERSION: "{python}"\n      PLAT: "{plat}"\n      PYTHON: "{folder}"'
            )
    return (
        HEADER
        + "environment:\n  global:\n"
        + _commits_block(settings, "yaml", "    ")
        + "  # Windows (Linux and macOS: .travis.yml).\n  matrix:\n"
        + "\n".join(jobs)
        + "\n\n"
        + """\
image: Visual Studio 2022

install:
  - cmd: set "PATH=%PYTHON%;%PYTHON%\\Scripts;%PATH%"
  - python -m pip install -e .

build_script:
  # Scheduled builds build DAILY_COMMIT, every other build BUILD_COMMIT.
  - ps: |
      $commit = $env:BUILD_COMMIT
      if ($env:APPVEYOR_SCHEDULED_BUILD -eq "True") { $commit = $env:DAILY_COMMIT }
      python -m multibuild build --commit $commit --python $env:PYTHON_VERSION
      if ($LASTEXITCODE -ne 0) { throw "build failed" }

deploy_script:
  # The channel is decided from the CI environment (pull requests: none).
  - python -m multibuild upload wheelhouse

artifacts:
  - path: wheelhouse\\*
    name: wheelhouse
"""
    )


def render_github(settings: Settings) -> str:
    jobs = []
    for os_name in ("linux", "macos", "windows"):
        for plat in getattr(settings.matrix, os_name):
            runner = _GH_RUNNERS.get((os_name, plat))
            if runner is None:
                raise ConfigurationError(f"no GitHub Actions runner known for {os_name} {plat}")
            arch = _ARCH.get(plat, "x64" if plat == "x86_64" else "arm64")
            for python in settings.matrix.python:
                jobs.append(
                    f'          - {{platform: {os_name}, plat: {plat}, python: "{python}", '
                    f"runner: {runner}, arch: {arch}}}"
                )
    return (
        HEADER
        + "name: wheels\n\nenv:\n"
        + _commits_block(settings, "yaml", "  ")
        + "\n"
        + """\
on:
  push:
  pull_request:
  schedule:
    - cron: "17 3 * * *"  # nightly: DAILY_COMMIT to the pre-release container
  workflow_dispatch:

permissions:
  contents: read

jobs:
  build:
    name: ${{ matrix.platform }} ${{ matrix.plat }} Python ${{ matrix.python }}
    runs-on: ${{ matrix.runner }}
    strategy:
      fail-fast: false
      matrix:
        include:
"""
        + "\n".join(jobs)
        + "\n"
        + """\
    steps:
      - uses: actions/checkout@v4
      - uses: actions/setup-python@v5
        with:
          python-version: ${{ matrix.python }}
          architecture: ${{ matrix.arch }}
      - name: System tools (macOS; Linux installs its own with --install-system-deps)
        if: runner.os == 'macOS'
        run: brew install gcc pkg-config
      - name: Install the engine
        run: python -m pip install -e .
      - name: Build, repair and test
        shell: bash
        run: |
          # Scheduled builds build DAILY_COMMIT, every other build BUILD_COMMIT.
          commit="$BUILD_COMMIT"
          if [ "${{ github.event_name }}" = schedule ]; then commit="$DAILY_COMMIT"; fi
          python -m multibuild build --commit "$commit" --python "${{ matrix.python }}" \\
              --install-system-deps
      - name: Upload to the container
        # Wheels, or a failed build's record and log. Credentials only on events that may
        # upload; the channel is decided from the event.
        if: ${{ !cancelled() && github.event_name != 'pull_request' }}
        env:
          ST_AUTH: ${{ secrets.ST_AUTH }}
          ST_USER: ${{ secrets.ST_USER }}
          ST_KEY: ${{ secrets.ST_KEY }}
          AWS_ACCESS_KEY_ID: ${{ secrets.AWS_ACCESS_KEY_ID }}
          AWS_SECRET_ACCESS_KEY: ${{ secrets.AWS_SECRET_ACCESS_KEY }}
        run: python -m multibuild upload wheelhouse
      - name: Keep the wheelhouse (wheels, build records, logs)
        if: always()
        uses: actions/upload-artifact@v4
        with:
          name: wheelhouse-${{ matrix.platform }}-${{ matrix.plat }}-${{ matrix.python }}
          path: |
            wheelhouse/*.whl
            wheelhouse/*.json
            wheelhouse/*.log
          if-no-files-found: warn
"""
    )


RENDERERS: dict[str, Callable[[Settings], str]] = {
    TRAVIS: render_travis,
    APPVEYOR: render_appveyor,
    GITHUB: render_github,
}


@dataclass
class Written:
    path: str
    changed: bool


def write_configs(root: Path) -> list[Written]:
    """(Re)generate the three CI configs from settings.toml."""
    settings = load_settings(root / SETTINGS_FILE)
    result = []
    for path, render in RENDERERS.items():
        text = render(settings)
        yaml.safe_load(text)  # a renderer bug must not reach CI
        target = root / path
        old = target.read_text(encoding="utf-8") if target.exists() else None
        if old != text:
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
        result.append(Written(path, old != text))
    return result
