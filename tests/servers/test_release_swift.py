"""The release tools against a real Swift on 127.0.0.1 (tests/servers/swift.py): a container
as `python -m multibuild upload` leaves it, read through Swift's JSON and plain-text listings
(paginated), staticweb's HTML listing and the container's own index.html; then downloaded."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from swiftclient.client import Connection

from multibuild.cli import main
from multibuild.publish.containers import open_container
from multibuild.publish.upload import upload_to_container as upload
from multibuild.publish.wheelhouse import collect
from multibuild.release.listing import Reader
from multibuild.util.http import Http
from tests.helpers import MATRIX, PYTHONS, REPO_ROOT, uploader
from tests.helpers import fill_release as fill
from tests.helpers import release_settings_file as settings_file
from tests.servers.swift import ACCOUNT, KEY, USER
from tests.servers.wheelhouse import make_build

pytestmark = pytest.mark.servers


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass
class SwiftRelease:
    url: str  # the container's public URL
    house: Path  # the wheels, records and logs uploaded
    swift_url: str  # swift://CONTAINER
    env: dict[str, str]  # the credentials


@pytest.fixture
def swift_release(tmp_path: Path, swift_server: Any, container_name: str) -> SwiftRelease:
    """A release container filled by the upload command's code: wheels at the top, records
    under builds/, index.html; publicly readable, staticweb on. (public URL, local wheels)"""
    house = tmp_path / "house"
    fill(house)
    container = open_container(
        f"swift://{container_name}", base_dir=tmp_path, environ=swift_server.env()
    )
    try:
        container.ensure()
        upload(container, collect([house]), channel="release", ci={}, title="scipy release",
               echo=lambda _: None)  # fmt: skip
        url = container.public_url("")
    finally:
        container.close()
    return SwiftRelease(url, house, f"swift://{container_name}", swift_server.env())


def connection(swift_server: Any) -> Connection:
    return Connection(authurl=swift_server.auth_url, user=f"{ACCOUNT}:{USER}", key=KEY)


def test_index_html_and_download(
    tmp_path: Path,
    swift_release: SwiftRelease,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    url, house = swift_release.url, swift_release.house
    http = Http()
    try:
        page = Reader(http, json=False).read(url, "scipy")  # staticweb serves index.html
    finally:
        http.close()
    assert page.kind == "html"
    for path in house.glob("*.whl"):
        entry = page.by_basename()[path.name]
        assert entry.sha256 == sha256(path) and "link" in entry.sha256_source
    # An interrupted run left half a wheel: Swift honours Range, so the rest is fetched.
    first = sorted(house.glob("*.whl"))[0]
    (tmp_path / "wh" / ".partial").mkdir(parents=True)
    (tmp_path / "wh" / ".partial" / (first.name + ".part")).write_bytes(first.read_bytes()[:500])
    assert uploader(tmp_path, url, "-n") == 0
    assert "1 resumed" in capsys.readouterr().out
    for path in house.glob("*.whl"):
        assert sha256(tmp_path / "wh" / path.name) == sha256(path)
    settings = settings_file(tmp_path, release=url)
    assert main(tool="release-status", argv=["1.17.1", "--settings", str(settings)]) == 0
    assert "COMPLETE: 8/8" in capsys.readouterr().out
    # The container as settings.toml names it (swift://), credentials from the environment:
    # read through its public URL.
    for key, value in swift_release.env.items():
        monkeypatch.setenv(key, value)
    settings = settings_file(tmp_path, release=swift_release.swift_url)
    assert main(tool="release-status", argv=["1.17.1", "--settings", str(settings)]) == 0
    assert f"in {swift_release.swift_url} (html)" in capsys.readouterr().out


def test_json_text_and_staticweb_listings(
    tmp_path: Path, swift_server: Any, container_name: str
) -> None:
    """Containers without index.html: Swift's JSON and plain-text listings (public, no
    staticweb; paginated) and staticweb's generated HTML listing (td.colname)."""
    house = tmp_path / "house"
    fill(house)
    conn = connection(swift_server)
    plain, web = f"{container_name}-txt", f"{container_name}-web"
    conn.put_container(plain, headers={"X-Container-Read": ".r:*,.rlistings"})
    conn.put_container(
        web,
        headers={"X-Container-Read": ".r:*,.rlistings", "X-Container-Meta-Web-Listings": "true"},
    )
    for path in sorted(house.iterdir()):
        for name in (plain, web):
            conn.put_object(name, path.name, path.read_bytes())
    storage = conn.get_auth()[0]
    conn.close()
    http = Http()
    try:
        json_listing = Reader(http, page_size=3).read(f"{storage}/{plain}", "scipy")
        text = Reader(http, page_size=4, json=False).read(f"{storage}/{plain}", "scipy")
        html = Reader(http).read(f"{storage}/{web}/", "scipy")
    finally:
        http.close()
    assert json_listing.kind == "swift-json"
    assert text.kind == "swift-text" and html.kind == "html"
    for listing in (json_listing, text, html):
        names = sorted(
            e.basename
            for e in listing.entries.values()
            if e.name.endswith(".whl") and "/" not in e.name
        )
        assert names == sorted(p.name for p in house.glob("*.whl"))
        # The records at the top of the container give every sha256.
        for name in names:
            entry = listing.by_basename()[name]
            assert entry.sha256 == sha256(house / name), listing.kind
            assert entry.sha256_source.startswith("record")
    for entry in json_listing.entries.values():  # JSON also gives sizes and md5s
        path = house / entry.name
        assert entry.size == path.stat().st_size
        assert entry.md5 == hashlib.md5(path.read_bytes()).hexdigest()
    assert uploader(tmp_path, f"{storage}/{web}/", "-n") == 0
    assert len(list((tmp_path / "wh").glob("*.whl"))) == 8


