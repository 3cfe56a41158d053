"""A new wheels repository for another project (`python -m multibuild init`).

The result is what scipy-wheels is, with the project's settings: settings.toml, a config.sh
of hooks, the CI configs generated from the settings by the same generator, a noxfile and a
README. The CI needs the engine itself, and no package index has it: like the submodule
multibuild's projects carried, the new repository holds a pinned copy of it (`multibuild/`
and `scripts/`, with a pyproject.toml that installs it: the CI's `pip install -e .`). Its
pyproject.toml names where the copy came from; `init --engine-only DIR` refreshes it.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from multibuild import __version__
from multibuild._compat import tomllib
from multibuild.ci import configs
from multibuild.errors import ConfigurationError
from multibuild.settings import PACKAGE_REPOSITORY
from multibuild.util.git import run_git

ENGINE_PACKAGE = Path(__file__).resolve().parents[1]
# The project name as the package index normalises it (PEP 503), and owner/name on GitHub.
_NAME = re.compile(r"^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$")
_OWNER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9_.-]+$")
# What the engine's copy leaves out: caches and build products.
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc", "*.egg-info")


@dataclass(frozen=True, kw_only=True)
class NewRepository:
    name: str
    # Either a git source (repo and commit) or a release's sdist, NAME==VERSION.
    repo: str = ""
    commit: str = ""
    sdist: str = ""
    daily_commit: str = "main"
    python: tuple[str, ...] = ("3.11", "3.12", "3.13", "3.14")
    linux: tuple[str, ...] = ("x86_64",)
    macos: tuple[str, ...] = ()
    windows: tuple[str, ...] = ()
    # owner/name of the new repository on GitHub: only its CI uploads.
    github: str = ""
    test_sources: tuple[str, ...] = ()

    def check(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigurationError(f"--name {self.name!r} is not a project name")
        if self.github and not _OWNER_NAME.match(self.github):
            raise ConfigurationError(f"--github {self.github!r} is not OWNER/NAME")
        if self.sdist:
            if any(c in self.sdist for c in '"\n\\'):
                raise ConfigurationError(f"--sdist {self.sdist!r}: not NAME==VERSION")
        else:
            configs.check_ref(self.commit)
            configs.check_ref(self.daily_commit)
            if not self.repo or any(c in self.repo for c in '"\n\\'):
                raise ConfigurationError(f"--repo {self.repo!r} cannot be written to settings.toml")
        if not self.python:
            raise ConfigurationError("--python: at least one CPython")
        if not (self.linux or self.macos or self.windows):
            raise ConfigurationError("no platform: give --linux, --macos or --windows")


def _toml_list(values: Sequence[str]) -> str:
    return "[" + ", ".join(f'"{v}"' for v in values) + "]"


def _source_lines(new: NewRepository) -> str:
    if new.sdist:
        return f"""\
# The release built (nightlies too): its sdist from the package index, NAME==VERSION; edit it
# for a new release. (A git source instead: repo, BUILD_COMMIT, DAILY_COMMIT.)
sdist = "{new.sdist}"
"""
    return f"""\
# A git URL, a local path or a mirror; `--repo` overrides it for one build.
repo = "{new.repo}"
# Any naming of a commit: a branch, a tag or a full hash (`nox -s set-build-commit -- REF`).
BUILD_COMMIT = "{new.commit}"
# What cron (nightly) builds build.
DAILY_COMMIT = "{new.daily_commit}"
"""


def settings_toml(new: NewRepository) -> str:
    github = new.github or f"OWNER/{new.name}-wheels"
    return f"""\
# What this repository builds and where it goes: the one source of truth. The CI configs and
# cibuildwheel.toml are generated from it (`python -m multibuild check-config --write`).

[project]
name = "{new.name}"
{_source_lines(new)}# The project's hooks (pre_build, run_tests), relative to this file.
config = "config.sh"

[build]
# Packages the test venv gets besides the wheel.
test_requires = ["pytest"]
# Paths of the project's source copied into the directory run_tests runs in (both routes:
# the engine's pipeline and cibuildwheel's test-sources).
test_sources = {_toml_list(new.test_sources)}
# Command-line tools the build needs from the system (named in one error if missing;
# installed with apt-get where the build runs as root on Debian and is allowed to).
system_tools = ["gcc", "g++", "pkg-config", "make", "git"]
# A kept build venv with fixed paths (ccache hits) instead of pip's isolated one: false.
isolation = true
ccache = true

[matrix]
python = {_toml_list(new.python)}
# multibuild's PLAT values by operating system ([] or left out: none).
linux = {_toml_list(new.linux)}
macos = {_toml_list(new.macos)}
windows = {_toml_list(new.windows)}

