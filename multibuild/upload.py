"""Upload wheels with their build records and logs to a container, as release managers need.

Layout of a container (relative to its prefix):

    NAME.whl                      the wheels, at the top (pip --find-links reads index.html)
    .verified/NAME.whl/SIZE-SHA256  a marker written only after the wheel was verified
    builds/BUILD-ID.json          the build's record (with the CI run that uploaded it)
    builds/BUILD-ID.log           the build's log (secrets redacted)
    index.html                    the verified wheels (name, size, date, sha256)
    history.html                  every build (commit, branch, event, platform, status...)

The index lists a wheel only if a marker with its size, written after it, exists, so a killed
uploader leaves no half wheel listed, and a rerun finishes the job. Both pages are regenerated
from a listing, written, and then checked against a new listing; a writer that sees objects its
page lacks writes again. So the last page written holds everything any writer finished before
(concurrent matrix jobs lose nothing), whatever the backend, without locks.
"""

from __future__ import annotations

import hashlib
import json
import random
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from multibuild.containers.base import Container, FileDigest, ObjectInfo, digest_file
from multibuild.containers.credentials import redact
from multibuild.containers.pages import WheelEntry, history_html, index_html
from multibuild.errors import UploadError

MARKERS = ".verified/"
BUILDS = "builds/"
INDEX = "index.html"
HISTORY = "history.html"
PAGE_ROUNDS = 20


class ImmutableReleaseError(UploadError):
    """A different file under a name already in the release container."""


@dataclass(frozen=True)
class Wheelhouse:
    """What one upload sends: wheels, build records (parsed) and their logs."""

    wheels: tuple[Path, ...]
    records: tuple[tuple[Path, dict[str, Any]], ...] = ()
    logs: tuple[Path, ...] = ()


