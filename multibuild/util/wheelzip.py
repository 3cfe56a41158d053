"""Wheels whose bytes depend only on their members' names and contents: the same sources,
settings and toolchain give the same sha256, whoever builds them and whenever.

The build backends and repair tools write zips with the time of the build, the file system's
order and the files' modes. `normalize_wheel` rewrites a wheel with: members sorted (the
.dist-info directory last, RECORD last in it, as the wheel spec and every tool put it); every
date the source's date (SOURCE_DATE_EPOCH, clamped to what a zip can hold); modes 0644, or
0755 when any execute bit was set; no directory entries; deflate at one fixed level; and a
RECORD in archive order, after checking the old one against the contents (a wheel whose
RECORD does not match its files is refused: it is broken, not merely untidy).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import io
import os
import stat
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

ZIP_MIN = 315532800  # 1980-01-01 00:00:00 UTC, the earliest date a zip holds
ZIP_MAX = 4354819198  # 2107-12-31 23:59:58 UTC, the latest
LEVEL = 6  # zlib's default: what setuptools, meson-python and auditwheel use


class WheelZipError(Exception):
    """A wheel that cannot be normalised: unsafe or duplicate names, a RECORD that does not
    match the files."""


@dataclass(frozen=True)
class Normalised:
    members: int
    epoch: int


def zip_date_time(epoch: int) -> tuple[int, int, int, int, int, int]:
    year, month, day, hour, minute, second = time.gmtime(min(max(epoch, ZIP_MIN), ZIP_MAX))[:6]
    return year, month, day, hour, minute, second


def _hash(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def _dist_info(names: list[str], wheel: str) -> str:
    tops = {n.split("/", 1)[0] for n in names if n.split("/", 1)[0].endswith(".dist-info")}
    if len(tops) != 1:
        raise WheelZipError(f"{wheel}: expected one .dist-info directory, found {sorted(tops)}")
    return tops.pop()


def _check_record(record: bytes, files: dict[str, bytes], record_name: str, wheel: str) -> None:
    listed: dict[str, tuple[str, str]] = {}
    for row in csv.reader(io.StringIO(record.decode("utf-8"), newline="")):
        if row:
            if len(row) != 3:
                raise WheelZipError(f"{wheel}: a malformed RECORD row {row!r}")
            listed[row[0]] = (row[1], row[2])
    signatures = {record_name, f"{record_name}.jws", f"{record_name}.p7s"}
    for name, data in files.items():
        if name in signatures:
            continue
        if name not in listed:
            raise WheelZipError(f"{wheel}: {name} is not in its RECORD")
        digest, size = listed[name]
        algorithm, _, value = digest.partition("=")
        try:
            actual = base64.urlsafe_b64encode(hashlib.new(algorithm, data).digest())
        except ValueError:
            raise WheelZipError(f"{wheel}: {name}: unknown hash {algorithm!r}") from None
        if actual.rstrip(b"=").decode() != value or (size and size != str(len(data))):
            raise WheelZipError(f"{wheel}: {name} is not what its RECORD says")
    absent = sorted(set(listed) - set(files))
    if absent:
        raise WheelZipError(f"{wheel}: its RECORD lists {absent[0]}, not in the wheel")


def normalize_wheel(path: Path, epoch: int) -> Normalised:
    """Rewrite the wheel at `path` (in place, by one rename) in the normal form above."""
    files: dict[str, bytes] = {}
    executable: dict[str, bool] = {}
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            name = info.filename
            if name.startswith("/") or "\\" in name or ".." in name.split("/"):
                raise WheelZipError(f"{path.name}: an unsafe member name {name!r}")
            if info.is_dir():
                continue
            if name in files:
                raise WheelZipError(f"{path.name}: {name} twice")
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                raise WheelZipError(f"{path.name}: {name} is a symbolic link")
            files[name] = archive.read(info)
            executable[name] = bool(mode & 0o111)
    dist_info = _dist_info(list(files), path.name)
    record_name = f"{dist_info}/RECORD"
    if record_name not in files:
        raise WheelZipError(f"{path.name}: no {record_name}")
    _check_record(files[record_name], files, record_name, path.name)
    for signature in (f"{record_name}.jws", f"{record_name}.p7s"):
        files.pop(signature, None)  # signs the old bytes: meaningless after a rewrite

    def order(name: str) -> tuple[bool, bool, str]:
        return name.startswith(f"{dist_info}/"), name == record_name, name

    names = sorted(files, key=order)
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for name in names:
        if name != record_name:
            writer.writerow((name, f"sha256={_hash(files[name])}", len(files[name])))
    writer.writerow((record_name, "", ""))
    files[record_name] = record.getvalue().encode()
    date_time = zip_date_time(epoch)
    partial = path.with_name(f".{path.name}.normalising-{os.getpid()}")
    try:
        with zipfile.ZipFile(partial, "w") as out:
            for name in names:
                info = zipfile.ZipInfo(name, date_time=date_time)
                info.create_system = 3  # Unix, whatever OS writes it
                mode = 0o755 if executable.get(name) else 0o644
                info.external_attr = (stat.S_IFREG | mode) << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                out.writestr(info, files[name], compresslevel=LEVEL)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    return Normalised(members=len(names), epoch=epoch)


def retag_platform(path: Path, old: str, new: str) -> Path | None:
    """The wheel at `path` with its platform tag `old` (macosx_12_3_arm64) named `new`
    (macosx_12_0_arm64), in its file name and its WHEEL file's Tag lines, RECORD updated;
    the old file goes. None, and nothing changed, when the wheel's tag is not `old`."""
    stem = path.name.removesuffix(".whl")
    head, _, platforms = stem.rpartition("-")
    tags = platforms.split(".")
    if old not in tags:
        return None
    target = path.with_name(f"{head}-{'.'.join(new if t == old else t for t in tags)}.whl")
    with zipfile.ZipFile(path) as archive:
        infos = archive.infolist()
        files = {info.filename: archive.read(info) for info in infos if not info.is_dir()}
    dist_info = _dist_info(list(files), path.name)
    wheel_name, record_name = f"{dist_info}/WHEEL", f"{dist_info}/RECORD"
    if wheel_name not in files or record_name not in files:
        raise WheelZipError(f"{path.name}: no {wheel_name} or {record_name}")
    _check_record(files[record_name], files, record_name, path.name)
    lines = files[wheel_name].decode("utf-8").splitlines()
    for i, line in enumerate(lines):
        tag_head, _, tag_plat = line.rpartition("-")
        if line.startswith("Tag:") and tag_plat == old:
            lines[i] = f"{tag_head}-{new}"
    files[wheel_name] = ("\n".join(lines) + "\n").encode("utf-8")
    rows = list(csv.reader(io.StringIO(files[record_name].decode("utf-8"), newline="")))
    record = io.StringIO()
    writer = csv.writer(record, lineterminator="\n")
    for row in rows:
        if row and row[0] == wheel_name:
            row = [wheel_name, f"sha256={_hash(files[wheel_name])}", str(len(files[wheel_name]))]
        if row:
            writer.writerow(row)
    files[record_name] = record.getvalue().encode("utf-8")
    for signature in (f"{record_name}.jws", f"{record_name}.p7s"):
        files.pop(signature, None)  # signs the old RECORD
    partial = target.with_name(f".{target.name}.retagging-{os.getpid()}")
    try:
        with zipfile.ZipFile(partial, "w") as out:
            for info in infos:
                if info.filename in files:
                    out.writestr(info, files[info.filename], compress_type=info.compress_type)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    if target != path:
        path.unlink()
    return target
