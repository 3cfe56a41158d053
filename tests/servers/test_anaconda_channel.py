"""release-status and wheel-uploader reading an anaconda.org channel (anaconda://ORG) through
its PEP 503 simple index. anaconda.org cannot run here: a local http.server on 127.0.0.1 stands
in for it, laid out as anaconda.org serves a channel (ORG/simple/PROJECT/ linking the files
elsewhere on the same site, each with its #sha256=)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from multibuild.cli import main
from multibuild.errors import ReleaseError
from tests.helpers import fill_release, release_settings_file, uploader
from tests.servers.release import StaticServer

ORG = "multibuild-wheels-staging"
CHANNEL = f"anaconda://{ORG}"


def stand_in(root: Path, skip: tuple[str, str] | None = None) -> list[Path]:
    files = root / ORG / "files"
    fill_release(files, skip=skip)
    wheels = sorted(files.glob("*.whl"))
    page = root / ORG / "simple" / "scipy"
    page.mkdir(parents=True)
    links = "".join(
        f'<a href="../../files/{w.name}#sha256={hashlib.sha256(w.read_bytes()).hexdigest()}">'
        f"{w.name}</a><br>\n"
        for w in wheels
    )
    (page / "index.html").write_text(f"<html><body>\n{links}</body></html>\n")
    return wheels


def settings_for(tmp_path: Path, index: str) -> Path:
    path = release_settings_file(tmp_path, release="")
    path.write_text(
        path.read_text() + f'release_indexes = ["{CHANNEL}"]\nanaconda_index = "{index}"\n'
    )
    return path


def test_release_status_reads_the_staging_channel(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in(static_server.root)
    settings = settings_for(tmp_path, static_server.url + "{org}/simple")
    # No -u: the release channel of settings.toml ([upload] release_indexes) is read.
    assert main(tool="release-status", argv=["1.17.1", "--settings", str(settings)]) == 0
    out = capsys.readouterr().out
    assert f"scipy 1.17.1 in {CHANNEL}" in out and "pep503" in out


def test_release_status_sees_a_missing_cell(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    stand_in(static_server.root, skip=("windows", "AMD64"))
    settings = settings_for(tmp_path, static_server.url + "{org}/simple")
    assert (
        main(tool="release-status", argv=["1.17.1", "--settings", str(settings)])
        == ReleaseError.return_code
    )
    assert "win_amd64" in capsys.readouterr().out


def test_wheel_uploader_fetches_and_checks_the_channel(
    tmp_path: Path, static_server: StaticServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    wheels = stand_in(static_server.root)
    monkeypatch.setenv("MB_ANACONDA_INDEX", static_server.url + "{org}/simple")
    assert uploader(tmp_path, CHANNEL, "-n") == 0
    fetched = sorted(p.name for p in (tmp_path / "wh").glob("*.whl"))
    assert fetched == [w.name for w in wheels] and len(fetched) == 8
    for wheel in wheels:
        assert (tmp_path / "wh" / wheel.name).read_bytes() == wheel.read_bytes()


def test_a_channel_without_its_index_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # Neither a simple-index template nor anaconda-client: a clear error, exit 2.
    import sys

    monkeypatch.delenv("MB_ANACONDA_INDEX", raising=False)
    monkeypatch.setitem(sys.modules, "binstar_client", None)
    settings = settings_for(tmp_path, "")
    assert main(tool="release-status", argv=["1.17.1", "--settings", str(settings)]) == 2
    err = capsys.readouterr().err
    assert "pip install anaconda-client" in err and "[upload] anaconda_index" in err


# Without a simple-index template: the channel through anaconda-client's API. The local server
# is a stand-in for anaconda.org's API (anaconda.org cannot run here): GET /package/ORG/scipy
# answers the package's JSON, its `files` giving each wheel's basename, size, md5, sha256 and
# download_url; MB_ANACONDA_API points the client at it.


def api_stand_in(root: Path, base: str, skip: tuple[str, str] | None = None) -> list[Path]:
    import json

    files = root / ORG / "files"
    fill_release(files, skip=skip)
    wheels = sorted(files.glob("*.whl"))
    entries = [
        {
            "basename": w.name,
            "size": w.stat().st_size,
            "md5": hashlib.md5(w.read_bytes()).hexdigest(),
            "sha256": hashlib.sha256(w.read_bytes()).hexdigest(),
            "download_url": f"{base}{ORG}/files/{w.name}",
        }
        for w in wheels
    ]
    page = root / "package" / ORG
    page.mkdir(parents=True)
    (page / "scipy").write_text(json.dumps({"name": "scipy", "files": entries}))
    return wheels


@pytest.fixture
def api_env(static_server: StaticServer, monkeypatch: pytest.MonkeyPatch) -> str:
    pytest.importorskip("binstar_client")
    monkeypatch.delenv("MB_ANACONDA_INDEX", raising=False)
    monkeypatch.setenv("MB_ANACONDA_API", static_server.url.rstrip("/"))
    return static_server.url


def test_release_status_reads_the_channel_through_anaconda_client(
    tmp_path: Path, static_server: StaticServer, api_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api_stand_in(static_server.root, api_env)
    settings = settings_for(tmp_path, "")
    assert main(tool="release-status", argv=["1.17.1", "--settings", str(settings)]) == 0
    assert f"scipy 1.17.1 in {CHANNEL}" in capsys.readouterr().out


def test_release_status_through_anaconda_client_sees_a_missing_cell(
    tmp_path: Path, static_server: StaticServer, api_env: str, capsys: pytest.CaptureFixture[str]
) -> None:
    api_stand_in(static_server.root, api_env, skip=("windows", "AMD64"))
    settings = settings_for(tmp_path, "")
    assert (
        main(tool="release-status", argv=["1.17.1", "--settings", str(settings)])
        == ReleaseError.return_code
    )
    assert "win_amd64" in capsys.readouterr().out


def test_wheel_uploader_fetches_through_anaconda_client(
    tmp_path: Path, static_server: StaticServer, api_env: str
) -> None:
    wheels = api_stand_in(static_server.root, api_env)
    assert uploader(tmp_path, CHANNEL, "-n") == 0
    fetched = sorted(p.name for p in (tmp_path / "wh").glob("*.whl"))
    assert fetched == [w.name for w in wheels] and len(fetched) == 8


def test_wheel_uploader_rejects_a_wrong_size_from_the_api(
    tmp_path: Path, static_server: StaticServer, api_env: str
) -> None:
    wheels = api_stand_in(static_server.root, api_env)
    wheels[0].write_bytes(wheels[0].read_bytes() + b"tampered")
    assert uploader(tmp_path, CHANNEL, "-n") != 0