def _read_record(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if isinstance(data, dict) and data.get("schema") == 1 and data.get("build_id"):
        return data
    return None


def collect(paths: Sequence[Path]) -> Wheelhouse:
    """Wheels, records and logs from wheelhouse directories and/or files."""
    wheels: dict[str, Path] = {}
    records: dict[str, tuple[Path, dict[str, Any]]] = {}
    logs: dict[str, Path] = {}
    for path in paths:
        if path.is_dir():
            members = sorted(path.iterdir())
        elif path.is_file():
            members = [path]
        else:
            raise UploadError(f"no such wheelhouse or file: {path}")
        for member in members:
            if member.suffix == ".whl" and member.is_file():
                if member.name in wheels and wheels[member.name] != member:
                    raise UploadError(f"two wheels named {member.name}: {wheels[member.name]}")
                wheels[member.name] = member
            elif member.suffix == ".json" and member.is_file():
                record = _read_record(member)
                if record is None:
                    if not path.is_dir():
                        raise UploadError(f"{member} is not a build record (schema 1)")
                    continue
                records[str(record["build_id"])] = (member, record)
                log = member.parent / str(record.get("log") or f"{record['build_id']}.log")
                if log.is_file():
                    logs[log.name] = log
            elif member.suffix == ".log" and member.is_file() and not path.is_dir():
                logs[member.name] = member
    if not wheels and not records:
        raise UploadError(
            f"nothing to upload: no wheels or build records in {', '.join(map(str, paths))}"
        )
    return Wheelhouse(
        wheels=tuple(wheels[n] for n in sorted(wheels)),
        records=tuple(records[n] for n in sorted(records)),
        logs=tuple(logs[n] for n in sorted(logs)),
    )


@dataclass
class UploadReport:
    channel: str
    container: str
    uploaded: list[str] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    build_files: list[str] = field(default_factory=list)
    bytes_sent: int = 0
    seconds: float = 0.0
    retries: int = 0
    index_url: str = ""
    history_url: str = ""
    dry_run: bool = False


# -- the index layer -----------------------------------------------------------------------


def marker_name(wheel: str, digest: FileDigest) -> str:
    return f"{MARKERS}{wheel}/{digest.size}-{digest.sha256}"


def _seconds(value: datetime) -> datetime:
    return value.replace(microsecond=0)


def index_entries(objects: Iterable[ObjectInfo]) -> list[WheelEntry]:
    """The wheels a listing shows as complete and verified, with their sha256."""
    wheels: dict[str, ObjectInfo] = {}
    markers: dict[str, list[tuple[ObjectInfo, int, str]]] = {}
    for obj in objects:
        if obj.name.startswith(MARKERS):
            wheel, _, leaf = obj.name[len(MARKERS) :].rpartition("/")
            size, _, sha256 = leaf.partition("-")
            if wheel and size.isdigit() and len(sha256) == 64:
                markers.setdefault(wheel, []).append((obj, int(size), sha256))
        elif "/" not in obj.name and obj.name.endswith(".whl"):
            wheels[obj.name] = obj
    entries = []
    for name, found in wheels.items():
        good = [
            (marker.last_modified, sha256)
            for marker, size, sha256 in markers.get(name, [])
            if size == found.size
            and _seconds(marker.last_modified) >= _seconds(found.last_modified)
        ]
        if good:
            _, sha256 = max(good)
            entries.append(WheelEntry(name, found.size, found.last_modified, sha256))
    return sorted(entries, key=lambda e: e.name)


def _settle(
    what: str,
    render: Callable[[list[ObjectInfo]], tuple[object, bytes]],
    container: Container,
    name: str,
) -> object:
    """Write a page made from a listing until a new listing shows nothing it lacks."""
    for _ in range(PAGE_ROUNDS):
        key, page = render(list(container.list()))
        container.put_bytes(name, page)
        after, _ = render(list(container.list()))
        if after == key:
            return key
        time.sleep(random.uniform(0.05, 0.3))  # others are writing: let them finish first
    raise UploadError(f"{what} kept changing under concurrent uploads; rerun to refresh it")


def rebuild_index(container: Container, title: str) -> list[WheelEntry]:
    def render(objects: list[ObjectInfo]) -> tuple[object, bytes]:
        entries = index_entries(objects)
        return entries, index_html(title, entries).encode()

    result = _settle("index.html", render, container, INDEX)
    assert isinstance(result, list)
    return result


class RecordCache:
    """Build records read from a container, by name (records are written once)."""

    def __init__(self, container: Container) -> None:
        self.container = container
        self.records: dict[str, dict[str, Any]] = {}

    def get(self, name: str) -> dict[str, Any] | None:
        if name not in self.records:
            try:
                data = json.loads(self.container.get_bytes(name))
            except (UploadError, ValueError):
                return None
            if not isinstance(data, dict):
                return None
            self.records[name] = data
        return self.records[name]

    def all(self, objects: Iterable[ObjectInfo]) -> list[dict[str, Any]]:
        result = []
        for obj in objects:
            if obj.name.startswith(BUILDS) and obj.name.endswith(".json"):
                record = self.get(obj.name)
                if record is not None:
                    result.append(record)
        return result


def rebuild_history(container: Container, title: str, cache: RecordCache | None = None) -> int:
    cache = cache or RecordCache(container)

    def render(objects: list[ObjectInfo]) -> tuple[object, bytes]:
        present = {o.name for o in objects}
        records = cache.all(objects)
        key = sorted(n for n in present if n.startswith(BUILDS) or n.endswith(".whl"))
        return key, history_html(title, records, present).encode()

    result = _settle("history.html", render, container, HISTORY)
    assert isinstance(result, list)
    return sum(1 for n in result if n.endswith(".json"))


# -- the upload ------------------------------------------------------------------------------


def _record_for_upload(
    record: dict[str, Any], ci: Mapping[str, Any], channel: str, secrets: list[str]
) -> bytes:
    data = dict(record)
    merged = dict(ci)
    merged.update(data.get("ci") or {})
    merged["channel"] = channel
    data["ci"] = merged
    text = json.dumps(data, indent=2, sort_keys=True) + "\n"
    return redact(text, secrets).encode()


def upload(
    container: Container,
    wheelhouse: Wheelhouse,
    *,
    channel: str,
    ci: Mapping[str, Any],
    title: str,
    secrets: Sequence[str] = (),
    dry_run: bool = False,
    echo: Callable[[str], None] = print,
) -> UploadReport:
    """Upload every wheel (verified, then marked, then indexed), then logs and records, then
    the two pages. Release containers refuse a different file under an existing name, before
    anything is uploaded; pre-release containers replace it (the old build's record stays)."""
    started = time.monotonic()
    report = UploadReport(channel=channel, container=container.url, dry_run=dry_run)
    release = channel == "release"
    # 1. Decide, with nothing written yet.
    plan: list[tuple[Path, FileDigest, str]] = []  # (path, digest, action)
    refused = []
    existing_markers: set[str] = set()
    for path in wheelhouse.wheels:
        digest = digest_file(path)
        there = container.head(path.name)
        if there is None:
            action = "upload"
        else:
            same = (
                there.size == digest.size
                and (there.sha256 or _sha256_of(container, path.name)) == digest.sha256
            )
            if same:
                action = "skip"
            elif release:
                refused.append(
                    f"{path.name} (sha256 {digest.sha256[:16]}…, but the container has "
                    f"{(there.sha256 or '?')[:16]}…, {there.size} bytes)"
                )
                action = "refuse"
            else:
                action = "replace"
        plan.append((path, digest, action))
    if refused:
        raise ImmutableReleaseError(
            "REFUSED: released files are immutable; the release container "
            f"{container.url} already has different files under these names: "
            + "; ".join(refused)
            + ". Nothing was uploaded. Build a new version instead."
        )
    if plan and any(action == "skip" for _, _, action in plan):
        existing_markers = {o.name for o in container.list(MARKERS)}
    verb = "would " if dry_run else ""
    for path, digest, action in plan:
        echo(f"  {verb}{action} {path.name} ({digest.size} bytes, sha256 {digest.sha256[:16]}…)")
    new_files: list[tuple[str, Path, dict[str, Any] | None]] = []
    for path in wheelhouse.logs:
        new_files.append((f"{BUILDS}{path.name}", path, None))
    for path, record in wheelhouse.records:
        new_files.append((f"{BUILDS}{record['build_id']}.json", path, record))
    for name, _, _ in new_files:
        echo(f"  {verb}upload {name} (unless already there)")
    if dry_run:
        report.seconds = time.monotonic() - started
        report.skipped = [p.name for p, _, a in plan if a == "skip"]
        report.uploaded = [p.name for p, _, a in plan if a == "upload"]
        report.replaced = [p.name for p, _, a in plan if a == "replace"]
        return report
    # 2. Wheels: upload + verify, then the marker that lets the index show them.
    container.ensure()
    for path, digest, action in plan:
        if action != "skip":
            container.put_file(path.name, path, digest)
            report.bytes_sent += digest.size
            (report.replaced if action == "replace" else report.uploaded).append(path.name)
        else:
            report.skipped.append(path.name)
        marker = marker_name(path.name, digest)
        if action != "skip" or marker not in existing_markers:
            # Not empty: an empty PUT leaves SeaweedFS's keep-alive connection hanging.
            container.put_bytes(marker, b"verified\n")
    # 3. Logs, then records (a record in the container means its log is there too).
    present = {o.name for o in container.list(BUILDS)}
    for name, path, build_record in new_files:
        if name in present:
            continue
        if build_record is None:
            data = redact(
                path.read_text(encoding="utf-8", errors="replace"), list(secrets)
            ).encode()
        else:
            data = _record_for_upload(build_record, ci, channel, list(secrets))
        container.put_bytes(name, data)
        report.build_files.append(name)
    # 4. The pages.
    rebuild_index(container, title)
    rebuild_history(container, f"{title}: build history")
    report.index_url = container.public_url(INDEX)
    report.history_url = container.public_url(HISTORY)
    report.retries = container.stats.retries
    report.seconds = time.monotonic() - started
    return report


def _sha256_of(container: Container, name: str) -> str:
    """The sha256 of an object without sha256 metadata (uploaded by other tools)."""
    return hashlib.sha256(container.get_bytes(name)).hexdigest()
