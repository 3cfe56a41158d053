"""What every CI provider's config shares: one interface (`Provider`), the header and the
commit lines each config shows at its top, and rendering a template file."""

from __future__ import annotations

import re
import string
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any

from multibuild.errors import ConfigurationError
from multibuild.matrix import Job, jobs
from multibuild.settings import Settings

TEMPLATES = Path(__file__).parent / "templates"
KEYS = ("BUILD_COMMIT", "DAILY_COMMIT")
HEADER = """\
# Generated from settings.toml by `python -m multibuild check-config --write`: change it there
# and regenerate (scripts/set-build-commit sets the commits in settings.toml and regenerates
# every CI config).\
"""
# The Python that runs the engine on CI runners; cibuildwheel brings each job's own CPython.
ENGINE_PYTHON = "3.12"
# Fortran (and C, C++) on Windows, as scipy 1.17.1's wheels were built: Rtools 4.0's ucrt64
# mingw-w64 toolchain (gcc/gfortran 10.3) from Chocolatey, and pkg-config (pkgconfiglite,
# checksum-pinned). Neither the GitHub nor the Appveyor image has gfortran on PATH.
RTOOLS_BIN = "C:\\rtools40\\ucrt64\\bin"
WINDOWS_TOOLCHAIN = (
    "choco install rtools -y --no-progress --force --version=4.0.0.20220206",
    "choco install pkgconfiglite -y --no-progress --stoponfirstfailure"
    " --checksum 6004DF17818F5A6DBF19CB335CC92702",
)

# Windows ARM64, as scipy 1.17.1's wheels were built: LLVM's installer for Windows on ARM, with
# clang-cl and flang ([ci] windows_arm64_compilers names them; sha256 as scipy v1.17.1's
# .github/windows_arm64_steps pins it), and pkgconf from the runner's vcpkg.
LLVM_WINDOWS_ARM64 = (
    "https://github.com/llvm/llvm-project/releases/download/llvmorg-20.1.8/LLVM-20.1.8-woa64.exe",
    "7c4ac97eb2ae6b960ca5f9caf3ff6124c8d2a18cc07a7840a4d2ea15537bad8e",
)


class _Template(string.Template):
    delimiter = "@@"


# What a CI job keeps from one run to the next (the default work dir's cache): ccache, the
# library cache, and the container route's mount of both (multibuild.cibuildwheel.route).
BUILD_CACHE_PATHS = (
    ".multibuild/cache/ccache",
    ".multibuild/cache/libs",
    ".multibuild/cache/container",
)


def render_template(name: str, **values: str) -> str:
    text = (TEMPLATES / name).read_text(encoding="utf-8")
    return _Template(text).substitute(header=HEADER, **values)


def secure_value(value: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9+/=_-]+", value):
        raise ConfigurationError(f"an encrypted value holds characters it cannot: {value[:20]}...")
    return value


def commit_lines(settings: Settings, indent: str, *, travis: bool = False) -> str:
    build, daily = settings.project.build_commit, settings.project.daily_commit
    first = f"{indent}# The commit built (scripts/set-build-commit REF).\n"
    second = f"{indent}# What cron (nightly) builds build (scripts/set-build-commit --daily REF).\n"
    sdist = settings.project.sdist
    if sdist:
        first = (
            f"{indent}# The release built, nightlies too: its sdist from the package index\n"
            f"{indent}# (settings.toml [project] sdist); no git source, so no commit.\n"
            + (f"{indent}- SDIST={sdist}\n" if travis else f'{indent}SDIST: "{sdist}"\n')
        )
        second = ""
    if travis:
        return f"{first}{indent}- BUILD_COMMIT={build}\n{second}{indent}- DAILY_COMMIT={daily}"
    return f'{first}{indent}BUILD_COMMIT: "{build}"\n{second}{indent}DAILY_COMMIT: "{daily}"'


class Provider(ABC):
    """A CI provider's config file: generated from settings.toml, and its jobs read back to
    check it (the rest, commits included, is checked by comparing it with what it renders)."""

    path: str  # relative to the repository
    name: str  # as settings.toml names it (travis, appveyor, github)
    oses: tuple[str, ...]  # the matrix's operating systems this provider runs

    def jobs(self, settings: Settings) -> list[Job]:
        return [job for job in jobs(settings) if self.runs(job) and fits(settings, self.name, job)]

    def runs(self, job: Job) -> bool:
        """Whether this provider has machines for `job`."""
        return job.os in self.oses

    @abstractmethod
    def render(self, settings: Settings) -> str: ...

    @abstractmethod
    def job_ids(self, data: Any) -> list[str]:
        """The job ids the parsed config runs."""


def upload_note(settings: Settings, provider: str) -> str:
    """What a provider's jobs do with their wheels, for its config's comment."""
    allowed = settings.ci.upload_providers
    if allowed and provider not in allowed:
        return (
            f"no upload ([ci] upload_providers: {', '.join(allowed)}):\n"
            "  # the job ends green with its wheels kept as the provider keeps them."
        )
    owner = settings.ci.release_provider
    release = (
        f"release branches upload from {owner} only ([ci] release_provider)"
        if owner and owner != provider
        else "release branches to the release channel"
    )
    return (
        "uploads by branch: the development\n  # branch and nightlies to the pre-release "
        f"channel, {release}; pull requests and\n  # forks never."
    )


# A job goes to a provider with a time limit only if its estimate is at most this share of the
# limit: the estimates come from 2-core runs, and a provider's machine may be slower or busier.
TIME_MARGIN = 0.8


def job_family(job: Job) -> str:
    """The key of [ci] job_minutes for a job: linux, musllinux, macos or windows."""
    return "musllinux" if job.musl else job.os


def fits(settings: Settings, provider: str, job: Job) -> bool:
    """Whether `job`'s estimate ([ci] job_minutes) fits `provider`'s limit per job ([ci]
    provider_limits) with TIME_MARGIN to spare; a provider without a limit runs any job."""
    limits = dict(entry.split("=", 1) for entry in settings.ci.provider_limits)
    if provider not in limits:
        return True
    estimates = dict(entry.split("=", 1) for entry in settings.ci.job_minutes)
    family = job_family(job)
    if family not in estimates:
        raise ConfigurationError(
            f"[ci] job_minutes has no estimate for {family} jobs, which {provider} "
            f"({limits[provider]} minutes a job, [ci] provider_limits) would run"
        )
    return int(estimates[family]) <= TIME_MARGIN * int(limits[provider])
