"""Fetching files by URL or path (verified, via a partial file), unpacking archives safely,
and writing an sdist's .tar.gz in a normal form (the same files give the same bytes)."""

from __future__ import annotations

import gzip
import io
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


def normalize_tar_gz(archive: Path, epoch: int) -> None:
    """Rewrite a .tar.gz (an sdist) so its bytes follow from its files alone: members sorted
    by name, times clamped to `epoch` (SOURCE_DATE_EPOCH: the commit's date), owners
    dropped, modes 0644/0755, and no time or name in the gzip header. Replaced by rename."""
    members: list[tuple[tarfile.TarInfo, bytes | None]] = []
    with tarfile.open(archive, "r:gz") as source:
        for member in source.getmembers():
            data = None
            if member.isfile():
                extracted = source.extractfile(member)
                data = extracted.read() if extracted is not None else b""
            members.append((member, data))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as target:
        for member, data in sorted(members, key=lambda item: item[0].name):
            member.mtime = min(int(member.mtime), epoch)
            member.uid = member.gid = 0
            member.uname = member.gname = ""
            member.mode = 0o755 if member.isdir() or member.mode & 0o111 else 0o644
            # Only what names the member stays from its own PAX header (no atime, ctime).
            member.pax_headers = {
                k: v for k, v in member.pax_headers.items() if k in ("path", "linkpath")
            }
            target.addfile(member, io.BytesIO(data) if data is not None else None)
    partial = archive.with_name(archive.name + ".partial")
    with (
        partial.open("wb") as raw,
        gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0, compresslevel=9) as compressed,
    ):
        compressed.write(buffer.getvalue())
    partial.replace(archive)
