"""Where a run's wheels go, decided once per run from the CI run (multibuild.ci.providers) and
settings.toml's [upload], and passed down: to the plan of a CI job, the build (which commit),
and the upload (which container).

The development branch and scheduled (nightly) builds go to the pre-release container, release
branches to the release container, pull requests and forks nowhere, whatever the flags say.
By hand, outside any CI, wheels go to the pre-release container when it is a local directory.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from multibuild.ci.providers import CRON, LOCAL, MANUAL, PULL_REQUEST, PUSH, TAG, CIInfo
from multibuild.errors import ConfigurationError, UploadError
from multibuild.publish.containers import is_local, same_container
from multibuild.settings import ProjectSettings, Settings, UploadSettings

Channel = Literal["pre-release", "release"]
CHANNELS: tuple[Channel, ...] = ("pre-release", "release")


class ReleaseRefused(UploadError):
    """A release upload from something that is not a release branch."""


@dataclass(frozen=True)
class Decision:
    channel: Channel | None  # None: build and test, do not upload
    reason: str
    nightly: bool = False
    commit: str | None = None  # what to build: DAILY_COMMIT for nightlies, else BUILD_COMMIT
    forbidden: bool = False  # pull requests and forks: no upload whatever the flags say
    container: str | None = None  # the channel's container URL


def matches(branch: str, patterns: tuple[str, ...]) -> bool:
    """Whether a pattern (a regular expression, settings.toml [upload]) matches the whole
    branch name: `v\\d+\\.\\d+\\.\\d+` takes `v1.2.3`, never `v1.2.3-evil` nor `v1.2.3/x`."""
    return any(re.fullmatch(pattern, branch) for pattern in patterns)


def _by_branch(info: CIInfo, upload: UploadSettings, project: ProjectSettings | None) -> Decision:
    """The channel the repository's branch patterns give this run, or None, and why."""
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
        return Decision("pre-release", "scheduled (nightly) build", nightly=True)
    if info.event == TAG:
        return Decision(None, f"tag {info.tag}: tags are made after the wheels are uploaded")
    if info.event not in (PUSH, MANUAL, LOCAL):
        return Decision(None, f"{info.provider} event {info.event!r}: no upload")
    if not info.branch:
        return Decision(None, "no branch (a detached HEAD, or no git checkout): no upload")
    if matches(info.branch, upload.release_branches):
        return Decision("release", f"release branch {info.branch}")
    if matches(info.branch, upload.development_branches):
        return Decision("pre-release", f"development branch {info.branch}")
    if upload.other_branches in CHANNELS:
        channel: Channel = "release" if upload.other_branches == "release" else "pre-release"
        return Decision(channel, f"branch {info.branch} ([upload] other_branches)")
    return Decision(None, f"branch {info.branch} is neither development nor release: no upload")


def _requested(
    info: CIInfo, decision: Decision, requested: str, upload: UploadSettings
) -> Decision:
    """An explicit `--channel` on top of the decision. A release upload from anything but a
    release branch is refused (ReleaseRefused)."""
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
        return replace(
            decision,
            channel="release",
            reason=f"release branch {branch} (--channel release)",
            nightly=False,
        )
    return replace(
        decision, channel="pre-release", reason=f"{decision.reason} (--channel pre-release)"
    )


def decide(
    info: CIInfo,
    settings: Settings | None,
    *,
    requested: str | None = None,
    container_url: str | None = None,
    base_dir: Path | None = None,
) -> Decision:
    """The one decision of a run: the channel (or none, and why), the container, whether it is
    a nightly, and the commit to build. `requested` is `--channel`, `container_url`
    `--container`."""
    upload = settings.upload if settings else UploadSettings()
    project = settings.project if settings else None
    base = base_dir or (settings.root if settings else Path.cwd())
    decision = _by_branch(info, upload, project)
    if requested is not None and not decision.forbidden:
        decision = _requested(info, decision, requested, upload)
    local_default = container_url or upload.pre_release
    if (
        decision.channel is None
        and not decision.forbidden
        and info.provider in ("local", "unknown")
        and local_default
        and is_local(local_default)
    ):
        decision = replace(
            decision,
            channel="pre-release",
            reason=f"{decision.reason}; run outside CI: the local pre-release container",
        )
    if project is not None:
        decision = replace(decision, commit=_commit(project, decision.nightly))
    if decision.channel is None:
        return decision
    url = container_url or (upload.release if decision.channel == "release" else upload.pre_release)
    if not url:
        raise ConfigurationError(
            f"no container for channel {decision.channel} ([upload] in settings.toml)"
        )
    if (
        decision.channel != "release"
        and upload.release
        and same_container(url, upload.release, base)
    ):
        raise UploadError(
            f"REFUSED: {url} is the release container; only a release upload may write to it"
        )
    return replace(decision, container=url)


def _commit(project: ProjectSettings, nightly: bool) -> str:
    return project.daily_commit if nightly else project.build_commit


def build_target(info: CIInfo, settings: Settings | None) -> tuple[str | None, bool]:
    """What a run builds, and whether it is a nightly: DAILY_COMMIT on scheduled runs,
    BUILD_COMMIT otherwise (the same rule `decide` applies, without choosing a container)."""
    upload = settings.upload if settings else UploadSettings()
    nightly = _by_branch(info, upload, settings.project if settings else None).nightly
    return (_commit(settings.project, nightly) if settings else None), nightly


def as_nightly(info: CIInfo) -> CIInfo:
    """The run as the nightly (cron) build would be: `--nightly` by hand."""
    return replace(info, event=CRON)
