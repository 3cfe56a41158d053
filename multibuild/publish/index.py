"""A container's index layer: which wheels are listed (a `.verified` marker written after the
wheel was checked), and the two pages made from listings and build records.

    NAME.whl                        the wheels, at the top (pip --find-links reads index.html)
    .verified/NAME.whl/SIZE-SHA256  a marker written only after the wheel was verified
    builds/BUILD-ID.json            the build's record (with the CI run that uploaded it)
    builds/BUILD-ID.log             the build's log (secrets redacted)
    index.html                      the verified wheels (name, size, date, sha256)
    history.html                    every build (commit, branch, event, platform, status...)

Both pages are regenerated from a listing, written, and then checked against a new listing; a
writer that sees objects its page lacks writes again. So the last page written holds
everything any writer finished before (concurrent matrix jobs lose nothing), whatever the
backend, without locks.
"""

from __future__ import annotations

import json
import random
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from multibuild.engine.record import BuildRecord
from multibuild.errors import UploadError
from multibuild.publish.containers.base import Container, FileDigest, ObjectInfo
from multibuild.publish.pages import WheelEntry, history_html, index_html

MARKERS = ".verified/"
BUILDS = "builds/"
INDEX = "index.html"
HISTORY = "history.html"
PAGE_ROUNDS = 20


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
        self.records: dict[str, BuildRecord] = {}

    def get(self, name: str) -> BuildRecord | None:
        if name not in self.records:
            try:
                record = BuildRecord.from_json(json.loads(self.container.get_bytes(name)))
            except (UploadError, ValueError):
                return None
            if record is None:
                return None
            self.records[name] = record
        return self.records[name]

    def all(self, objects: Iterable[ObjectInfo]) -> list[BuildRecord]:
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
