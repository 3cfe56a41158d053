"""Fetching files by URL or path (verified, via a partial file) and unpacking archives safely."""

from __future__ import annotations

import shutil
import sys
import tarfile
import zipfile
from pathlib import Path

from multibuild._compat import extract_tar
from multibuild.errors import FatalError
from multibuild.util.files import remove_tree, sha256_file
from multibuild.util.urls import basename, hide_userinfo, local_path


def download(url: str, target: Path, *, sha256: str | None, error: type[FatalError]) -> str:
    """Copy (path, file://) or download `url` to `target`; the name appears only once the
    content is complete and matches `sha256` (when given). Returns the file's sha256."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f"{target.name}.part")
    try:
        path = local_path(url)
        if path is not None:
            shutil.copyfile(path, partial)
        else:
            _fetch(url, partial, error)
    except OSError as problem:
        partial.unlink(missing_ok=True)
        raise error(f"cannot fetch {hide_userinfo(url)}: {problem}") from None
    actual = sha256_file(partial)
    if sha256 and actual != sha256:
        partial.unlink()
        raise error(f"{basename(url)}: sha256 mismatch: expected {sha256}, got {actual}")
    partial.replace(target)
    return actual


def _fetch(url: str, partial: Path, error: type[FatalError]) -> None:
    # The HTTP session is imported only where a URL is fetched: the hooks' helpers also run
    # under a build container's bare CPython (cibuildwheel's before-build), which has no
    # `requests`; a path or a mirror serves there.
    try:
        from multibuild.util import http
    except ImportError:
        raise error(
            f"cannot fetch {hide_userinfo(url)}: this Python ({sys.executable}) lacks the "
            "engine's HTTP client (requests); put the file in a --mirror directory"
        ) from None
    partial.unlink(missing_ok=True)
    try:
        http.shared().download(url, partial)
    except http.HttpError as problem:
        partial.unlink(missing_ok=True)
        raise error(f"cannot fetch {hide_userinfo(url)}: {problem}") from None


def unpack(archive: Path, dest: Path, *, error: type[FatalError]) -> Path:
    """Unpack into a fresh `dest` (no member may land outside it); returns the single
    top-level directory if the archive has one, else `dest`."""
    remove_tree(dest)
    dest.mkdir(parents=True)
    try:
        if archive.name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                for member in zf.namelist():
                    if member.startswith("/") or ".." in Path(member).parts:
                        raise error(f"{archive.name}: unsafe path {member!r}")
                zf.extractall(dest)
        else:
            with tarfile.open(archive) as tf:
                extract_tar(tf, dest)
    except (tarfile.TarError, zipfile.BadZipFile, OSError) as problem:
        raise error(f"cannot unpack {archive.name}: {problem}") from None
    entries = list(dest.iterdir())
    return entries[0] if len(entries) == 1 and entries[0].is_dir() else dest