[upload]
# Where CI's wheels go, per channel: swift://CONTAINER[/prefix] or s3://BUCKET[/prefix]
# (credentials: the CI secrets, docs/upload.md). Until set, CI builds and tests and its
# upload step refuses the local paths below.
pre_release = "containers/pre-release"
release = "containers/release"
# Runs by hand write local directories instead (containers/pre-release, .../release).
local = "containers"
# The repository whose CI may upload: forks build and test only.
repository = "{github}"

[ci]
# "cibuildwheel" (Linux in manylinux containers, macOS and Windows on the runner) or "host".
builder = "cibuildwheel"
"""


CONFIG_SH = """\
# shellcheck shell=bash
# @NAME@'s hooks for multibuild (README.rst). Sourced with `set -e`.
#
# Variables from the engine: BUILD_PREFIX (libraries go here), PLAT, MB_PYTHON_VERSION,
# REPO_DIR (the source tree), PYTHON_EXE, MB_TEST_LEVEL (fast|full), MB_JOBS, CONFIG_DIR
# (this file's directory), NAME_VERSION for each entry of settings.toml's [libraries], and
# the variables of its [hook_env].

# Before each wheel's build: the C/C++/Fortran libraries the project links, built fresh into
# $BUILD_PREFIX (cached; the repair step puts them into the wheel). Examples:
pre_build() {
    # A release tarball, sha256-checked; SYSTEM is configure, cmake, meson or make:
    #   build_library yaml 0.2.5 https://example.org/yaml-0.2.5.tar.gz <sha256> configure
    # A library vendored in the project's own tree (sha256 "-": keyed by its content):
    #   build_library libfoo 1.0 "$REPO_DIR/extern/libfoo" - cmake -DBUILD_SHARED_LIBS=ON
    # Debian's source package, for machines that reach only package registries, with some
    # of Debian's patches ($DEBIAN_PATCHES holds them all, PATH-style):
    #   fetch_debian_source snappy 1.1.9-3 <orig sha256> --patch 0001-a.patch --patch 0002-b.patch
    #   build_library --patch "$DEBIAN_PATCHES" snappy 1.1.9 \\
    #       "$DEBIAN_ORIG" "$DEBIAN_ORIG_SHA256" cmake
    :
}

# After each wheel's repair, in a clean venv with the wheel and [build] test_requires, in a
# directory holding [build] test_sources (not the source tree: the installed wheel is tested).
run_tests() {
    python -m pytest -q tests
}
"""


NOXFILE = """\
\"\"\"Everything CI does, reproducible locally: `nox -s build` and `nox -s ci -- --list`.\"\"\"

from __future__ import annotations

import nox

