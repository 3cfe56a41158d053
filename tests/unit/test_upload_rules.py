"""Marker names, what a wheelhouse holds, and which values are secrets (and hidden)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multibuild.errors import UploadError
from multibuild.publish.containers.base import digest_file
from multibuild.publish.index import marker_name
from multibuild.publish.wheelhouse import collect
from tests.servers.wheelhouse import make_build


def test_marker_names(tmp_path: Path) -> None:
    wheel = tmp_path / "a-1-py3-none-any.whl"
    wheel.write_bytes(b"abc")
    digest = digest_file(wheel)
    assert marker_name(wheel.name, digest) == f".verified/{wheel.name}/3-{digest.sha256}"


def test_secret_values_and_redaction(tmp_path: Path) -> None:
    from multibuild.publish.containers.credentials import redact, secret_values

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
    assert redact(text, secrets) == "key=*** file=*** home=/root abc"


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
