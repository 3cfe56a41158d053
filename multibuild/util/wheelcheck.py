"""A wheel checked as pip checks it before installing, in bounded memory: what `upload`
publishes and `wheel-uploader` downloads is a wheel, or is refused.

Checked: the file name (PEP 427); a zip archive (not an HTML page named .whl); member names
that stay inside the install directory (no absolute path, drive, backslash, `..` or empty
part) and no symlink or duplicate; one `NAME-VERSION.dist-info` whose name and version are the
file name's; its WHEEL and RECORD; RECORD listing every member but itself once, each with its
sha256 and size, and each member's content matching (CRC included: every member is read to its
end). Members are read in chunks, and inflation is capped: a member never inflates past the
size RECORD gives it, and the whole past MAX_RATIO times the file or MAX_TOTAL.
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import stat
import zipfile
from pathlib import Path

from packaging.utils import (
    InvalidWheelFilename,
    canonicalize_name,
    canonicalize_version,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion

from multibuild.util.files import CHUNK

MAX_RATIO = 200  # scipy's wheels inflate 3-4x; a zip bomb by a thousand
MAX_TOTAL = 16 << 30
MAX_METADATA = 16 << 20  # RECORD and WHEEL: read whole, so capped
_SIGNATURES = (".jws", ".p7s")


class WheelProblem(Exception):
    """Why a file is not a wheel to publish or keep."""


def _unsafe(name: str) -> str | None:
    if "\\" in name or name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        return "an absolute or non-POSIX path"
    parts = name.rstrip("/").split("/")
    if any(part in ("", ".", "..") for part in parts):
        return "a '..', '.' or empty path part"
    if "\0" in name:
        return "a NUL character"
    return None


def _read_capped(archive: zipfile.ZipFile, info: zipfile.ZipInfo, limit: int) -> bytes:
    with archive.open(info) as member:
        data = member.read(limit + 1)
        if len(data) > limit:
            raise WheelProblem(f"{info.filename} inflates past {limit} bytes")
        member.read()  # to its end: the CRC is checked there (nothing left past `limit`)
    return data


def _digest(archive: zipfile.ZipFile, info: zipfile.ZipInfo, size: int) -> str:
    """The member's sha256 (RECORD's encoding), read in chunks and stopped past `size`."""
    sha = hashlib.sha256()
    seen = 0
    with archive.open(info) as member:
        while chunk := member.read(CHUNK):
            seen += len(chunk)
            if seen > size:
                raise WheelProblem(f"{info.filename} is larger than the {size} bytes RECORD says")
            sha.update(chunk)
    if seen != size:
        raise WheelProblem(f"{info.filename} is {seen} bytes, RECORD says {size}")
    return "sha256=" + base64.urlsafe_b64encode(sha.digest()).rstrip(b"=").decode()


def _record(data: bytes, record_name: str) -> dict[str, tuple[str, int]]:
    listed: dict[str, tuple[str, int]] = {}
    try:
        rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    except (UnicodeDecodeError, csv.Error) as error:
        raise WheelProblem(f"{record_name} is not a CSV file ({error})") from None
    for row in rows:
        if not row:
            continue
        if len(row) != 3:
            raise WheelProblem(f"{record_name}: a row of {len(row)} fields: {row[:3]}")
        path, digest, size = row
        if path in listed:
            raise WheelProblem(f"{record_name} lists {path} twice")
        if path == record_name or path.endswith(_SIGNATURES):
            listed[path] = ("", -1)
            continue
        if not digest.startswith("sha256=") or not size.isdigit():
            raise WheelProblem(f"{record_name}: {path} has no sha256 and size ({digest!r})")
        listed[path] = (digest, int(size))
    return listed


def check_wheel(path: Path, name: str | None = None) -> None:
    """Raise WheelProblem unless `path` (a wheel named `name`, default its own name) is one
    pip would install."""
    filename = name or path.name
    try:
        project, version, _, _ = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion) as error:
        raise WheelProblem(f"not a valid wheel file name ({error})") from None
    with path.open("rb") as file:
        head = file.read(512).lstrip().lower()
    if head.startswith((b"<!doctype html", b"<html", b"<?xml", b"<")):
        raise WheelProblem("an HTML or XML document, not a zip archive (an error page?)")
    try:
        with zipfile.ZipFile(path) as archive:
            _check_archive(archive, path.stat().st_size, project, version)
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError, NotImplementedError) as error:
        raise WheelProblem(f"not a readable zip archive ({error})") from None
    except OSError as error:
        raise WheelProblem(f"cannot be read ({error})") from None


def _member_names(infos: list[zipfile.ZipInfo], file_size: int) -> set[str]:
    """The members' names: each safe, no link, none twice, inflating to a sane size."""
    names: set[str] = set()
    total = 0
    for info in infos:
        problem = _unsafe(info.filename)
        if problem:
            raise WheelProblem(f"member {info.filename!r}: {problem}")
        if stat.S_ISLNK(info.external_attr >> 16):
            raise WheelProblem(f"member {info.filename!r} is a symbolic link")
        if info.filename in names:
            raise WheelProblem(f"member {info.filename!r} is in the archive twice")
        names.add(info.filename)
        total += info.file_size
    if total > min(MAX_TOTAL, max(MAX_RATIO * file_size, 64 << 20)):
        raise WheelProblem(f"inflates to {total} bytes from {file_size}: a zip bomb")
    return names


def _check_archive(archive: zipfile.ZipFile, file_size: int, project: str, version: object) -> None:
    infos = archive.infolist()
    names = _member_names(infos, file_size)
    tops = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    if len(tops) != 1:
        raise WheelProblem(f"one .dist-info directory expected, found {sorted(tops) or 'none'}")
    top = tops.pop()
    dist_name, _, dist_version = top.removesuffix(".dist-info").rpartition("-")
    if canonicalize_name(dist_name) != project or canonicalize_version(
        dist_version
    ) != canonicalize_version(str(version)):
        raise WheelProblem(f"{top} is not {project} {version}'s dist-info")
    record_name = f"{top}/RECORD"
    for needed in (f"{top}/WHEEL", record_name):
        if needed not in names:
            raise WheelProblem(f"no {needed}")
    by_name = {info.filename: info for info in infos}
    _read_capped(archive, by_name[f"{top}/WHEEL"], MAX_METADATA)
    listed = _record(_read_capped(archive, by_name[record_name], MAX_METADATA), record_name)
    files = {n for n in names if not n.endswith("/")}
    missing = sorted(files - set(listed))
    if missing:
        raise WheelProblem(f"{record_name} does not list {', '.join(missing[:3])}")
    extra = sorted(set(listed) - files)
    if extra:
        raise WheelProblem(f"{record_name} lists {', '.join(extra[:3])}, not in the archive")
    for member in sorted(files):
        digest, size = listed[member]
        if size < 0:
            continue
        if by_name[member].file_size != size:
            raise WheelProblem(f"{member} is {by_name[member].file_size} bytes, RECORD says {size}")
        if _digest(archive, by_name[member], size) != digest:
            raise WheelProblem(f"{member} does not match its sha256 in {record_name}")
