"""A meson build dir kept in the build cache, for a build from a fresh copy of the source (a
CI nightly's restored cache; cibuildwheel's container, which gets a new copy each run).

ninja decides what to rebuild by the files' dates, and a fresh checkout or copy dates every
file "now": every output would look stale. So the cache keeps, beside the build dir, each
source file's sha256 and the date the last build saw; the next build gives each unchanged file
that date back and every other file the current time, newer than every output, so ninja
rebuilds exactly what changed. The record is removed before a build starts and written after it
succeeded: a build dir without its record (a failed or interrupted build, a cache restored
without it), or from another configuration (image, Python, config settings), is emptied first.
A wrong cache costs a cold build, never a stale object in a wheel.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multibuild.util.files import remove_tree, sha256_file

FORMAT = 1
# What no build reads: git's own files (a git source), Python's byte code.
SKIPPED_DIRS = frozenset({".git", "__pycache__"})


def _files(source: Path) -> Iterator[tuple[str, Path]]:
    for root, dirs, names in os.walk(source):
        dirs[:] = sorted(d for d in dirs if d not in SKIPPED_DIRS)
        for name in sorted(names):
            path = Path(root, name)
            if path.is_file() and not path.is_symlink():
                yield path.relative_to(source).as_posix(), path


def source_dates(
    source: Path, known: Mapping[str, tuple[str, int, int]] | None = None
) -> dict[str, list[Any]]:
    """Each source file's sha256 and date (ns), by its path relative to `source`. A file whose
    size and date are still those in `known` (name: sha256, size, date) keeps that sha256."""
    known = known or {}
    dates: dict[str, list[Any]] = {}
    for name, path in _files(source):
        stat = path.stat()
        seen = known.get(name)
        if seen is not None and seen[1:] == (stat.st_size, stat.st_mtime_ns):
            digest = seen[0]
        else:
            digest = sha256_file(path)
        dates[name] = [digest, stat.st_mtime_ns]
    return dates


@dataclass(frozen=True)
class KeptBuildDir:
    """One build's kept build dir: `host` on this machine, `path` as the build sees it (the
    same, or its mount point in a container), `configuration` what its outputs depend on
    besides the source (image, Python, config settings)."""

    host: Path
    path: str
    configuration: Mapping[str, Any]
    # What prepare hashed (name: sha256, size, the date it gave): save re-reads only the
    # dates, and hashes again only a file the build changed.
    _hashed: dict[str, tuple[str, int, int]] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    @property
    def record_file(self) -> Path:
        return self.host.with_name(self.host.name + ".sources.json")

    def prepare(self, source: Path) -> str:
        """Date `source`'s files for the kept build dir (or empty it); returns what the record
        says of it."""
        note, kept = self._kept()
        self._hashed.clear()
        if kept is None:
            remove_tree(self.host)
        else:
            now = time.time_ns()
            unchanged = changed = 0
            for name, path in _files(source):
                known = kept.get(name)
                digest = sha256_file(path)
                if isinstance(known, list) and len(known) == 2 and known[0] == digest:
                    date = int(known[1])
                    unchanged += 1
                else:
                    date = now  # newer than every output: rebuilt
                    changed += 1
                os.utime(path, ns=(date, date))
                self._hashed[name] = (digest, path.stat().st_size, date)
            note = f"kept: {unchanged} source files unchanged, {changed} changed or new"
        # Until this build succeeds, the build dir holds outputs no record describes.
        self.record_file.unlink(missing_ok=True)
        self.host.mkdir(parents=True, exist_ok=True)
        return note

    def save(self, source: Path) -> None:
        """After a successful build: the source's dates as this build saw them."""
        data = {
            "format": FORMAT,
            "configuration": dict(self.configuration),
            "sources": source_dates(source, self._hashed),
        }
        partial = self.record_file.with_name(self.record_file.name + ".partial")
        partial.write_text(json.dumps(data, sort_keys=True))
        partial.replace(self.record_file)

    def _kept(self) -> tuple[str, dict[str, Any] | None]:
        if not self.host.is_dir() or not any(self.host.iterdir()):
            return "new: the cache held no build dir", None
        try:
            data = json.loads(self.record_file.read_text())
        except FileNotFoundError:
            return "emptied: no record of its sources (an interrupted or failed build)", None
        except ValueError:
            return "emptied: its record is not readable", None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            return "emptied: its record has another format", None
        if data.get("configuration") != json.loads(json.dumps(dict(self.configuration))):
            return "emptied: configured for another image, Python or settings", None
        sources = data.get("sources")
        return "", sources if isinstance(sources, dict) else {}


# The date the build requirements' files get (2000-01-01): older than every output.
SETTLED_DATE = 946684800


def settle_requirements(build_dir: Path, trees: Sequence[Path], versions: Sequence[str]) -> str:
    """In a new container the build requirements (numpy's headers and .pxd files, Cython's,
    pythran's) were just installed: dated now, they would make every output that includes them
    look stale. Their files get one old date instead, which is safe because the build dir is
    emptied whenever the installed versions differ from those it was last built with (their
    list is kept beside it). Returns a note when the build dir was emptied."""
    stamp = build_dir.with_name(build_dir.name + ".requirements.json")
    try:
        known = json.loads(stamp.read_text())
    except (OSError, ValueError):
        known = None
    note = ""
    if known != list(versions) and build_dir.is_dir() and any(build_dir.iterdir()):
        remove_tree(build_dir)
        build_dir.mkdir(parents=True)
        note = "emptied: the build requirements' versions differ from its last build's"
    stamp.write_text(json.dumps(list(versions)))
    for tree in trees:
        for root, _dirs, names in os.walk(tree):
            for name in names:
                path = Path(root, name)
                if not path.is_symlink():
                    os.utime(path, (SETTLED_DATE, SETTLED_DATE))
    return note
