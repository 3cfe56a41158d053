"""Upload wheels with their build records and logs to a container, as release managers need:
every wheel verified, then marked, then listed (multibuild.publish.index), so a killed
uploader leaves no half wheel listed, and a rerun finishes the job (and cleans what the
killed one left); a replaced wheel leaves the index before its object changes, and comes
back with its new sha256 at once; released files never change; logs and records go through
the run's Redactor."""

from __future__ import annotations

import enum
import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multibuild import console
from multibuild.errors import UploadError
from multibuild.options import UploadTuning
from multibuild.publish.anaconda import publish_indexes
from multibuild.publish.containers import open_container
from multibuild.publish.containers.base import (
    ORPHAN_GRACE_S,
    Container,
    FileDigest,
    ObjectInfo,
    VerificationError,
    digest_file,
)
from multibuild.publish.index import (
    BUILDS,
    HISTORY,
    INDEX,
    MARKERS,
    mark_verified,
    marker_name,
    rebuild_history,
    rebuild_index,
    withdraw,
)
from multibuild.publish.wheelhouse import Wheelhouse
from multibuild.util import jsontext
from multibuild.util.secrets import NO_SECRETS, Redactor


class ImmutableReleaseError(UploadError):
    """A different file under a name already in the release container."""


@dataclass
class UploadReport:
    channel: str
    container: str
    uploaded: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    build_files: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)  # what earlier runs left
    bytes_sent: int = 0
    seconds: float = 0.0
    retries: int = 0
    index_url: str = ""
    history_url: str = ""
    dry_run: bool = False


def _record_for_upload(path: Path, ci: Mapping[str, Any], channel: str, redact: Redactor) -> bytes:
    """The record as written (every field kept), with the CI run that uploads it."""
    data = jsontext.loads(path.read_text(encoding="utf-8"))
    merged = dict(ci)
    merged.update(data.get("ci") or {})
    merged["channel"] = channel
    data["ci"] = merged
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return redact(text).encode()


class Action(enum.Enum):
    """What happens to one wheel, decided before anything is written."""

    UPLOAD = "upload"  # not in the container
    SKIP = "skip"  # the same file is there
    REPLACE = "replace"  # a different file is there, in a pre-release container
    REFUSE = "refuse"  # a different file is there, in a release container


@dataclass(frozen=True)
class _Step:
    path: Path
    digest: FileDigest
    action: Action
    there: ObjectInfo | None


def upload_to_container(
    container: Container,
    wheelhouse: Wheelhouse,
    *,
    channel: str,
    ci: Mapping[str, Any],
    title: str,
    redact: Redactor = NO_SECRETS,
    dry_run: bool = False,
    echo: Callable[[str], None] = console.info,
    orphan_grace_s: float = ORPHAN_GRACE_S,
) -> UploadReport:
    """Upload every wheel (verified, then marked, then indexed), then logs and records, then
    the two pages. Release containers refuse a different file under an existing name, before
    anything is uploaded; pre-release containers replace it (the old build's record stays):
    the wheel leaves index.html first, and is back with its new sha256 right after."""
    started = time.monotonic()
    report = UploadReport(channel=channel, container=container.url, dry_run=dry_run)
    # 1. Decide, with nothing written yet.
    plan = _plan_wheels(container, wheelhouse, release=channel == "release")
    verb = "would " if dry_run else ""
    for step in plan:
        echo(
            f"  {verb}{step.action.value} {step.path.name} ({step.digest.size} bytes, "
            f"sha256 {step.digest.sha256[:16]}…)"
        )
    new_files: list[tuple[str, Path, bool]] = []  # (name, file, is a record)
    for path in wheelhouse.logs:
        new_files.append((f"{BUILDS}{path.name}", path, False))
    for path, record in wheelhouse.records:
        new_files.append((f"{BUILDS}{record.build_id}.json", path, True))
    for name, _, _ in new_files:
        echo(f"  {verb}upload {name} (unless already there)")
    if dry_run:
        report.seconds = time.monotonic() - started
        report.skipped = [s.path.name for s in plan if s.action is Action.SKIP]
        report.uploaded = [s.path.name for s in plan if s.action is Action.UPLOAD]
        report.replaced = [s.path.name for s in plan if s.action is Action.REPLACE]
        return report
    # 2. Wheels: upload + verify, then the marker that lets the index show them.
    container.ensure()
    report.cleaned = list(container.sweep(orphan_grace_s))
    for leftover in report.cleaned:
        echo(f"  deleted {leftover} (left by an earlier, interrupted upload)")
    _upload_wheels(container, plan, report, title)
    # 3. Logs, then records (a record in the container means its log is there too).
    _upload_build_files(container, new_files, report, ci=ci, channel=channel, redact=redact)
    # 4. The pages.
    rebuild_index(container, title)
    rebuild_history(container, f"{title}: build history")
    # 5. A prune that listed an older object of a name sent here may have deleted the new one
    # between its check and its DELETE (docs/upload.md, "Concurrent upload and prune"): what
    # vanished is sent again, then listed again.
    _send_vanished_again(container, plan, title, echo)
    report.index_url = container.public_url(INDEX)
    report.history_url = container.public_url(HISTORY)
    report.retries = container.stats.retries
    report.seconds = time.monotonic() - started
    return report


