"""index.html and history.html as a person sees them: headless Chromium (Debian's `chromium`)
on pages served from 127.0.0.1 (a screenshot and the DOM), and Swift's staticweb."""

from __future__ import annotations

import shutil
import struct
import subprocess
import sys
import tempfile
import zlib
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pytest

from multibuild.publish.containers import open_container
from multibuild.publish.upload import upload_to_container as upload
from multibuild.publish.wheelhouse import collect
from tests.servers.common import LOOPBACK, free_port, stop_process, wait_for_port
from tests.servers.wheelhouse import make_build

EVIL = '<script>alert("x")</script>&'


GREEN = (0x1A, 0x7F, 0x37)


RED = (0xCF, 0x22, 0x2E)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


needs_chromium = pytest.mark.skipif(CHROMIUM is None, reason="Debian's chromium is not installed")


def png_pixels(path: Path) -> tuple[int, int, list[bytes]]:
    """Width, height and rows of RGB(A) pixels of a PNG Chromium wrote (8-bit, no interlace)."""
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, idat = 8, b""
    width = height = channels = 0
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        if kind == b"IHDR":
            width, height, depth, color = struct.unpack(">IIBB", body[:10])
            assert depth == 8
            channels = {2: 3, 6: 4}[color]
        elif kind == b"IDAT":
            idat += body
        pos += 12 + length
    raw = zlib.decompress(idat)
    stride = width * channels
    rows: list[bytes] = []
    prev = bytearray(stride)
    for y in range(height):
        start = y * (stride + 1)
        row_filter, line = raw[start], bytearray(raw[start + 1 : start + 1 + stride])
        for i in range(stride):
            a = line[i - channels] if i >= channels else 0
            b = prev[i]
            c = prev[i - channels] if i >= channels else 0
            if row_filter == 1:
                line[i] = (line[i] + a) & 0xFF
            elif row_filter == 2:
                line[i] = (line[i] + b) & 0xFF
            elif row_filter == 3:
                line[i] = (line[i] + (a + b) // 2) & 0xFF
            elif row_filter == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                pred = a if pa <= pb and pa <= pc else b if pb <= pc else c
                line[i] = (line[i] + pred) & 0xFF
        rows.append(bytes(line))
        prev = line
    return width, height, [bytes(r) for r in rows]


def colours(path: Path) -> tuple[int, int, set[tuple[int, int, int]]]:
    width, height, rows = png_pixels(path)
    channels = len(rows[0]) // width
    seen = set()
    for row in rows:
        for x in range(0, len(row), channels):
            seen.add((row[x], row[x + 1], row[x + 2]))
    return width, height, seen


def near(
    colour: tuple[int, int, int], seen: set[tuple[int, int, int]], tolerance: int = 40
) -> bool:
    return any(sum(abs(a - b) for a, b in zip(colour, s, strict=True)) <= tolerance for s in seen)


def chromium(url: str, *, screenshot: Path | None = None) -> str:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        argv = [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            f"--user-data-dir={profile}",
            "--window-size=1400,900",
            "--hide-scrollbars",
        ]
        argv += [f"--screenshot={screenshot}"] if screenshot else ["--dump-dom"]
        done = subprocess.run(
            [*argv, url], capture_output=True, text=True, timeout=120, check=False
        )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


@pytest.fixture
def served_container(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any], dict[str, Any]]]:
    """A local container with two builds (one failed), served over HTTP on 127.0.0.1."""
    root = tmp_path / "container"
    container = open_container(str(root), base_dir=tmp_path, environ={})
    good = make_build(tmp_path / "h1", pythons=("3.11", "3.12"), ref=EVIL)
    bad = make_build(
        tmp_path / "h2",
        platform="macos",
        plat="arm64",
        status="failed",
        started=datetime(2026, 11, 24, 1, tzinfo=timezone.utc),
    )
    for house, event in ((tmp_path / "h1", "push"), (tmp_path / "h2", "cron")):
        upload(
            container,
            collect([house]),
            channel="pre-release",
            ci={"provider": "github", "event": event, "branch": "main", "nightly": event == "cron"},
            title="pkg pre-release",
            echo=lambda _: None,
        )
    port = free_port()
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "http.server",
            str(port),
            "--bind",
            LOOPBACK,
            "--directory",
            str(root),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        wait_for_port(port, 20, server)
        yield f"http://{LOOPBACK}:{port}/", good, bad
    finally:
        stop_process(server)


@needs_chromium
def test_index_page_in_chromium(served_container: Any, tmp_path: Path) -> None:
    base, good, bad = served_container
    dom = chromium(base + "index.html")
    wheels = [w for r in (good, bad) for b in r["builds"] for w in b["wheels"]]
    for wheel in wheels:
        assert f'href="{wheel["name"]}#sha256={wheel["sha256"]}"' in dom
        assert f'<td class="sha256">{wheel["sha256"]}</td>' in dom
    assert dom.count('<tr class="item">') == len(wheels)
    shot = tmp_path / "index.png"
    chromium(base + "index.html", screenshot=shot)
    width, height, seen = colours(shot)
    assert (width, height) == (1400, 900)
    assert len(seen) > 20  # text, not a blank page
    assert near((0x22, 0x22, 0x22), seen)  # body text colour
    assert near((0xF0, 0xF0, 0xF0), seen, 6)  # the table heading


@needs_chromium
def test_history_page_in_chromium(served_container: Any, tmp_path: Path) -> None:
    base, good, bad = served_container
    dom = chromium(base + "history.html")
    assert dom.count('<tr class="build success"') == 2
    assert dom.count('<tr class="build failed"') == 1
    assert "<script>alert" not in dom  # the evil ref stayed text
    assert f'href="builds/{good["build_id"]}.log"' in dom
    assert f'href="builds/{bad["build_id"]}.json"' in dom
    assert "cron (nightly)" in dom
    assert dom.index(bad["build_id"]) < dom.index(good["build_id"])  # newest first
    shot = tmp_path / "history.png"
    chromium(base + "history.html", screenshot=shot)
    _, _, seen = colours(shot)
    assert near(GREEN, seen), "no green 'success' on the page"
    assert near(RED, seen), "no red 'failed' on the page"


@needs_chromium
@pytest.mark.servers
def test_pages_served_by_swift_staticweb(
    tmp_path: Path, swift_server: Any, container_name: str
) -> None:
    """The same pages as anyone sees them: anonymous, from the public Swift container."""
    container = open_container(
        f"swift://{container_name}", base_dir=tmp_path, environ=swift_server.env()
    )
    make_build(tmp_path / "h")
    upload(
        container,
        collect([tmp_path / "h"]),
        channel="pre-release",
        ci={},
        title="pkg pre-release",
        echo=lambda _: None,
    )
    root_url = container.public_url()  # staticweb serves index.html for the container
    dom = chromium(root_url)
    assert "pkg pre-release" in dom
    assert dom.count('<tr class="item">') == 1
    shot = tmp_path / "swift-index.png"
    chromium(root_url, screenshot=shot)
    _, _, seen = colours(shot)
    assert len(seen) > 20
    container.close()
