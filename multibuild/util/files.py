"""Small file helpers: hashing, atomic copies, an inter-process lock."""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

CHUNK = 1 << 20  # the block files are read and copied in


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def remove_tree(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@contextlib.contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """Exclusive lock between processes (two builds sharing one cache)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a+b") as handle:
        if sys.platform == "win32":  # pragma: no cover - exercised on Windows CI
            import msvcrt

            handle.seek(0)
            msvcrt.locking(handle.fileno(), msvcrt.LK_LOCK, 1)
            try:
                yield
            finally:
                handle.seek(0)
                msvcrt.locking(handle.fileno(), msvcrt.LK_UNLCK, 1)
        else:
            import fcntl

            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def copy_into_by_rename(source: Path, directory: Path) -> Path:
    """Copy `source` into `directory` so that the file appears whole or not at all."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / source.name
    partial = final.with_name(f".{final.name}.part")
    shutil.copyfile(source, partial)
    partial.replace(final)
    return final


def copy_tree_into(source: Path, destination: Path) -> int:
    """Copy the files of `source` into `destination` (merging); returns the number of files."""
    count = 0
    for item in sorted(source.rglob("*")):
        target = destination / item.relative_to(source)
        if item.is_symlink():
            target.parent.mkdir(parents=True, exist_ok=True)
            if target.is_symlink() or target.exists():
                target.unlink()
            target.symlink_to(item.readlink())
            count += 1
        elif item.is_dir():
            target.mkdir(parents=True, exist_ok=True)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(item, target)
            count += 1
    return count
