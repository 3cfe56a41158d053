"""GitHub Actions: every job of the matrix (build jobs without secrets), one upload job in the
`upload` environment, and on a release tag the release-status -> sdist -> PyPI jobs."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from multibuild.ci.configs.base import (
    BUILD_CACHE_PATHS,
    ENGINE_PYTHON,
    LLVM_WINDOWS_ARM64,
    RTOOLS_BIN,
    WINDOWS_TOOLCHAIN,
    Provider,
    commit_lines,
    render_template,
)
from multibuild.errors import ConfigurationError
from multibuild.matrix import Job
from multibuild.settings import Settings
from multibuild.util.secrets import UPLOAD_CREDENTIALS

# GitHub-hosted runners, by (OS, PLAT), as GitHub's runner-images list them (2026-11):
# macos-13 was retired on 2025-12-04, macos-14 is unsupported since 2026-11-02; macos-15-intel
# is the last Intel image (until August 2027), macos-15 an arm64 one.
GITHUB_RUNNERS = {
    ("linux", "x86_64"): "ubuntu-24.04",
    ("linux", "aarch64"): "ubuntu-24.04-arm",
    ("macos", "x86_64"): "macos-15-intel",
    ("macos", "arm64"): "macos-15",
    ("macos", "universal2"): "macos-15",
    ("windows", "AMD64"): "windows-2025",
    ("windows", "x86"): "windows-2025",
    ("windows", "ARM64"): "windows-11-arm",
}


def github_runner(job: Job) -> str:
    """The GitHub-hosted runner a job runs on."""
    return GITHUB_RUNNERS[(job.os, job.plat)]


# Every action by full commit, its release in the comment (checked against the actions' own
# tags; gh-action-pypi-publish's as scipy-release's workflow pins it).
ACTIONS = {
    "checkout": "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1",
    "setup_python": "actions/setup-python@5fda3b95a4ea91299a34e894583c3862153e4b97 # v7.0.0",
    "upload_artifact": "actions/upload-artifact@bbbca2ddaa5d8feaa63e36b76fdaad77386f024f # v7.0.0",
    "download_artifact": (
        "actions/download-artifact@3e5f45b2cfb9172054b4087a40e8e0b5a5461e7c # v8.0.1"
    ),
    "cache_restore": "actions/cache/restore@27d5ce7f107fe9357f9df03efb73ab90386fccae # v5.0.5",
    "cache_save": "actions/cache/save@27d5ce7f107fe9357f9df03efb73ab90386fccae # v5.0.5",
    "pypi_publish": (
        "pypa/gh-action-pypi-publish@dc37677b2e1c63e2034f94d8a5b11f265b73ba33 # v1.14.2"
    ),
}
BUILD_TIMEOUT_MINUTES = 180


_SPECIAL = set(".^$*+?{}[]|()\\")


def literal_start(pattern: str) -> str:
    """The text every whole-name match of the regular expression `pattern` begins with:
    its literal characters up to the first special one (`\\.` is a literal dot, `\\d` is
    not); "" when the pattern has an alternation outside parentheses."""
    depth = 0
    for char in pattern:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "|" and depth == 0:
            return ""
    start: list[str] = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if char == "\\" and i + 1 < len(pattern) and not pattern[i + 1].isalnum():
            literal, i = pattern[i + 1], i + 2
        elif char in _SPECIAL:
            break
        else:
            literal, i = char, i + 1
        if i < len(pattern) and pattern[i] in "*?{":
            break  # the character just read may be missing or repeated
        start.append(literal)
    return "".join(start)


def release_ref_condition(patterns: tuple[str, ...]) -> str:
    """A workflow expression true on a push to a release branch: each pattern's literal start
    as a ref prefix (the engine's channel decision matches the whole name)."""
    prefixes = sorted({literal_start(pattern) for pattern in patterns})
    if not prefixes or "" in prefixes:
        raise ConfigurationError("[upload] release_branches: each pattern needs a literal start")
    for prefix in prefixes:
        # The prefix is written into a quoted workflow expression.
        if not re.fullmatch(r"[A-Za-z0-9._/-]+", prefix, flags=re.ASCII):
            raise ConfigurationError(
                f"[upload] release_branches: the literal start {prefix!r} holds a character "
                "a branch name here cannot (ASCII letters, digits, '.', '_', '/', '-')"
            )
    return " || ".join(f"startsWith(github.ref, 'refs/heads/{p}')" for p in prefixes)


def _literal(pattern: str) -> bool:
    """Whether the regular expression `pattern` matches one name only (`main`)."""
    return literal_start(pattern) == pattern


def upload_ref_condition(development: tuple[str, ...], release: tuple[str, ...]) -> str:
    """A workflow expression true on the branches that upload: a development branch by its
    name (or its literal start), a release branch by its literal start (the engine's channel
    decision then matches the whole name)."""
    terms = [
        f"github.ref == 'refs/heads/{p}'"
        if _literal(p)
        else f"startsWith(github.ref, 'refs/heads/{literal_start(p)}')"
        for p in development
        if literal_start(p)
    ]
    return " || ".join([*terms, release_ref_condition(release)])


def push_branches(development: tuple[str, ...], release: tuple[str, ...]) -> list[str]:
    """The `push` trigger's branch filters: the branches that upload, so a pull request from
    a branch of this repository runs once (as the pull request), not twice."""
    globs = [p if _literal(p) else f"{literal_start(p)}**" for p in (*development, *release)]
    if any(not g or g == "**" for g in globs):
        raise ConfigurationError("[upload] branch patterns: each needs a literal start")
    return list(dict.fromkeys(globs))


# The toolchain steps by their condition, and whether a matrix's jobs need them: a matrix
# without macOS (or Windows x64, Windows ARM64) jobs gets no such step (nor the script it runs).
TOOLCHAIN_STEPS: dict[str, Callable[[Job], bool]] = {
    "runner.os == 'macOS'": lambda job: job.os == "macos",
    "runner.os == 'Windows' && runner.arch == 'X64'": lambda job: (
        job.os == "windows" and job.plat != "ARM64"
    ),
    "runner.os == 'Windows' && runner.arch == 'ARM64'": lambda job: (
        job.os == "windows" and job.plat == "ARM64"
    ),
}
_STEP = "      - "


def drop_steps(text: str, conditions: set[str]) -> str:
    """The workflow without the steps (`      - name:` blocks) whose `if:` is one of
    `conditions`."""
    lines = text.splitlines(keepends=True)
    kept: list[str] = []
    index = 0
    while index < len(lines):
        end = index + 1
        if lines[index].startswith(_STEP):
            while end < len(lines) and lines[end].startswith("        "):
                end += 1
            block = lines[index:end]
            if any(line.strip() in {f"if: {c}" for c in conditions} for line in block[:3]):
                index = end
                continue
        kept.extend(lines[index:end])
        index = end
    return "".join(kept)


def build_cache_key(settings: Settings) -> str:
    """The build cache's key without the run's id: the job and runner, and the files that pin
    the toolchain (cibuildwheel's version and images, the engine) and the build (settings,
    config.sh). The newest cache of the same key is restored."""
    files = ["settings.toml", "cibuildwheel.toml", "pyproject.toml"]
    files.append(settings.project.config.relative_to(settings.root).as_posix())
    quoted = ", ".join(f"'{name}'" for name in files)
    return (
        "build-${{ matrix.job }}-${{ runner.os }}-${{ runner.arch }}-"
        f"${{{{ hashFiles({quoted}) }}}}"
    )


class GitHub(Provider):
    name = "github"
    path = ".github/workflows/wheels.yml"
    oses = ("linux", "macos", "windows")

    def render(self, settings: Settings) -> str:
        include = [
            f'          - {{job: {job.id}, runner: {github_runner(job)}, python: "{job.python}"}}'
            for job in self.jobs(settings)
        ]
        credentials = [
            f"          {name}: ${{{{ secrets.{name} }}}}" for name in UPLOAD_CREDENTIALS
        ]
        repository = settings.upload.repository
        if not repository:
            raise ConfigurationError(
                "[upload] repository (owner/name) is needed: the workflow publishes only there"
            )
        indexes = ", ".join(settings.upload.nightly_indexes) or "no package index"
        matrix = self.jobs(settings)
        unused = {c for c, needs in TOOLCHAIN_STEPS.items() if not any(map(needs, matrix))}
        text = render_template(
            "github.yml",
            commits=commit_lines(settings, "  "),
            schedule=settings.ci.schedule,
            jobs="\n".join(include),
            engine_python=ENGINE_PYTHON,
            credentials="\n".join(credentials),
            repository=repository,
            project=settings.project.name,
            project_repo=settings.project.repo,
            release_container=settings.upload.release_channel,
            release_ref=release_ref_condition(settings.upload.release_branches),
            upload_ref=upload_ref_condition(
                settings.upload.development_branches, settings.upload.release_branches
            ),
            push_branches=json.dumps(
                push_branches(
                    settings.upload.development_branches, settings.upload.release_branches
                )
            ),
            indexes=indexes,
            build_timeout=str(BUILD_TIMEOUT_MINUTES),
            windows_toolchain="\n".join(f"          {line}" for line in WINDOWS_TOOLCHAIN),
            rtools_bin=RTOOLS_BIN,
            llvm_url=LLVM_WINDOWS_ARM64[0],
            llvm_sha256=LLVM_WINDOWS_ARM64[1].upper(),
            cache_paths="\n".join(f"            {path}" for path in BUILD_CACHE_PATHS),
            cache_key=build_cache_key(settings),
            **ACTIONS,
        )
        return drop_steps(text, unused)

    def job_ids(self, data: Any) -> list[str]:
        build = ((data.get("jobs") or {}).get("build") or {}).get("strategy") or {}
        return [
            str(job.get("job", "(a job without `job`)"))
            for job in (build.get("matrix") or {}).get("include") or []
        ]
