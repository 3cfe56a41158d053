"""Which CI run this is, and which container (channel) its wheels go to.

Pure functions of an environment mapping (and, when run by hand, of the local git branch):
`detect(environ)` reads Travis, Appveyor or GitHub Actions variables, `decide(info, ...)`
applies the repository's branch patterns. Pull requests and forks never upload.
"""

from __future__ import annotations

import fnmatch
import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from multibuild.errors import UploadError
from multibuild.settings import ProjectSettings, UploadSettings

Channel = Literal["pre-release", "release"]
CHANNELS: tuple[Channel, ...] = ("pre-release", "release")

PUSH = "push"
CRON = "cron"
MANUAL = "manual"  # Travis api, Appveyor forced build, GitHub workflow_dispatch
PULL_REQUEST = "pull_request"
TAG = "tag"
LOCAL = "local"

_FULL_HASH = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")


class ReleaseRefused(UploadError):
    """A release upload from something that is not a release branch."""


@dataclass(frozen=True)
class CIInfo:
    """What the CI environment says about this run."""

    provider: str  # travis, appveyor, github, local, unknown
    event: str  # push, cron, manual, pull_request, tag, local, or the provider's own word
    branch: str | None = None  # for a pull request: the branch it targets
    pull_request: str | None = None
    tag: str | None = None
    repository: str | None = None  # owner/name of the repository the run builds
    head_repository: str | None = None  # a pull request's source repository
    commit: str | None = None
    build_url: str | None = None

    def as_record(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


@dataclass(frozen=True)
class Decision:
    channel: Channel | None  # None: build and test, do not upload
    reason: str
    nightly: bool = False
    commit: str | None = None  # what to build: DAILY_COMMIT for cron, else BUILD_COMMIT
    forbidden: bool = False  # pull requests and forks: no upload whatever the flags say


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def local_git_branch(cwd: Path | None = None) -> str | None:
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--abbrev-ref", "HEAD"],
            cwd=cwd,
            capture_output=True,
            text=True,
            check=False,
            timeout=30,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    branch = result.stdout.strip()
    return branch if result.returncode == 0 and branch and branch != "HEAD" else None


def _travis(env: Mapping[str, str]) -> CIInfo:
    event = env.get("TRAVIS_EVENT_TYPE", "")
    pr = env.get("TRAVIS_PULL_REQUEST", "false")
    tag = env.get("TRAVIS_TAG") or None
    kind = {"push": PUSH, "cron": CRON, "api": MANUAL, "pull_request": PULL_REQUEST}.get(
        event, event or PUSH
    )
    if pr not in ("", "false"):
        kind = PULL_REQUEST
    elif tag and kind == PUSH:
        kind = TAG
    return CIInfo(
        provider="travis",
        event=kind,
        branch=env.get("TRAVIS_BRANCH") or None,
        pull_request=pr if kind == PULL_REQUEST and pr not in ("", "false") else None,
        tag=tag,
        repository=env.get("TRAVIS_REPO_SLUG") or None,
        head_repository=env.get("TRAVIS_PULL_REQUEST_SLUG") or None,
        commit=env.get("TRAVIS_COMMIT") or None,
        build_url=env.get("TRAVIS_BUILD_WEB_URL") or None,
    )


def _appveyor(env: Mapping[str, str]) -> CIInfo:
    pr = env.get("APPVEYOR_PULL_REQUEST_NUMBER") or None
    tag = env.get("APPVEYOR_REPO_TAG_NAME") if _true(env.get("APPVEYOR_REPO_TAG")) else None
    if pr:
        kind = PULL_REQUEST
    elif _true(env.get("APPVEYOR_SCHEDULED_BUILD")):
        kind = CRON
    elif _true(env.get("APPVEYOR_FORCED_BUILD")):
        kind = MANUAL
    elif tag:
        kind = TAG
    else:
        kind = PUSH
    url = None
    if env.get("APPVEYOR_URL") and env.get("APPVEYOR_ACCOUNT_NAME"):
        url = (
            f"{env['APPVEYOR_URL']}/project/{env['APPVEYOR_ACCOUNT_NAME']}/"
            f"{env.get('APPVEYOR_PROJECT_SLUG', '')}/builds/{env.get('APPVEYOR_BUILD_ID', '')}"
        )
    return CIInfo(
        provider="appveyor",
        event=kind,
        branch=env.get("APPVEYOR_REPO_BRANCH") or None,
        pull_request=pr,
        tag=tag or None,
        repository=env.get("APPVEYOR_REPO_NAME") or None,
        head_repository=env.get("APPVEYOR_PULL_REQUEST_HEAD_REPO_NAME") or None,
        commit=env.get("APPVEYOR_REPO_COMMIT") or None,
        build_url=url,
    )


def _github(env: Mapping[str, str]) -> CIInfo:
    name = env.get("GITHUB_EVENT_NAME", "")
    ref = env.get("GITHUB_REF", "")
    ref_name = env.get("GITHUB_REF_NAME") or None
    branch = ref.removeprefix("refs/heads/") if ref.startswith("refs/heads/") else None
    tag = ref.removeprefix("refs/tags/") if ref.startswith("refs/tags/") else None
    pr = None
    kind = {"push": PUSH, "schedule": CRON, "workflow_dispatch": MANUAL}.get(name, name)
    if name in ("pull_request", "pull_request_target") or ref.startswith("refs/pull/"):
        kind = PULL_REQUEST
        match = re.match(r"refs/pull/(\d+)/", ref)
        pr = match.group(1) if match else (ref_name or "unknown")
        branch = env.get("GITHUB_BASE_REF") or None
    elif tag is not None:
        kind = TAG if kind == PUSH else kind
    elif branch is None and ref_name and env.get("GITHUB_REF_TYPE", "branch") == "branch":
        branch = ref_name
    url = None
    if env.get("GITHUB_SERVER_URL") and env.get("GITHUB_REPOSITORY") and env.get("GITHUB_RUN_ID"):
        url = (
            f"{env['GITHUB_SERVER_URL']}/{env['GITHUB_REPOSITORY']}/actions/runs/"
            f"{env['GITHUB_RUN_ID']}"
        )
    return CIInfo(
        provider="github",
        event=kind or "unknown",
        branch=branch,
        pull_request=pr,
        tag=tag,
        repository=env.get("GITHUB_REPOSITORY") or None,
        head_repository=None,
        commit=env.get("GITHUB_SHA") or None,
        build_url=url,
    )


def detect(
    environ: Mapping[str, str],
    *,
    git_branch: Callable[[], str | None] = local_git_branch,
) -> CIInfo:
    """The CI run `environ` describes; outside CI, the local git branch (event "local")."""
    if _true(environ.get("TRAVIS")) or "TRAVIS_EVENT_TYPE" in environ:
        return _travis(environ)
    if _true(environ.get("APPVEYOR")) or "APPVEYOR_REPO_BRANCH" in environ:
        return _appveyor(environ)
    if _true(environ.get("GITHUB_ACTIONS")) or "GITHUB_EVENT_NAME" in environ:
        return _github(environ)
    # By hand, or another CI (such as this repository's own .ci/run): the local git branch.
    # There is no telling a pull request here; such runs hold no upload credentials.
    provider = "unknown" if _true(environ.get("CI")) else "local"
    return CIInfo(provider=provider, event=LOCAL, branch=git_branch())


def matches(branch: str, patterns: tuple[str, ...]) -> bool:
    return any(fnmatch.fnmatchcase(branch, pattern) for pattern in patterns)


def is_full_hash(ref: str) -> bool:
    return bool(_FULL_HASH.fullmatch(ref))


def decide(
    info: CIInfo,
    upload: UploadSettings,
    project: ProjectSettings | None = None,
) -> Decision:
    """The channel this run's wheels go to, or None (build and test only), and why."""
    commit = project.build_commit if project else None
    if info.event == PULL_REQUEST or info.pull_request:
        reason = f"pull request {info.pull_request or ''}".strip()
        return Decision(None, f"{reason}: build and test only, never upload", forbidden=True)
    fork = (
        upload.repository
        and info.repository
        and info.repository.lower() != upload.repository.lower()
    )
    if fork:
        return Decision(
            None, f"a fork ({info.repository}, not {upload.repository}): no upload", forbidden=True
        )
    if info.event == CRON:
        daily = project.daily_commit if project else None
        return Decision("pre-release", "scheduled (nightly) build", nightly=True, commit=daily)
    if info.event == TAG:
        return Decision(None, f"tag {info.tag}: tags are made after the wheels are uploaded")
    if info.event not in (PUSH, MANUAL, LOCAL):
        return Decision(None, f"{info.provider} event {info.event!r}: no upload")
    if not info.branch:
        return Decision(None, "no branch (a detached HEAD, or no git checkout): no upload")
    if matches(info.branch, upload.release_branches):
        return Decision("release", f"release branch {info.branch}", commit=commit)
    if matches(info.branch, upload.development_branches):
        return Decision("pre-release", f"development branch {info.branch}", commit=commit)
    if upload.other_branches in CHANNELS:
        channel: Channel = "release" if upload.other_branches == "release" else "pre-release"
        return Decision(channel, f"branch {info.branch} ([upload] other_branches)", commit=commit)
    return Decision(None, f"branch {info.branch} is neither development nor release: no upload")


def resolve_channel(
    info: CIInfo,
    decision: Decision,
    requested: str | None,
    upload: UploadSettings,
) -> Decision:
    """Apply an explicit `--channel` on top of the decision. A release upload from anything
    but a release branch is refused (ReleaseRefused); pull requests and forks never upload."""
    if requested is None or decision.forbidden:
        return decision
    if requested not in CHANNELS:
        raise UploadError(f"unknown channel {requested!r} (use pre-release or release)")
    if requested == "release":
        branch = info.branch or ""
        if info.event not in (PUSH, MANUAL, LOCAL) or not matches(branch, upload.release_branches):
            raise ReleaseRefused(
                f"REFUSED: a release upload must come from a push to a release branch "
                f"({', '.join(upload.release_branches)}); this is {info.provider} "
                f"event {info.event!r} on branch {branch or '(none)'}. Nothing was uploaded."
            )
        return Decision(
            "release", f"release branch {branch} (--channel release)", False, decision.commit
        )
    return Decision(
        "pre-release",
        f"{decision.reason} (--channel pre-release)",
        decision.nightly,
        decision.commit,
    )


def commit_to_build(
    environ: Mapping[str, str], upload: UploadSettings, project: ProjectSettings
) -> tuple[str, bool]:
    """What a build in this environment builds, and whether it is a nightly: DAILY_COMMIT for
    scheduled (cron) runs, BUILD_COMMIT otherwise. For the build engine."""
    decision = decide(detect(environ, git_branch=lambda: None), upload, project)
    if decision.nightly:
        return project.daily_commit, True
    return project.build_commit, False
