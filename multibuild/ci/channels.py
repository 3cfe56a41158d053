"""Where a run's wheels go, decided once per run from the CI run (multibuild.ci.providers) and
settings.toml's [upload], and passed down: to the plan of a CI job, the build (which commit),
and the upload (which container).

The development branch and scheduled (nightly) builds go to the pre-release container, release
branches to the release container, pull requests and forks nowhere, whatever the flags say.
On release branches only `[ci] release_provider`'s jobs upload (one provider per file name).
By hand, outside any CI, wheels go to the local directories of `[upload] local` (else the
pre-release container when it is a local directory). On Travis, Appveyor and GitHub Actions a
local directory is refused: the runner is thrown away with whatever it holds.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Literal

from multibuild.ci.providers import CRON, LOCAL, MANUAL, PULL_REQUEST, PUSH, TAG, CIInfo
from multibuild.errors import ConfigurationError, UploadError
from multibuild.publish.containers import is_local, same_container
from multibuild.settings import CISettings, ProjectSettings, Settings, UploadSettings

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
    # A nightly's package indexes (anaconda://ORG), besides the container: [upload] nightly_indexes
    indexes: tuple[str, ...] = ()


def matches(branch: str, patterns: tuple[str, ...]) -> bool:
    """Whether a pattern (a regular expression, settings.toml [upload]) matches the whole
    branch name: `v\\d+\\.\\d+\\.\\d+` takes `v1.2.3`, never `v1.2.3-evil` nor `v1.2.3/x`."""
    # ASCII: Python's `\\d` takes any Unicode digit, and v1.2.3 in fullwidth digits is no
    # release branch.
    return any(re.fullmatch(pattern, branch, flags=re.ASCII) for pattern in patterns)


def _not_release_provider(info: CIInfo, ci: CISettings | None) -> str | None:
    """Why this CI run may not write the release container, or None: on release branches
    only `[ci] release_provider`'s jobs upload, so two providers never race for one name."""
    owner = ci.release_provider if ci else ""
    if owner and info.on_ci and info.provider != owner:
        return (
            f"release wheels come from {owner} only ([ci] release_provider); this "
            f"{info.provider} job builds and tests"
        )
    return None


def not_uploading_provider(info: CIInfo, ci: CISettings | None) -> str | None:
    """Why this CI provider's jobs never upload ([ci] upload_providers), or None."""
    allowed = ci.upload_providers if ci else ()
    if allowed and info.on_ci and info.provider not in allowed:
        kept = (
            "in the job only (Travis keeps no artifacts)"
            if info.provider == "travis"
            else "as the provider's artifacts"
        )
        return (
            f"{info.provider} does not upload ([ci] upload_providers: {', '.join(allowed)}): "
            f"this job builds, tests and keeps its wheels {kept}"
        )
    return None


def _by_branch(info: CIInfo, upload: UploadSettings, ci: CISettings | None) -> Decision:
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
    not_uploading = not_uploading_provider(info, ci)
    if info.event == CRON:
        if not_uploading:
            return Decision(None, f"scheduled (nightly) build: {not_uploading}", nightly=True)
        return Decision("pre-release", "scheduled (nightly) build", nightly=True)
    if not_uploading:
        return Decision(None, not_uploading)
    if info.event == TAG:
        return Decision(None, f"tag {info.tag}: tags are made after the wheels are uploaded")
    if info.event not in (PUSH, MANUAL, LOCAL):
        return Decision(None, f"{info.provider} event {info.event!r}: no upload")
    if not info.branch:
        return Decision(None, "no branch (a detached HEAD, or no git checkout): no upload")
    if matches(info.branch, upload.release_branches):
        other = _not_release_provider(info, ci)
        if other:
            return Decision(None, f"release branch {info.branch}: {other}")
        return Decision("release", f"release branch {info.branch}")
    if matches(info.branch, upload.development_branches):
        return Decision("pre-release", f"development branch {info.branch}")
    if upload.other_branches in CHANNELS:
        channel: Channel = "release" if upload.other_branches == "release" else "pre-release"
        return Decision(channel, f"branch {info.branch} ([upload] other_branches)")
    return Decision(None, f"branch {info.branch} is neither development nor release: no upload")


