"""Which CI run this is: the one reader of Travis', Appveyor's and GitHub Actions' variables.

`detect(environ)` is a pure function of an environment mapping (and, when run by hand, of the
local git branch). Where the run's wheels go is decided from its result, once, by
multibuild.ci.channels.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

from multibuild.settings import CI_PROVIDERS
from multibuild.util.git import FULL_HASH, run_git

PUSH = "push"
CRON = "cron"
MANUAL = "manual"  # Travis api, Appveyor forced build, GitHub workflow_dispatch
PULL_REQUEST = "pull_request"
TAG = "tag"
LOCAL = "local"

# Who runs this: a CI provider this project generates configs for (settings.CI_PROVIDERS),
# "local" (no CI at all: by hand), or "unknown" (another CI, such as this repository's .ci/run).
ProviderName = Literal["travis", "appveyor", "github", "local", "unknown"]


@dataclass(frozen=True)
class CIInfo:
    """What the CI environment says about this run."""

    provider: ProviderName
    event: str  # push, cron, manual, pull_request, tag, local, or the provider's own word
    branch: str | None = None  # for a pull request: the branch it targets
    pull_request: str | None = None
    tag: str | None = None
    repository: str | None = None  # owner/name of the repository the run builds
    head_repository: str | None = None  # a pull request's source repository
    commit: str | None = None
    build_url: str | None = None

    @property
    def on_ci(self) -> bool:
        """A run on Travis, Appveyor or GitHub Actions, whose runner is thrown away after the
        job."""
        return self.provider in CI_PROVIDERS

    @property
    def by_hand(self) -> bool:
        """No CI at all: someone ran the command (another CI is neither this nor on_ci)."""
        return self.provider == "local"

    def as_record(self) -> dict[str, Any]:
        return {key: value for key, value in asdict(self).items() if value is not None}


def _true(value: str | None) -> bool:
    return (value or "").strip().lower() in ("true", "1", "yes")


def local_git_branch(cwd: Path | None = None) -> str | None:
    try:
        result = run_git(
            ["rev-parse", "--verify", "--abbrev-ref", "--end-of-options", "HEAD"], cwd, timeout=30
        )
    except subprocess.TimeoutExpired:
        return None
    branch = result.stdout.strip()
    return branch if result.ok and branch and branch != "HEAD" else None


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
    provider: ProviderName = "unknown" if _true(environ.get("CI")) else "local"
    return CIInfo(provider=provider, event=LOCAL, branch=git_branch())


def is_full_hash(ref: str) -> bool:
    return bool(FULL_HASH.fullmatch(ref))


def fold_style(info: CIInfo) -> str | None:
    """What the log tells multibuild.log.Logger: the provider on a CI, None by hand."""
    return None if info.by_hand else info.provider
