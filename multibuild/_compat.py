"""What differs between the Python versions we support (3.10 and newer)."""

from __future__ import annotations

import sys
import tarfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["extract_tar", "tomllib"]


def extract_tar(archive: tarfile.TarFile, dest: Path) -> None:
    """Extract with tarfile's "data" filter (no member outside `dest`, no device files, no
    absolute links). Python 3.10.12 and 3.11.4 brought the filter; before them the same rules
    are checked here, member by member."""
    if hasattr(tarfile, "data_filter"):
        archive.extractall(dest, filter="data")
        return
    root = dest.resolve()  # pragma: no cover - old patch releases only
    for member in archive.getmembers():  # pragma: no cover
        target = (root / member.name).resolve()
        if not target.is_relative_to(root):
            raise tarfile.TarError(f"{member.name!r} would land outside {dest}")
        if member.isdev():
            raise tarfile.TarError(f"{member.name!r} is a device file")
        if member.issym() or member.islnk():
            link = (target.parent / member.linkname).resolve()
            if member.linkname.startswith("/") or not link.is_relative_to(root):
                raise tarfile.TarError(f"{member.name!r} links outside {dest}")
        member.mode &= 0o755  # no setuid, setgid or group/other write, as the filter
    archive.extractall(dest)  # pragma: no cover
