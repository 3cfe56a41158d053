"""Every transient fault is retried, the index never lies, nothing leaks, nothing hangs: the
upload command through the fault proxy (tests/servers/faultproxy.py: resets, cut requests,
5xx, 429, stalls, answers cut after their headers or stalled at 20 % of their body, answers
dropped after the server did the request) on both object stores; a record that cannot be
read; segments and leftovers of killed uploads; servers that never end a page or ignore the
listing marker."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from multibuild.errors import ReleaseError, UploadError
from multibuild.publish.containers import open_container
from multibuild.publish.containers import s3 as s3_backend
from multibuild.publish.containers import swift as swift_backend
from multibuild.publish.containers.base import Container
from multibuild.publish.index import INDEX, index_entries
from multibuild.release.listing import Reader
from multibuild.util.http import Http, HttpError
from tests.helpers import (
    GITHUB_MAIN,
    REPO_ROOT,
    SMALL_SEGMENTS,
    index_names,
    segmented_swift,
    upload_settings,
)
from tests.helpers import run_upload as run_upload_command
from tests.servers.faultproxy import FAULTS, FaultProxyProcess
from tests.servers.hostile import hostile_server
from tests.servers.wheelhouse import make_build, make_wheel

pytestmark = pytest.mark.servers

# Quick retries for a proxy on loopback (the defaults are for real networks).
FAST = {
    "MB_UPLOAD_ATTEMPTS": "25",
    "MB_UPLOAD_BACKOFF": "0.02",
    "MB_UPLOAD_TIMEOUT": "1.5",
    "MB_UPLOAD_DEADLINE": "120",
}


def run_upload(
    tmp: Path, settings: Path, *paths: Path, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """The upload command as a GitHub push to main runs it, with `env` on top."""
    return run_upload_command(
        tmp, *map(str, paths), env={**GITHUB_MAIN, **env}, settings=settings, timeout=600
    )


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def orphan_segments(container: Container, segments: Container) -> list[str]:
    """Segments no manifest in `container` references."""
    live: set[str] = set()
    for obj in container.list():
        found = container._live_segments(container._key(obj.name))  # type: ignore[attr-defined]
        live |= found or set()
    return sorted(o.name for o in segments.list() if o.name not in live)


def wheelhouse(root: Path, count: int, big: int, payload: str = "") -> dict[str, str]:
    """`count` builds of one wheel each; `big` of them bigger (segmented, multipart)."""
    made = {}
    for i in range(count):
        size = (6 << 20) if i < big else 20_000 + 3_000 * i
        record = make_build(
            root, plat=f"x86_64_{i}", payload=payload + os.urandom(size // 2).hex(),
            started=datetime(2026, 11, 23, tzinfo=timezone.utc) + timedelta(minutes=i),
        )  # fmt: skip
        for build in record["builds"]:
            for wheel in build["wheels"]:
                made[wheel["name"]] = wheel["sha256"]
    return made


@pytest.mark.parametrize("kind", ["swift", "s3"])
def test_the_upload_command_lands_everything_through_every_fault(
    kind: str, tmp_path: Path, swift_server: Any, container_name: str
) -> None:
    """One run through 30 % faults of every kind: all land, each object's sha256 is its
    file's, the index lists exactly them, no segment is left over (Swift), history has the
    builds. (Swift's answers cut after their headers used to stop the upload.)"""
    proxy = FaultProxyProcess(tmp_path, swift_server.proxy_port, rate=0.3, stall_s=2.5, seed=13)
    try:
        if kind == "swift":
            env = swift_server.env(auth_url=f"{proxy.endpoint}/auth/v1.0")
            direct_env = swift_server.env()
            segment = {"MB_SEGMENT_SIZE": str(1 << 20)}
        else:
            env = swift_server.s3_env(endpoint=proxy.endpoint)
            direct_env = swift_server.s3_env()
            segment = {"MB_SEGMENT_SIZE": str(5 << 20)}
        house = tmp_path / "wh"
        expected = wheelhouse(house, 8, big=2)
        url = f"{kind}://{container_name}/nightly"
        done = run_upload(
            tmp_path, upload_settings(tmp_path, url), house, env={**env, **FAST, **segment}
        )
        assert done.returncode == 0, done.stdout + done.stderr
        counts = proxy.counts()
    finally:
        proxy.stop()
    assert set(FAULTS) <= set(counts), counts  # every kind of fault happened
    container = open_container(url, base_dir=tmp_path, environ=direct_env)
    try:
        for name, digest in expected.items():
            assert sha256(container.get_bytes(name)) == digest, name
        assert index_names(container.get_bytes(INDEX).decode()) == expected
        history = container.get_bytes("history.html").decode()
        assert history.count('<tr class="build success"') == len(expected)
        if kind == "swift":
            segments = open_container(
                f"swift://{container_name}_segments", base_dir=tmp_path, environ=direct_env
            )
            assert orphan_segments(container, segments) == []
            assert any(True for _ in segments.list())  # the big wheels are segmented
        else:  # no unfinished multipart upload (a start whose answer was lost makes one)
            client = container._client  # type: ignore[attr-defined]
            assert client.list_multipart_uploads(Bucket=container_name).get("Uploads", []) == []
    finally:
        container.close()
    print(f"{kind}: {counts}")


def test_history_fails_rather_than_lose_a_build(
    tmp_path: Path, swift_server: Any, container_name: str
) -> None:
    """A record no read can get (a server failing that one object for good): the upload fails
    and names it; history.html is not rewritten without that build."""
    url = f"swift://{container_name}"
    settings = upload_settings(tmp_path, url)
    first = make_build(tmp_path / "first", started=datetime(2026, 11, 1, tzinfo=timezone.utc))
    done = run_upload(tmp_path, settings, tmp_path / "first", env={**swift_server.env(), **FAST})
    assert done.returncode == 0, done.stderr
    container = open_container(url, base_dir=tmp_path, environ=swift_server.env())
    before = container.get_bytes("history.html")
    assert first["build_id"].encode() in before
    proxy = FaultProxyProcess(
        tmp_path, swift_server.proxy_port, rate=0.0, fail_path=f"builds/{first['build_id']}.json"
    )
    try:
        env = {
            **swift_server.env(auth_url=f"{proxy.endpoint}/auth/v1.0"),
            **FAST,
            "MB_UPLOAD_DEADLINE": "5",
        }
        make_build(tmp_path / "second", plat="aarch64")
        done = run_upload(tmp_path, settings, tmp_path / "second", env=env)
    finally:
        proxy.stop()
    assert done.returncode == 10, done.stdout + done.stderr
    assert f"download of builds/{first['build_id']}.json" in done.stderr
    assert "Traceback" not in done.stderr
    assert container.get_bytes("history.html") == before  # no page without the first build
    container.close()


def test_segments_and_leftovers_of_killed_uploads_are_cleaned(
    tmp_path: Path, swift_server: Any, container_name: str
) -> None:
    """A segmented wheel replaced by a small one, and an upload killed among its segments
    followed by a different build: no segment stays that no manifest references; the
    segments of a live manifest are never touched."""
    env = {**swift_server.env(), "MB_SEGMENT_SIZE": str(SMALL_SEGMENTS)}
    url = f"swift://{container_name}"
    settings = upload_settings(tmp_path, url)
    container = open_container(url, base_dir=tmp_path, environ=swift_server.env())
    segments = open_container(
        f"swift://{container_name}_segments", base_dir=tmp_path, environ=swift_server.env()
    )
    # 1. A nightly's segmented wheel, then the next nightly's small one under the same name.
    big = tmp_path / "big"
    make_build(big, payload=os.urandom(1 << 20).hex())
    assert run_upload(tmp_path, settings, big, env=env).returncode == 0
    assert any(True for _ in segments.list())
    small = tmp_path / "small"
    make_build(small, started=datetime(2026, 11, 24, tzinfo=timezone.utc))
    done = run_upload(tmp_path, settings, small, env=env)
    assert done.returncode == 0, done.stderr
    assert "1 replaced" in done.stdout
    assert list(segments.list()) == []
    # 2. A segmented upload killed before its manifest; then another build's upload.
    killed = tmp_path / "killed"
    make_wheel(killed, "killed", "1.0", "py3-none-any", payload=os.urandom(8 << 20).hex())
    live = tmp_path / "live"
    make_wheel(live, "live", "1.0", "py3-none-any", payload=os.urandom(1 << 20).hex())
    assert run_upload(tmp_path, settings, live, env=env).returncode == 0
    live_segments = {o.name for o in segments.list()}
    assert live_segments
    proc = subprocess.Popen(
        [sys.executable, "-m", "multibuild", "upload", "--settings", str(settings), str(killed)],
        cwd=tmp_path,
        env={**os.environ, **GITHUB_MAIN, **env, "PYTHONPATH": str(REPO_ROOT)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if len({o.name for o in segments.list()} - live_segments) >= 3:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    assert container.head("killed-1.0-py3-none-any.whl") is None
    assert {o.name for o in segments.list()} - live_segments  # the killed upload's
    other = tmp_path / "other"
    make_build(other, plat="aarch64")
    time.sleep(1.1)  # ages are by the store's Date header, in whole seconds
    done = run_upload(tmp_path, settings, other, env={**env, "MB_ORPHAN_GRACE": "0"})
    assert done.returncode == 0, done.stderr
    assert "left by an earlier, interrupted upload" in done.stdout
    assert {o.name for o in segments.list()} == live_segments
    assert orphan_segments(container, segments) == []
    assert sha256(container.get_bytes("live-1.0-py3-none-any.whl")) == sha256(
        next(live.glob("*.whl")).read_bytes()
    )
    container.close()
    segments.close()


def test_prune_cleans_what_killed_uploads_left_and_keeps_live_segments(
    tmp_path: Path, swift_server: Any, container_name: str
) -> None:
    env = swift_server.env()
    url = f"swift://{container_name}"
    container = segmented_swift(tmp_path, env, url)
    segments = open_container(f"swift://{container_name}_segments", base_dir=tmp_path,
                              environ=env)  # fmt: skip
    live = make_wheel(tmp_path / "l", "live", "1.0", "py3-none-any", payload="x" * 400_000)
    from multibuild.publish.containers.base import digest_file

    container.put_file(live.name, live, digest_file(live))
    kept = {o.name for o in segments.list()}
    # What a killed upload leaves: segments under a name with no manifest, and under a live
    # name, segments of another (unfinished) file.
    for name in ("gone-1.0-py3-none-any.whl/0123456789abcdef/600000/00000000",
                 f"{live.name}/fedcba9876543210/999/00000000"):  # fmt: skip
        segments.put_bytes(name, b"segment")
    time.sleep(1.1)  # ages are by the store's Date header, in whole seconds
    settings = upload_settings(tmp_path, url)
    base = [sys.executable, "-m", "multibuild", "prune", "--settings", str(settings)]
    run_env = {**os.environ, **env, "PYTHONPATH": str(REPO_ROOT)}
    dry = subprocess.run([*base, "--dry-run"], env={**run_env, "MB_ORPHAN_GRACE": "0"},
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.count("(left by an interrupted upload)") == 2, dry.stdout
    assert "gone-1.0" in dry.stdout
    young = subprocess.run(base, env=run_env, capture_output=True, text=True, check=False)
    assert young.returncode == 0 and "interrupted upload" not in young.stdout  # within grace
    done = subprocess.run(base, env={**run_env, "MB_ORPHAN_GRACE": "0"}, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert {o.name for o in segments.list()} == kept
    assert sha256(container.get_bytes(live.name)) == sha256(live.read_bytes())
    container.close()
    segments.close()


class TwoHoursAhead(datetime):
    """The clock of an uploader on another host, two hours ahead."""

    @classmethod
    def now(cls, tz: Any = None) -> TwoHoursAhead:
        real = datetime.now(tz) + timedelta(hours=2)
        return cls.fromtimestamp(real.timestamp(), tz)


def test_an_uploader_with_a_clock_ahead_keeps_others_in_flight_uploads(
    tmp_path: Path, swift_server: Any, seaweedfs_server: Any, container_name: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:  # fmt: skip
    """Issue 23 item 9: the sweep judges in-flight segments (Swift) and multipart uploads (S3)
    by the store's clock, so an uploader whose clock is 2 h ahead deletes none of them; once
    the store says they are older than the grace, they go."""
    env = swift_server.env()
    container = segmented_swift(tmp_path, env, f"swift://{container_name}")
    segments = open_container(f"swift://{container_name}_segments", base_dir=tmp_path,
                              environ=env)  # fmt: skip
    in_flight = "w-1.0-py3-none-any.whl/0123456789abcdef/600000/00000000"
    segments.ensure()
    segments.put_bytes(in_flight, b"segment")
    s3 = open_container(f"s3://{container_name}/pre", base_dir=tmp_path,
                        environ=seaweedfs_server.s3_env())  # fmt: skip
    assert isinstance(s3, s3_backend.S3Container)
    s3.ensure()
    s3._client.create_multipart_upload(Bucket=s3.bucket, Key=f"{s3.prefix}w-1.0-py3-none-any.whl")
    with monkeypatch.context() as ahead:
        ahead.setattr(swift_backend, "datetime", TwoHoursAhead)
        ahead.setattr(s3_backend, "datetime", TwoHoursAhead, raising=False)
        assert container.sweep(3600.0) == ()
        assert s3.sweep(3600.0) == ()
    assert [o.name for o in segments.list()] == [in_flight]
    time.sleep(2.1)  # the store's Date header counts whole seconds
    assert container.sweep(0.0) == (f"{container_name}_segments/{in_flight}",)
    assert s3.sweep(0.0) != ()
    for made in (container, segments, s3):
        made.close()


def test_listings_that_do_not_advance_stop(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A server that ignores Swift's marker (or repeats S3's continuation token) is asked
    twice, not a thousand times, and the error says why."""
    monkeypatch.setattr(swift_backend, "PAGE", 3)
    with hostile_server() as (base, seen):
        swift = open_container(
            "swift://same",
            base_dir=tmp_path,
            environ={"OS_STORAGE_URL": f"{base}/v1/AUTH_x", "OS_AUTH_TOKEN": "token-x"},
        )
        with pytest.raises(UploadError, match=r"does not advance.*ignores the marker"):
            list(swift.list())
        assert len(seen) == 2
        s3 = open_container(
            "s3://s3same",
            base_dir=tmp_path,
            environ={
                "AWS_ACCESS_KEY_ID": "k",
                "AWS_SECRET_ACCESS_KEY": "s" * 8,
                "AWS_ENDPOINT_URL": base,
            },
        )
        with pytest.raises(UploadError, match="does not advance"):
            list(s3.list())
        seen.clear()
        http = Http(attempts=2)
        try:
            for path in ("same/", "same/index.txt"):
                with pytest.raises(ReleaseError, match=r"does not advance.*ignores the marker"):
                    Reader(http, json=path.endswith("/")).read(f"{base}/{path}", "scipy")
            assert len(seen) <= 4
        finally:
            http.close()


def test_pages_are_bounded_in_size_and_time() -> None:
    """A 64 MiB listing page and a page that never ends: a clear error, soon, in bounded
    memory (the release tools used to take minutes and gigabytes, or hang)."""
    with hostile_server() as (base, _):
        http = Http(attempts=1, deadline_s=3, max_page_bytes=4 << 20)
        try:
            started = time.monotonic()
            with pytest.raises(HttpError, match=r"larger than 4 MiB"):
                Reader(http).read(f"{base}/huge/", "scipy")
            with pytest.raises(HttpError, match=r"did not end within 3 s"):
                Reader(http, json=False).read(f"{base}/endless/", "scipy")
            assert time.monotonic() - started < 30
        finally:
            http.close()


def test_index_entries_follow_the_object_on_s3(
    tmp_path: Path, seaweedfs_server: Any, container_name: str
) -> None:
    """Markers name the object by its ETag as S3 lists it: a wheel replaced with another of
    the same size is listed with the new sha256 only."""
    env = seaweedfs_server.s3_env()
    url = f"s3://{container_name}"
    settings = upload_settings(tmp_path, url)
    names: dict[int, tuple[str, str, int]] = {}
    for night, payload in enumerate(("a", "b")):
        house = tmp_path / f"n{night}"
        made = make_build(house, payload=payload * 300_000,
                          started=datetime(2026, 11, 20 + night, tzinfo=timezone.utc))  # fmt: skip
        wheel = made["builds"][0]["wheels"][0]
        names[night] = (wheel["name"], wheel["sha256"], wheel["size"])
        done = run_upload(tmp_path, settings, house,
                          env={**env, "MB_SEGMENT_SIZE": str(5 << 20)})  # fmt: skip
        assert done.returncode == 0, done.stderr
    assert names[0][0] == names[1][0] and names[0][2] == names[1][2]  # same name and size
    container = open_container(url, base_dir=tmp_path, environ=env)
    assert index_names(container.get_bytes(INDEX).decode()) == {names[1][0]: names[1][1]}
    assert [(e.name, e.sha256) for e in index_entries(container.list())] == [names[1][:2]]
    container.close()
