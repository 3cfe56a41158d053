"""Wheels that lie (issue 23, item 4): `upload` and `wheel-uploader` check a wheel as pip
would (names, members, RECORD hashes and sizes, CRC, one dist-info of the right name and
version, a zip and not an HTML page) in bounded memory, and refuse it."""

from __future__ import annotations

import base64
import hashlib
import stat
import tracemalloc
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

from multibuild.errors import UploadError
from multibuild.publish.wheelhouse import collect
from multibuild.release.fetch import ChecksumError, Fetcher
from multibuild.release.listing import read_local
from multibuild.util.http import Http
from multibuild.util.wheelcheck import WheelProblem, check_wheel
from tests.servers.wheelhouse import make_wheel

NAME = "pkg-1.0-py3-none-any.whl"
DIST = "pkg-1.0.dist-info"


def digest(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def write_wheel(
    path: Path,
    files: dict[str, bytes],
    *,
    record: str | None = None,
    dist: str = DIST,
    symlink: str | None = None,
    compression: int = zipfile.ZIP_DEFLATED,
) -> Path:
    """A wheel of `files` plus WHEEL and a RECORD matching them (or `record`)."""
    files = {
        **files,
        f"{dist}/WHEEL": b"Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
    }
    lines = [
        f"{name},{digest(data)},{len(data)}" for name, data in files.items() if name[-1] != "/"
    ]
    text = record if record is not None else "\n".join([*lines, f"{dist}/RECORD,,"]) + "\n"
    with zipfile.ZipFile(path, "w", compression) as archive:
        for name, data in files.items():
            info = zipfile.ZipInfo(name, date_time=(2026, 1, 1, 0, 0, 0))
            info.compress_type = compression
            if name == symlink:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
        archive.writestr(f"{dist}/RECORD", text)
    return path


def zip_slip(path: Path) -> Path:
    return write_wheel(path, {"../../evil.py": b"x"})


def absolute(path: Path) -> Path:
    return write_wheel(path, {"/etc/evil.py": b"x"})


def symlink(path: Path) -> Path:
    return write_wheel(path, {"pkg/link": b"/etc/passwd"}, symlink="pkg/link")


def record_mismatch(path: Path) -> Path:
    wheel = write_wheel(path, {"pkg/__init__.py": b"good"})
    good = zipfile.ZipFile(wheel).read(f"{DIST}/RECORD").decode()
    return write_wheel(path, {"pkg/__init__.py": b"evil"}, record=good)


def record_wrong_size(path: Path) -> Path:
    wheel = write_wheel(path, {"pkg/__init__.py": b"x"})
    good = zipfile.ZipFile(wheel).read(f"{DIST}/RECORD").decode()
    return write_wheel(path, {"pkg/__init__.py": b"x"}, record=good.replace(",1\n", ",2\n", 1))


def unlisted_member(path: Path) -> Path:
    return write_wheel(path, {"pkg/__init__.py": b"x"}, record=f"{DIST}/RECORD,,\n")


def corrupt_crc(path: Path) -> Path:
    wheel = write_wheel(path, {"pkg/data.txt": b"A" * 4096}, compression=zipfile.ZIP_STORED)
    data = bytearray(wheel.read_bytes())
    at = data.index(b"A" * 4096)
    data[at + 100] = ord("B")  # the stored bytes change; the CRC in the headers does not
    wheel.write_bytes(bytes(data))
    return wheel


def other_version(path: Path) -> Path:
    return write_wheel(path, {"pkg/__init__.py": b"x"}, dist="pkg-2.0.dist-info")


def two_dist_infos(path: Path) -> Path:
    return write_wheel(path, {"other-1.0.dist-info/METADATA": b"Name: other\n"})


def html_page(path: Path) -> Path:
    path.write_text("<!DOCTYPE html><html><body>Sign in</body></html>")
    return path


def zero_bomb(path: Path) -> Path:
    """100 MiB of zeros in one member, honestly listed: a thousand times the file."""
    zeros = b"\0" * (100 << 20)
    return write_wheel(path, {"pkg/zeros": zeros})


def inflating_wheel_member(path: Path) -> Path:
    """A WHEEL member of 40 MiB (well within the ratio cap for the whole file)."""
    big = b"Wheel-Version: 1.0\n" + bytes(range(256)) * (40 << 12)
    wheel = write_wheel(path, {"pkg/__init__.py": b"x"})
    with zipfile.ZipFile(wheel) as old:
        members = {i.filename: old.read(i) for i in old.infolist()}
    members[f"{DIST}/WHEEL"] = big
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    return path


HOSTILE: dict[str, tuple[Callable[[Path], Path], str]] = {
    "zip-slip": (zip_slip, "'..'"),
    "absolute": (absolute, "absolute"),
    "symlink": (symlink, "symbolic link"),
    "RECORD hash": (record_mismatch, "does not match its sha256"),
    "RECORD size": (record_wrong_size, "RECORD says 2"),
    "unlisted": (unlisted_member, "does not list .*pkg/__init__.py"),
    "CRC": (corrupt_crc, "CRC|Bad CRC|does not match"),
    "other version": (other_version, r"pkg-2.0.dist-info is not pkg 1.0"),
    "two dist-infos": (two_dist_infos, "one .dist-info directory expected"),
    "HTML": (html_page, "HTML"),
    "zip bomb": (zero_bomb, "zip bomb"),
    "huge WHEEL": (inflating_wheel_member, "inflates past"),
}


@pytest.mark.parametrize(("make", "message"), HOSTILE.values(), ids=HOSTILE.keys())
def test_a_wheel_that_lies_is_refused_in_bounded_memory(
    tmp_path: Path, make: Callable[[Path], Path], message: str
) -> None:
    wheel = make(tmp_path / NAME)
    tracemalloc.start()
    try:
        with pytest.raises(WheelProblem, match=message):
            check_wheel(wheel)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 24 << 20, f"{peak} bytes to check {wheel.stat().st_size}"


def test_real_wheels_pass(tmp_path: Path) -> None:
    check_wheel(make_wheel(tmp_path, "pkg", "1.0", "py3-none-any"))
    check_wheel(make_wheel(tmp_path, "Weird.Name_x", "1.0.post1", "py3-none-any"))
    check_wheel(write_wheel(tmp_path / NAME, {"pkg/__init__.py": b"x", "pkg/sub/": b""}))


@pytest.mark.parametrize("case", ["zip-slip", "RECORD hash", "HTML", "other version"])
def test_upload_refuses_it_and_uploads_nothing(tmp_path: Path, case: str) -> None:
    HOSTILE[case][0](tmp_path / NAME)
    with pytest.raises(UploadError, match=f"REFUSED: {NAME}: .*nothing was uploaded"):
        collect([tmp_path])


@pytest.mark.parametrize("case", ["HTML", "RECORD hash", "symlink"])
def test_wheel_uploader_saves_no_lie_and_leaves_no_part(tmp_path: Path, case: str) -> None:
    container = tmp_path / "container"
    container.mkdir()
    HOSTILE[case][0](container / NAME)
    entries = list(read_local(container).entries.values())
    wheelhouse = tmp_path / "wheelhouse"
    with pytest.raises(ChecksumError, match="is no wheel"):
        Fetcher(Http(), wheelhouse, jobs=1).fetch(entries)
    assert list(wheelhouse.iterdir()) == []