def _plan_wheels(container: Container, wheelhouse: Wheelhouse, *, release: bool) -> list[_Step]:
    """Each wheel's action; raises ImmutableReleaseError, with nothing written, if a release
    container has a different file under any of the names."""
    plan = []
    refused = []
    for path in wheelhouse.wheels:
        digest = digest_file(path)
        there = container.head(path.name)
        if there is None:
            action = Action.UPLOAD
        elif (
            there.size == digest.size
            and (there.sha256 or _sha256_of(container, path.name)) == digest.sha256
        ):
            action = Action.SKIP
        elif release:
            refused.append(
                f"{path.name} (sha256 {digest.sha256[:16]}…, but the container has "
                f"{(there.sha256 or '?')[:16]}…, {there.size} bytes)"
            )
            action = Action.REFUSE
        else:
            action = Action.REPLACE
        plan.append(_Step(path, digest, action, there))
    if refused:
        raise ImmutableReleaseError(
            "REFUSED: released files are immutable; the release container "
            f"{container.url} already has different files under these names: "
            + "; ".join(refused)
            + ". Nothing was uploaded. Build a new version instead."
        )
    return plan


def _upload_wheels(
    container: Container, plan: Sequence[_Step], report: UploadReport, title: str
) -> None:
    """Each wheel sent and verified, then marked; a skipped one marked if its marker is
    missing; a replaced one withdrawn from the index first and listed again right after."""
    markers = {o.name for o in container.list(MARKERS)} if plan else set()
    for step in plan:
        path, digest = step.path, step.digest
        if step.action is Action.SKIP:
            assert step.there is not None
            report.skipped.append(path.name)
            if marker_name(path.name, digest, step.there.etag) not in markers:
                mark_verified(container, path.name, digest, step.there.etag)
            continue
        if step.action is Action.REPLACE:
            withdraw(container, path.name, title)  # the old sha256 is never listed for the new
        info = _put_past_prune(container, path, digest)
        mark_verified(container, path.name, digest, info.etag)
        report.bytes_sent += digest.size
        if step.action is Action.REPLACE:
            rebuild_index(container, title)
            report.replaced.append(path.name)
        else:
            report.uploaded.append(path.name)


def _upload_build_files(
    container: Container,
    new_files: Sequence[tuple[str, Path, bool]],
    report: UploadReport,
    *,
    ci: Mapping[str, Any],
    channel: str,
    redact: Redactor,
) -> None:
    """Logs and records not there yet, redacted, in the order given (logs first)."""
    present = {o.name for o in container.list(BUILDS)}
    for name, path, is_record in new_files:
        if name in present:
            continue
        if is_record:
            data = _record_for_upload(path, ci, channel, redact)
        else:
            data = redact(path.read_text(encoding="utf-8", errors="replace")).encode()
        container.put_bytes(name, data)
        report.build_files.append(name)


def _send_vanished_again(
    container: Container, plan: Sequence[_Step], title: str, echo: Callable[[str], None]
) -> None:
    sent = [s for s in plan if s.action is not Action.SKIP]
    vanished = [s for s in sent if container.head(s.path.name) is None]
    if vanished:
        for step in vanished:
            echo(f"  {step.path.name} vanished after its upload (a concurrent prune): sent again")
            info = _put_past_prune(container, step.path, step.digest)
            mark_verified(container, step.path.name, step.digest, info.etag)
        rebuild_index(container, title)


def _put_past_prune(container: Container, path: Path, digest: FileDigest) -> ObjectInfo:
    """put_file, sent again (twice at most) when the object is gone right after it landed: a
    concurrent prune deleted it under an older object's name."""
    for attempt in range(3):
        try:
            return container.put_file(path.name, path, digest)
        except VerificationError:
            if attempt == 2 or container.head(path.name) is not None:
                raise
    raise AssertionError("unreachable")