def test_s3_listing_paginated(tmp_path: Path, public_seaweedfs: Any, container_name: str) -> None:
    """An S3 bucket read anonymously: `ListBucketResult` XML in pages (marker), checksums from
    the records, ETags as md5s; then downloaded."""
    import boto3

    house = tmp_path / "house"
    fill(house)
    env = public_seaweedfs.s3_env()
    client = boto3.client(
        "s3",
        endpoint_url=env["AWS_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name="us-east-1",
    )
    client.create_bucket(Bucket=container_name)
    for path in sorted(house.iterdir()):
        client.put_object(Bucket=container_name, Key=path.name, Body=path.read_bytes())
    url = f"{public_seaweedfs.endpoint}/{container_name}/"
    http = Http()
    try:
        listing = Reader(http, page_size=3).read(url, "scipy")
    finally:
        http.close()
    assert listing.kind == "s3-xml"
    assert sorted(listing.entries) == sorted(p.name for p in house.iterdir())
    for entry in listing.entries.values():
        path = house / entry.name
        assert entry.size == path.stat().st_size
        assert entry.md5 == hashlib.md5(path.read_bytes()).hexdigest()
        if path.suffix == ".whl":
            assert entry.sha256 == sha256(path)
    assert uploader(tmp_path, url, "-n") == 0
    for path in house.glob("*.whl"):
        assert sha256(tmp_path / "wh" / path.name) == sha256(path)


def test_interrupted_download_resumes(
    tmp_path: Path, swift_server: Any, container_name: str, shaping_proxy: Any
) -> None:
    """Ctrl-C in the middle of the downloads (a slow link: Swift behind a loopback relay that
    moves 16 KiB per 20 ms round trip), then a rerun: the .part files are resumed with Range
    requests and every wheel checks out."""
    house = tmp_path / "house"
    for platform, plat in MATRIX:
        make_build(house, name="scipy", version="1.17.1", platform=platform, plat=plat,
                   pythons=PYTHONS, payload=os.urandom(150_000).hex())  # fmt: skip
    conn = connection(swift_server)
    conn.put_container(container_name, headers={"X-Container-Read": ".r:*,.rlistings"})
    for path in sorted(house.iterdir()):
        conn.put_object(container_name, path.name, path.read_bytes())
    storage = conn.get_auth()[0]
    conn.close()
    path = urlsplit(storage).path
    # The relay holds every response once 200 KB of wheels went through: the interrupt comes
    # in the middle of the downloads whatever the machine's speed.
    proxy = shaping_proxy(swift_server.proxy_port, 0.02, 16 * 1024, hold_after=200_000)
    settings = settings_file(tmp_path)
    script = REPO_ROOT / "scripts" / "wheel-uploader"
    argv = [sys.executable, str(script), "-w", str(tmp_path / "wh"), "-n", "-j", "2"]
    argv += ["--settings", str(settings), "scipy", "1.17.1"]
    slow = f"{proxy.url.rstrip('/')}{path}/{container_name}/"
    # A shell without job control starts `cmd &` with SIGINT ignored, and an ignored signal
    # stays ignored across exec: the Ctrl-C below would never reach the tool when this suite
    # runs in the background. A handler here is reset to the default by exec.
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(
            [*argv, "-u", slow], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
        )
    finally:
        signal.signal(signal.SIGINT, previous)
    with proc:
        assert proxy.holding.wait(60), "no wheel download started"
        proc.send_signal(signal.SIGINT)
        time.sleep(0.2)  # the interrupt lands first; then the held downloads see it
        proxy.release()
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 130, out
    assert "interrupted (a rerun resumes)" in out
    # Issue 23 item 4: partial downloads stay out of the wheelhouse, which holds whole wheels.
    assert not [p.name for p in (tmp_path / "wh").iterdir() if p.name.endswith(".part")]
    parts = [p for p in (tmp_path / "wh" / ".partial").glob("*.part") if p.stat().st_size > 0]
    assert parts
    done = subprocess.run(
        [*argv, "-u", f"{storage}/{container_name}/"], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"{len(parts)} resumed" in done.stdout
    for wheel in house.glob("*.whl"):
        assert sha256(tmp_path / "wh" / wheel.name) == sha256(wheel)
    assert not (tmp_path / "wh" / ".partial").exists()
    assert not list((tmp_path / "wh").glob("*.part"))