nox.options.sessions = ["build"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True


@nox.session
def build(session: nox.Session) -> None:
    \"\"\"Build the pinned commit's wheels for this machine, repair and test them
    (./wheelhouse). Arguments go to `python -m multibuild build`.\"\"\"
    session.install("-e", ".")
    session.run("python", "-m", "multibuild", "build", "--install-system-deps", *session.posargs)


@nox.session
def ci(session: nox.Session) -> None:
    \"\"\"One CI job as CI runs it: `nox -s ci -- --list`, `nox -s ci -- JOB --no-upload`.\"\"\"
    session.install("-e", ".")
    args = list(session.posargs)
    if args and not args[0].startswith("-"):
        args = ["--job", *args]
    session.run("python", "-m", "multibuild", "ci", "--install-system-deps", *args)


@nox.session(name="check-config")
def check_config(session: nox.Session) -> None:
    \"\"\"The CI configs against settings.toml (`-- --write` regenerates them).\"\"\"
    session.install("-e", ".")
    session.run("python", "-m", "multibuild", "check-config", *session.posargs)


@nox.session(name="set-build-commit")
def set_build_commit(session: nox.Session) -> None:
    \"\"\"BUILD_COMMIT everywhere: `nox -s set-build-commit -- v1.2.3`.\"\"\"
    session.install("-e", ".")
    session.run("python", "-m", "multibuild", "set-build-commit", *session.posargs)
"""


README = """\
@TITLE@
@RULE@

Tested, self-contained binary wheels of @NAME@ at the @PIN@ settings.toml pins, built
by multibuild's engine (``multibuild/``, a pinned copy: see pyproject.toml).

Two commands
------------

::

    nox -s build            # build, repair and test this machine's wheels into ./wheelhouse
    nox -s ci -- --list     # the CI jobs; `nox -s ci -- JOB --no-upload` runs one here

What to edit
------------

``settings.toml``
    what is built (``[project]``: @PIN_KEYS@), the matrix, the test packages and
    ``test_sources``, where wheels are uploaded (``[upload]``).
``config.sh``
    the hooks: ``pre_build`` builds the libraries the project links (``build_library``,
    ``fetch_debian_source``), ``run_tests`` tests the installed wheel.

After changing settings.toml: ``nox -s check-config -- --write`` regenerates
``.github/workflows/wheels.yml``, ``.travis.yml``, ``appveyor.yml`` and ``cibuildwheel.toml``
(commit them too); ``nox -s check-config`` checks them. A new release: @NEW_RELEASE@.

What the CI needs
-----------------

The engine is in this repository (``multibuild/``, ``scripts/``; CI runs ``pip install -e .``).
Upload credentials are CI secrets (``ST_AUTH``, ``ST_USER``, ``ST_KEY``, or the S3 ones) in
the GitHub environment ``upload``; ``[upload] repository`` must name this repository.
"""

GITIGNORE = "/wheelhouse/\n/.multibuild/\n/containers/\n/.nox/\n*.egg-info/\n__pycache__/\n"


def _engine_origin() -> str:
    """Where the engine's copy comes from: its version and, in a git clone, the commit."""
    done = run_git(
        ["rev-parse", "--verify", "--end-of-options", "HEAD"], PACKAGE_REPOSITORY, timeout=30
    )
    commit = done.stdout.strip() if done.ok else ""
    return f"{__version__} (commit {commit})" if commit else __version__


def pyproject_toml(name: str) -> str:
    """The engine's own pyproject.toml with this repository's name: the same dependencies,
    extras the CI installs, scripts and package data."""
    source = PACKAGE_REPOSITORY / "pyproject.toml"
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
        project = data["project"]
        package_data = data["tool"]["setuptools"]["package-data"]["multibuild"]
    except (OSError, KeyError, tomllib.TOMLDecodeError) as error:
        raise ConfigurationError(f"cannot read the engine's {source}: {error}") from None
    extras = project.get("optional-dependencies", {})
    lines = [
        f"# The engine of this wheels repository: multibuild {_engine_origin()}, copied by",
        "# `python -m multibuild init` (`init --engine-only .` refreshes multibuild/, scripts/).",
        "[build-system]",
        'requires = ["setuptools>=69"]',
        'build-backend = "setuptools.build_meta"',
        "",
        "[project]",
        f'name = "{name}-wheels"',
        'version = "0"',
        f'requires-python = "{project["requires-python"]}"',
        "dependencies = [",
        *(f'    "{dependency}",' for dependency in project["dependencies"]),
        "]",
        "",
        "[project.optional-dependencies]",
        f"nightly = {_toml_list(extras.get('nightly', []))}",
        "",
        "[project.scripts]",
        *(f'{key} = "{value}"' for key, value in project.get("scripts", {}).items()),
        "",
        "[tool.setuptools.packages.find]",
        'include = ["multibuild*"]',
        "",
        "[tool.setuptools.package-data]",
        f"multibuild = {_toml_list(package_data)}",
        "",
    ]
    return "\n".join(lines)


def copy_engine(dest: Path) -> list[str]:
    """multibuild/ and scripts/ into `dest` (replacing an older copy). The paths written."""
    scripts = PACKAGE_REPOSITORY / "scripts"
    if (dest / "multibuild").resolve() == ENGINE_PACKAGE:
        raise ConfigurationError(
            f"{dest} holds the engine running this: run the engine to copy from (the newer "
            "one's repository, e.g. `cd ../scipy-wheels && python -m multibuild init "
            "--engine-only DIR`)"
        )
    if not (scripts / "cibw-step").is_file():
        raise ConfigurationError(f"the engine's scripts are not at {scripts}")
    for name, source in (("multibuild", ENGINE_PACKAGE), ("scripts", scripts)):
        target = dest / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(source, target, ignore=_IGNORE)
    return ["multibuild/", "scripts/"]


def create(dest: Path, new: NewRepository) -> list[str]:
    """The new repository in `dest` (absent or empty); the paths written, in order."""
    new.check()
    if dest.exists() and (not dest.is_dir() or any(dest.iterdir())):
        raise ConfigurationError(f"{dest} exists and is not an empty directory")
    dest.mkdir(parents=True, exist_ok=True)
    title = f"{new.name}-wheels"
    files = {
        "settings.toml": settings_toml(new),
        "config.sh": CONFIG_SH.replace("@NAME@", new.name),
        "noxfile.py": NOXFILE,
        "README.rst": README.replace("@TITLE@", title)
        .replace("@RULE@", "=" * len(title))
        .replace("@NAME@", new.name)
        .replace("@PIN@", "release (its sdist)" if new.sdist else "commit")
        .replace("@PIN_KEYS@", "sdist" if new.sdist else "repo, BUILD_COMMIT")
        .replace(
            "@NEW_RELEASE@",
            "edit ``sdist`` in settings.toml, then ``nox -s check-config -- --write``"
            if new.sdist
            else "``nox -s set-build-commit -- vX.Y.Z``",
        ),
        "pyproject.toml": pyproject_toml(new.name),
        ".gitignore": GITIGNORE,
    }
    for path, text in files.items():
        (dest / path).write_text(text, encoding="utf-8")
    written = [*files, *copy_engine(dest)]
    written += [w.path for w in configs.write_configs(dest)]
    return written
