"""Marker names, what a wheelhouse holds, and which values are secrets (and hidden)."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from multibuild.errors import UploadError
from multibuild.publish.containers.base import digest_file
from multibuild.publish.index import marker_name
from multibuild.publish.wheelhouse import collect
from multibuild.release.pypi import _candidates
from tests.servers.wheelhouse import make_build


def test_marker_names(tmp_path: Path) -> None:
    wheel = tmp_path / "a-1-py3-none-any.whl"
    wheel.write_bytes(b"abc")
    digest = digest_file(wheel)
    assert marker_name(wheel.name, digest, '"0cc1-2"') == (
        f".verified/{wheel.name}/3-{digest.sha256}-0cc1-2"
    )


def test_secret_values_and_redaction(tmp_path: Path) -> None:
    from multibuild.util.secrets import Redactor, secret_values

    key_file = tmp_path / "key"
    key_file.write_text("from-a-file-secret\n")
    env = {
        "ST_KEY": "swift-key-123",
        "AWS_SECRET_ACCESS_KEY_FILE": str(key_file),
        "GITHUB_TOKEN": "ghp_abcdefgh",
        "HOME": "/root",
        "SHORT_KEY": "abc",  # too short to hide safely
    }
    secrets = secret_values(env)
    assert set(secrets) == {"swift-key-123", "from-a-file-secret", "ghp_abcdefgh"}
    text = "key=swift-key-123 file=from-a-file-secret home=/root abc"
    assert Redactor(secrets)(text) == "key=*** file=*** home=/root abc"


def test_collect(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    record = make_build(house, pythons=("3.11", "3.12"))
    (house / "notes.json").write_text("{}")
    found = collect([house])
    assert len(found.wheels) == 2
    assert [r.build_id for _, r in found.records] == [record["build_id"]]
    assert [p.name for p in found.logs] == [f"{record['build_id']}.log"]
    (tmp_path / "empty").mkdir()
    with pytest.raises(UploadError, match="nothing to upload"):
        collect([tmp_path / "empty"])


def test_only_wheels_go_in(tmp_path: Path) -> None:
    """A wheel is a valid wheel file name of a readable zip with its WHEEL and RECORD; and
    a record's build id is a plain name. Anything else is refused before anything is sent."""
    from multibuild.publish.wheelhouse import build_id_problem, wheel_problem
    from tests.servers.wheelhouse import make_wheel

    good = make_wheel(tmp_path / "good", "pkg", "1.0", "py3-none-any")
    assert wheel_problem(good) is None
    bad = tmp_path / "bad"
    bad.mkdir()
    cases = {
        "notawheel.whl": good.read_bytes(),
        "a-b-c.whl": good.read_bytes(),
        "pkg-1.0-py3-none-any<script>.whl": good.read_bytes(),
        'p"kg-1.0-py3-none-any.whl': good.read_bytes(),
        "pkg-notaversion-py3-none-any.whl": good.read_bytes(),
        "pkg-2.0-py3-none-any.whl": b"\x00random bytes, not a zip" * 100,
        "other-1.0-py3-none-any.whl": good.read_bytes(),  # another project's dist-info
    }
    for name, content in cases.items():
        (bad / name).write_bytes(content)
        assert wheel_problem(bad / name) is not None, name
    no_record = bad / "pkg-3.0-py3-none-any.whl"
    with zipfile.ZipFile(no_record, "w") as archive:
        archive.writestr("pkg-3.0.dist-info/WHEEL", "Wheel-Version: 1.0\n")
    assert wheel_problem(no_record) == "no pkg-3.0.dist-info/RECORD"
    with pytest.raises(UploadError, match=r"REFUSED: .*notawheel\.whl.*nothing was uploaded"):
        collect([good.parent, bad])
    assert build_id_problem("pkg-1.0-linux_x86_64-20261123T235200Z") is None
    for build_id in ("../x", "a/b", "..", ".hidden", "a b", "x..y"):
        assert build_id_problem(build_id) is not None, build_id
    house = tmp_path / "house"
    record = make_build(house)
    data = (house / f"{record['build_id']}.json").read_text()
    (house / f"{record['build_id']}.json").write_text(
        data.replace(f'"build_id": "{record["build_id"]}"', '"build_id": "../../evil"')
    )
    with pytest.raises(UploadError, match=r"build id '\.\./\.\./evil'"):
        collect([house])


def test_the_index_lists_a_wheel_only_with_the_marker_of_its_current_object() -> None:
    """The marker names the object's size and ETag: a replaced wheel (same size, same second)
    is never listed with the old sha256; no clock is compared."""
    from datetime import datetime, timezone

    from multibuild.publish.containers.base import FileDigest, ObjectInfo
    from multibuild.publish.index import index_entries

    when = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)
    old, new = FileDigest(100, "a" * 64, ""), FileDigest(100, "f" * 64, "")
    wheel = "pkg-1.0-py3-none-any.whl"
    markers = [
        ObjectInfo(marker_name(wheel, old, "etag-old"), 9, when),
        ObjectInfo(marker_name(wheel, new, "etag-new"), 9, when),
    ]
    replaced = ObjectInfo(wheel, 100, when, etag="etag-new")
    assert [(e.name, e.sha256) for e in index_entries([replaced, *markers])] == [(wheel, "f" * 64)]
    # The object being replaced (a new ETag, no marker yet): not listed at all.
    assert index_entries([ObjectInfo(wheel, 100, when, etag="etag-newer"), *markers]) == []
    # A marker of the old form (no ETag) lists nothing until it is migrated.
    legacy = ObjectInfo(f".verified/{wheel}/100-{'a' * 64}", 9, when)
    assert index_entries([ObjectInfo(wheel, 100, when, etag="etag-old"), legacy]) == []


def test_a_private_upload_url_never_sends_the_tool_to_another_index() -> None:
    """wheel-uploader --repository-url without --index-url (issue 23, item 11): the simple
    index is looked for on the upload URL's host, and pip's configured index only when the
    upload host is that index's `upload.` host."""
    elsewhere = {**os.environ, "PIP_INDEX_URL": "https://index.example.org/simple/"}
    assert _candidates("http://127.0.0.1:9/legacy/", elsewhere) == ["http://127.0.0.1:9/simple/"]
    assert _candidates("http://127.0.0.1:9/devpi/dev/", elsewhere) == [
        "http://127.0.0.1:9/devpi/dev/+simple/",
        "http://127.0.0.1:9/devpi/dev/simple/",
        "http://127.0.0.1:9/simple/",
    ]
    assert _candidates("https://upload.index.example.org/legacy/", elsewhere) == [
        "https://index.example.org/simple/",
        "https://upload.index.example.org/simple/",
    ]