def _sha256_of(container: Container, name: str) -> str:
    """The sha256 of an object without sha256 metadata (uploaded by other tools)."""
    return hashlib.sha256(container.get_bytes(name)).hexdigest()


@dataclass(frozen=True, kw_only=True)
class Destination:
    """Where a run's files go, as multibuild.ci.channels decided it."""

    channel: str  # pre-release or release
    url: str
    base_dir: Path  # what a relative container path is relative to
    why: str  # the decision's reason, shown with the upload
    ci: Mapping[str, Any] = field(default_factory=dict)  # kept in each uploaded record


def publish_run(
    wheelhouse: Wheelhouse,
    destination: Destination | None,
    *,
    indexes: Sequence[str],
    keep: int | None,
    project: str,
    environ: Mapping[str, str],
    redact: Redactor = NO_SECRETS,
    tuning: UploadTuning | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = console.info,
) -> UploadReport | None:
    """A run's products where its decision says: to the container (`destination`; None: the
    package indexes only), then its wheels to the package `indexes` (`keep`: how many
    nightlies each keeps, None for no retention). The container's report, if any."""
    report = None
    if destination is not None:
        report = send(
            wheelhouse,
            destination,
            project=project,
            environ=environ,
            redact=redact,
            tuning=tuning,
            dry_run=dry_run,
            echo=echo,
        )
    if indexes and dry_run:
        echo(f"multibuild upload: dry run: the wheels would also go to {', '.join(indexes)}")
    elif indexes:  # without wheels (a failed build) each index says so
        publish_indexes(
            indexes, wheelhouse.wheels, project=project, keep=keep, environ=environ, echo=echo
        )
    return report


def send(
    wheelhouse: Wheelhouse,
    destination: Destination,
    *,
    project: str,
    environ: Mapping[str, str],
    redact: Redactor = NO_SECRETS,
    tuning: UploadTuning | None = None,
    dry_run: bool = False,
    echo: Callable[[str], None] = console.info,
) -> UploadReport:
    """Upload a collected wheelhouse (every file checked) to the destination, with a report."""
    if wheelhouse.records:
        project = wheelhouse.records[0][1].project or project
    echo(f"multibuild upload: -> {destination.channel} ({destination.why}) -> {destination.url}")
    tuning = tuning or UploadTuning()
    container = open_container(
        destination.url, base_dir=destination.base_dir, environ=environ, tuning=tuning
    )
    grace = ORPHAN_GRACE_S if tuning.orphan_grace_s is None else tuning.orphan_grace_s
    try:
        report = upload_to_container(
            container,
            wheelhouse,
            channel=destination.channel,
            ci=destination.ci,
            title=f"{project or 'wheels'} {destination.channel}",
            redact=redact,
            dry_run=dry_run,
            echo=echo,
            orphan_grace_s=grace,
        )
    finally:
        container.close()
    if report.dry_run:
        echo("multibuild upload: dry run, nothing written")
    else:
        echo(
            f"multibuild upload: {len(report.uploaded)} uploaded, {len(report.replaced)} "
            f"replaced, {len(report.skipped)} already there, {len(report.build_files)} "
            f"record/log file(s); {report.bytes_sent} bytes in {report.seconds:.1f} s, "
            f"{report.retries} retries\n  index:   {report.index_url}\n"
            f"  history: {report.history_url}"
        )
    return report


def check_credentials(url: str | None, indexes: Sequence[str], environ: Mapping[str, str]) -> None:
    """Raise CredentialsError, naming each missing variable, unless `environ` holds what an
    upload to the container `url` (None: none) and to the package `indexes` needs. Nothing is
    contacted: a CI job asks this before it builds, so a job meant to upload without its
    secrets fails in seconds instead of after an hour's build."""
    from multibuild.publish.anaconda import TOKEN_VARIABLE, is_anaconda
    from multibuild.publish.containers import split_url
    from multibuild.publish.containers.credentials import require

    if url:
        scheme = split_url(url)[0]
        if scheme == "swift":
            from multibuild.publish.containers.swift import connection_options

            connection_options(environ)
        elif scheme == "s3":
            require(environ, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], "S3")
    if any(is_anaconda(index) for index in indexes):
        require(environ, [TOKEN_VARIABLE], "anaconda.org")
