"""A container's index layer: which wheels are listed (a `.verified` marker written after the
wheel was checked, naming the exact object it checked), and the two pages made from listings
and build records.

    NAME.whl                             the wheels, at the top (pip --find-links reads index.html)
    .verified/NAME.whl/SIZE-SHA256-ETAG  written only after the wheel was verified
    builds/BUILD-ID.json                 the build's record (with the CI run that uploaded it)
    builds/BUILD-ID.log                  the build's log (secrets redacted)
    index.html                           the verified wheels (name, size, date, sha256)
    history.html                         every build (commit, branch, event, platform, status...)

A marker names the object it verified by its size and ETag (as the store returned them after
the upload; a local container's ETag changes with every write). index.html lists a wheel only
with a marker that matches the object the listing shows now: a replaced wheel is not listed
with its old sha256, not even for a moment, and no clock is compared. A wheel being replaced
leaves the index before its object changes and comes back once verified (`withdraw`).

Both pages are regenerated from a listing, written, and then checked against a new listing; a
writer that sees objects its page lacks writes again. So the last page written holds
everything any writer finished before (concurrent matrix jobs lose nothing), whatever the
backend, without locks. A record that cannot be read fails the page: a page never leaves a
build out.
"""

from __future__ import annotations

import hashlib
import random
import re
import time
from collections.abc import Callable, Iterable

from multibuild.engine.record import BuildRecord
from multibuild.errors import UploadError
from multibuild.publish.containers.base import Container, FileDigest, NotFound, ObjectInfo
from multibuild.publish.pages import WheelEntry, history_html, index_html
from multibuild.util import jsontext

MARKERS = ".verified/"
BUILDS = "builds/"
INDEX = "index.html"
HISTORY = "history.html"
PAGE_ROUNDS = 20
MAX_RECORD_BYTES = 16 << 20  # records are a few KiB; anything this big is not one of ours
_TOKEN = re.compile(r"[A-Za-z0-9._]{1,128}")
_LEAF = re.compile(r"(\d+)-([0-9a-f]{64})(?:-(.+))?")


def etag_token(etag: str) -> str:
    """The object's ETag as a marker name holds it (hashed if it is no plain word)."""
    etag = etag.strip('"')
    if _TOKEN.fullmatch(etag.replace("-", "_")):
        return etag
    return "h" + hashlib.sha256(etag.encode()).hexdigest()[:32]


def marker_name(wheel: str, digest: FileDigest, etag: str) -> str:
    return f"{MARKERS}{wheel}/{digest.size}-{digest.sha256}-{etag_token(etag)}"


def parse_marker(name: str) -> tuple[str, int, str, str | None] | None:
    """(wheel, size, sha256, ETag token or None for a marker of the old SIZE-SHA256 form)."""
    if not name.startswith(MARKERS):
        return None
    wheel, _, leaf = name[len(MARKERS) :].rpartition("/")
    found = _LEAF.fullmatch(leaf)
    if not wheel or found is None:
        return None
    return wheel, int(found.group(1)), found.group(2), found.group(3)


def index_entries(objects: Iterable[ObjectInfo]) -> list[WheelEntry]:
    """The wheels a listing shows as verified, with their sha256: a top-level wheel whose
    marker names its current size and ETag (one sha256, else it is not listed)."""
    wheels: dict[str, ObjectInfo] = {}
    markers: dict[str, list[tuple[int, str, str]]] = {}
    for obj in objects:
        parsed = parse_marker(obj.name)
        if parsed is not None:
            wheel, size, sha256, token = parsed
            if token is not None:
                markers.setdefault(wheel, []).append((size, sha256, token))
        elif "/" not in obj.name and obj.name.endswith(".whl"):
            wheels[obj.name] = obj
    entries = []
    for name, found in wheels.items():
        token = etag_token(found.etag)
        shas = {sha for size, sha, t in markers.get(name, []) if size == found.size and t == token}
        if len(shas) == 1:
            entries.append(WheelEntry(name, found.size, found.last_modified, shas.pop()))
    return sorted(entries, key=lambda e: e.name)


def mark_verified(container: Container, wheel: str, digest: FileDigest, etag: str) -> str:
    """The marker of a verified wheel (not empty: an empty PUT leaves SeaweedFS's keep-alive
    connection hanging)."""
    name = marker_name(wheel, digest, etag)
    container.put_bytes(name, b"verified\n")
    return name


def migrate_markers(container: Container, objects: list[ObjectInfo]) -> None:
    """Markers of the old SIZE-SHA256 form (no ETag) become markers of the object, where its
    sha256 metadata says it is that file. Once per container."""
    current = {p[0] for o in objects if (p := parse_marker(o.name)) and p[3] is not None}
    legacy: dict[str, list[tuple[ObjectInfo, int, str]]] = {}
    for obj in objects:
        parsed = parse_marker(obj.name)
        if parsed is not None and parsed[3] is None and parsed[0] not in current:
            legacy.setdefault(parsed[0], []).append((obj, parsed[1], parsed[2]))
    for wheel, old in legacy.items():
        info = container.head(wheel)
        if info is None:
            continue
        if any(info.size == size and info.sha256 == sha for _, size, sha in old):
            digest = FileDigest(size=info.size, sha256=info.sha256, md5="")
            mark_verified(container, wheel, digest, info.etag)
        for obj, _, _ in old:
            container.delete(obj.name)


def withdraw(container: Container, wheel: str, title: str) -> None:
    """Take `wheel` out of index.html before its object is replaced: its markers go, then the
    page is rewritten without it (concurrent writers see no marker either)."""
    for marker in list(container.list(f"{MARKERS}{wheel}/")):
        container.delete(marker.name)
    rebuild_index(container, title)


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

    migrate_markers(container, list(container.list(MARKERS)))
    result = _settle("index.html", render, container, INDEX)
    assert isinstance(result, list)
    return result


class RecordCache:
    """Build records read from a container, by name (records are written once). A read that
    fails (after the container's own retries) fails the caller: no page leaves a build out."""

    READS = 3  # a body that is not JSON may have been cut short: read it again

    def __init__(self, container: Container) -> None:
        self.container = container
        self.records: dict[str, BuildRecord | None] = {}

    def get(self, obj: ObjectInfo) -> BuildRecord | None:
        """The record (None: the object is JSON but no build record, or far too big)."""
        name = obj.name
        if name not in self.records:
            if obj.size > MAX_RECORD_BYTES:
                self.records[name] = None
                return None
            for attempt in range(self.READS):
                try:
                    data = self.container.get_bytes(name)
                except NotFound:  # deleted since the listing (a prune): not a build now
                    return None
                try:
                    parsed = jsontext.loads(data)
                    break
                except ValueError as error:
                    if attempt + 1 == self.READS:
                        raise UploadError(
                            f"{name} is not valid JSON ({error}; {len(data)} bytes read): fix "
                            "or delete it; the pages were not written"
                        ) from None
            self.records[name] = BuildRecord.from_json(parsed)
        return self.records[name]

    def all(self, objects: Iterable[ObjectInfo]) -> list[BuildRecord]:
        result = []
        for obj in objects:
            if obj.name.startswith(BUILDS) and obj.name.endswith(".json"):
                record = self.get(obj)
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
