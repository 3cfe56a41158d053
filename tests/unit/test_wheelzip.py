"""Wheels normalised to depend only on their members' names and contents."""

from __future__ import annotations

import base64
import hashlib
import zipfile
from pathlib import Path

import pytest

from multibuild.util.wheelzip import WheelZipError, normalize_wheel

DIST = "pkg-1.0.dist-info"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def make(
    path: Path, files: dict[str, bytes], *, when: tuple[int, ...], modes: dict[str, int]
) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    record = "".join(f"{n},sha256={b64(d)},{len(d)}\n" for n, d in files.items())
    record += f"{DIST}/RECORD,,\n"
    with zipfile.ZipFile(path, "w") as zf:
        for name, data in [*files.items(), (f"{DIST}/RECORD", record.encode())]:
            info = zipfile.ZipInfo(name, date_time=when)  # type: ignore[arg-type]
            info.external_attr = (0o100000 | modes.get(name, 0o664)) << 16
            zf.writestr(info, data)
    return path


FILES = {
    f"{DIST}/WHEEL": b"Wheel-Version: 1.0\n",
    "pkg/__init__.py": b"x = 1\n",
    f"{DIST}/METADATA": b"Name: pkg\nVersion: 1.0\n",
    "pkg/tool": b"#!/bin/sh\n",
}


def test_two_wheels_of_the_same_contents_become_one(tmp_path: Path) -> None:
    a = make(tmp_path / "a" / "pkg-1.0-py3-none-any.whl", FILES, when=(2026, 1, 1, 0, 0, 0),
             modes={"pkg/tool": 0o775})  # fmt: skip
    b = make(tmp_path / "b" / "pkg-1.0-py3-none-any.whl", dict(reversed(FILES.items())),
             when=(2026, 11, 30, 8, 0, 0), modes={"pkg/tool": 0o700})  # fmt: skip
    assert a.read_bytes() != b.read_bytes()
    for wheel in (a, b):
        normalize_wheel(wheel, 1_700_000_000)
    assert a.read_bytes() == b.read_bytes()
    with zipfile.ZipFile(a) as zf:
        names = zf.namelist()
        assert names[0] == "pkg/__init__.py" and names[-1] == f"{DIST}/RECORD"
        assert {i.date_time for i in zf.infolist()} == {(2023, 11, 14, 22, 13, 20)}
        assert zf.getinfo("pkg/tool").external_attr >> 16 & 0o777 == 0o755
        assert zf.getinfo("pkg/__init__.py").external_attr >> 16 & 0o777 == 0o644
    normalize_wheel(a, 0)  # before 1980: the earliest date a zip holds
    with zipfile.ZipFile(a) as zf:
        assert zf.infolist()[0].date_time == (1980, 1, 1, 0, 0, 0)


def test_a_wheel_whose_record_lies_is_refused(tmp_path: Path) -> None:
    wheel = make(tmp_path / "pkg-1.0-py3-none-any.whl", FILES, when=(2026, 1, 1, 0, 0, 0), modes={})
    with zipfile.ZipFile(wheel, "a") as zf:
        zf.writestr("pkg/extra.py", b"not in RECORD\n")
    with pytest.raises(WheelZipError, match=r"pkg/extra\.py is not in its RECORD"):
        normalize_wheel(wheel, 0)
