"""Hostile JSON and a full wheelhouse (issue 23, item 7): NaN, Infinity, out-of-range numbers
and deep nesting in a record or a listing are clear errors (never OverflowError or
RecursionError, never a record silently left out), and a wheelhouse the record cannot be
written to leaves the build's own error in charge."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from multibuild.engine.pipeline import recorded_build
from multibuild.engine.record import BuildRecord
from multibuild.errors import BuildError, UploadError
from multibuild.log import Logger
from multibuild.platforms.linux import LinuxPlatform
from multibuild.publish.wheelhouse import collect
from multibuild.release.listing import read_local
from multibuild.util import jsontext

WHEEL = "x-1.0-cp311-cp311-linux_x86_64.whl"
HOSTILE = {
    "NaN": '{"schema": 1, "build_id": "b", "duration_s": NaN}',
    "Infinity": '{"schema": 1, "build_id": "b", "exit_code": Infinity}',
    "-Infinity": '{"schema": 1, "build_id": "b", "exit_code": -Infinity}',
    "1e400": '{"schema": 1, "build_id": "b", "exit_code": 1e400}',
    "nesting": "[" * 200_000 + "]" * 200_000,
}


def record_with_wheel_size(size: str) -> str:
    wheel = f'{{"name": "{WHEEL}", "size": {size}, "sha256": "{"a" * 64}"}}'
    builds = f'[{{"python": "3.11", "status": "success", "wheels": [{wheel}]}}]'
    return f'{{"schema": 1, "build_id": "b1", "status": "success", "builds": {builds}}}'


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_hostile_json_is_a_value_error(text: str) -> None:
    with pytest.raises(ValueError, match=r"not a JSON number|out of a float|nested deeper"):
        jsontext.loads(text)


def test_ordinary_json_reads_as_the_standard_library_reads_it() -> None:
    text = '{"a": [1, 2.5, "[[{{", {"b": null, "c": "\\"]"}], "d": -0.0}'
    assert jsontext.loads(text) == json.loads(text)
    assert jsontext.loads(("[" * 64) + ("]" * 64)) == json.loads(("[" * 64) + ("]" * 64))


@pytest.mark.parametrize("text", HOSTILE.values(), ids=HOSTILE.keys())
def test_upload_says_which_record_is_not_json(tmp_path: Path, text: str) -> None:
    (tmp_path / WHEEL).write_bytes(b"")
    (tmp_path / "b.json").write_text(text)
    with pytest.raises(UploadError, match=r"b\.json is not valid JSON .*nothing was uploaded"):
        collect([tmp_path])


@pytest.mark.parametrize("size", ["Infinity", "1e400", "NaN"])
def test_a_listings_record_with_an_impossible_size_is_no_traceback(
    tmp_path: Path, size: str
) -> None:
    (tmp_path / WHEEL).write_bytes(b"wheel")
    (tmp_path / "b1.json").write_text(record_with_wheel_size(size))
    listing = read_local(tmp_path)
    entry = listing.by_basename()[WHEEL]
    assert entry.size == 5  # the file's own size; the record's impossible one is not taken
    (tmp_path / "b1.json").write_text(record_with_wheel_size("5"))
    assert read_local(tmp_path).by_basename()[WHEEL].size == 5


def build_into(wheelhouse: Path, tmp_path: Path, *, fail: bool) -> None:
    record = BuildRecord(project="x", platform="linux", plat="x86_64")
    with recorded_build(
        record,
        logger=Logger(stream=io.StringIO()),
        log=tmp_path / "build.log",
        wheelhouse=wheelhouse,
        platform=LinuxPlatform(),
        tools={},
    ):
        if fail:
            raise BuildError("the compiler failed")


def test_a_failed_build_whose_record_cannot_be_written_keeps_its_own_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    wheelhouse.write_text("a file where the wheelhouse should be")
    with pytest.raises(BuildError, match="the compiler failed"):
        build_into(wheelhouse, tmp_path, fail=True)
    assert "could not be written to" in capsys.readouterr().err
    with pytest.raises(BuildError, match="build record and log could not be written"):
        build_into(wheelhouse, tmp_path, fail=False)