def _requested(
    info: CIInfo,
    decision: Decision,
    requested: str,
    upload: UploadSettings,
    ci: CISettings | None,
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
        other = _not_release_provider(info, ci)
        if other:
            raise ReleaseRefused(f"REFUSED: {other}. Nothing was uploaded.")
        return replace(
            decision,
            channel="release",
            reason=f"release branch {branch} (--channel release)",
            nightly=False,
        )
    if decision.channel is None:  # the reason said "no upload": say what happens instead
        why = decision.reason.removesuffix(": no upload")
        return replace(decision, channel="pre-release", reason=f"--channel pre-release ({why})")
    return replace(
        decision, channel="pre-release", reason=f"{decision.reason} (--channel pre-release)"
    )


def channel_container(upload: UploadSettings, channel: str, *, by_hand: bool) -> str:
    """The container of a channel: `[upload] local`'s directory for runs by hand (when set),
    else `[upload] pre_release` / `release`."""
    if by_hand and upload.local:
        return str(PurePosixPath(upload.local) / channel)
    return upload.release if channel == "release" else upload.pre_release


def decide(
    info: CIInfo,
    settings: Settings | None,
    *,
    requested: str | None = None,
    container_url: str | None = None,
    base_dir: Path | None = None,
    local_on_ci: bool = False,
) -> Decision:
    """The one decision of a run: the channel (or none, and why), the container, whether it is
    a nightly, and the commit to build. `requested` is `--channel`, `container_url`
    `--container`; `local_on_ci` (MB_LOCAL_CONTAINER_ON_CI) accepts a local directory on CI,
    for a self-hosted runner whose disk outlives the job."""
    upload = settings.upload if settings else UploadSettings()
    ci = settings.ci if settings else None
    project = settings.project if settings else None
    base = base_dir or Path.cwd()
    by_hand = not info.on_ci  # by hand or on another CI: [upload] local applies
    decision = _by_branch(info, upload, ci)
    if requested is not None and not decision.forbidden:
        decision = _requested(info, decision, requested, upload, ci)
    local_default = container_url or channel_container(upload, "pre-release", by_hand=by_hand)
    if (
        decision.channel is None
        and not decision.forbidden
        and by_hand
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
    url = container_url or channel_container(upload, decision.channel, by_hand=by_hand)
    indexes: tuple[str, ...] = ()
    if not (by_hand and upload.local):
        if decision.nightly:
            indexes = upload.nightly_indexes
        elif decision.channel == "release":
            indexes = upload.release_indexes
    if not url:
        # No container for the channel: a nightly still goes to its package indexes (the
        # wheels only; records and logs stay with the job), anything else builds and tests.
        key = "release" if decision.channel == "release" else "pre_release"
        if indexes:
            return replace(
                decision,
                container=None,
                indexes=tuple(indexes),
                reason=f"{decision.reason}; no container ([upload] {key} is empty): "
                "the wheels go to the package index only",
            )
        return replace(
            decision,
            channel=None,
            reason=f"{decision.reason}; no {decision.channel} container ([upload] {key} is "
            "empty): build and test only",
        )
    if not by_hand and is_local(url) and not local_on_ci:
        key = "release" if decision.channel == "release" else "pre_release"
        raise ConfigurationError(
            f"the {decision.channel} container {url!r} is a local directory, and this "
            f"{info.provider} runner is thrown away after the job (its wheels with it): "
            f"configure a remote container for CI ([upload] {key} in settings.toml: "
            "swift://CONTAINER or s3://BUCKET, credentials in the CI's secrets; docs/upload.md)"
        )
    release_url = channel_container(upload, "release", by_hand=by_hand)
    if decision.channel != "release" and release_url and same_container(url, release_url, base):
        raise UploadError(
            f"REFUSED: {url} is the release container; only a release upload may write to it"
        )
    return replace(decision, container=url, indexes=tuple(indexes))


def _commit(project: ProjectSettings, nightly: bool) -> str:
    return project.daily_commit if nightly else project.build_commit


def build_target(info: CIInfo, settings: Settings | None) -> tuple[str | None, bool]:
    """What a run builds, and whether it is a nightly: DAILY_COMMIT on scheduled runs,
    BUILD_COMMIT otherwise (the same rule `decide` applies, without choosing a container)."""
    upload = settings.upload if settings else UploadSettings()
    nightly = _by_branch(info, upload, settings.ci if settings else None).nightly
    return (_commit(settings.project, nightly) if settings else None), nightly


def as_nightly(info: CIInfo) -> CIInfo:
    """The run as the nightly (cron) build would be: `--nightly` by hand."""
    return replace(info, event=CRON)
