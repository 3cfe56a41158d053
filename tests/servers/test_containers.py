"""The container backends against real servers on 127.0.0.1: local directory, Swift (tempauth,
SLO), S3 through Swift's s3api and through SeaweedFS. Plus retries through a fault proxy."""

from __future__ import annotations

import hashlib
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from multibuild.errors import CredentialsError
from multibuild.options import UploadTuning
from multibuild.publish.containers import open_container
from multibuild.publish.containers import s3 as s3_backend
from multibuild.publish.containers import swift as swift_backend
from multibuild.publish.containers.base import Container, digest_file, slo_etag
from multibuild.publish.containers.retry import RetryPolicy, RetryStats
from tests.servers import swift as swift_server_module
from tests.servers.faultproxy import FaultProxyProcess

FAST = RetryPolicy(attempts=10, base_s=0.02, max_wait_s=0.2, deadline_s=60, timeout_s=2.0)


Factory = Callable[..., Container]


@pytest.fixture(
    params=[
        "local",
        pytest.param("swift", marks=pytest.mark.servers),
        pytest.param("s3-swift", marks=pytest.mark.servers),
        pytest.param("s3-seaweedfs", marks=pytest.mark.servers),
    ]
)
def backend(request: pytest.FixtureRequest, tmp_path: Path, container_name: str) -> Iterator[Any]:
    kind = request.param
    made: list[Container] = []

    def make(segment_size: int | None = None, env: dict[str, str] | None = None) -> Container:
        if kind == "local":
            url, environ = str(tmp_path / "container"), {}
        elif kind == "swift":
            url, environ = (
                f"swift://{container_name}/pre",
                request.getfixturevalue("swift_server").env(),
            )
        elif kind == "s3-swift":
            url, environ = (
                f"s3://{container_name}/pre",
                request.getfixturevalue("swift_server").s3_env(),
            )
        else:
            url, environ = (
                f"s3://{container_name}/pre",
                request.getfixturevalue("seaweedfs_server").s3_env(),
            )
        environ.update(env or {})
        container = open_container(
            url,
            base_dir=tmp_path,
            environ=environ,
            policy=FAST,
            tuning=UploadTuning(segment_size=segment_size),
        )
        made.append(container)
        return container

    make.kind = kind  # type: ignore[attr-defined]
    yield make
    for container in made:
        container.close()


def write(path: Path, size: int, seed: int = 0) -> Path:
    path.write_bytes(
        hashlib.sha256(str(seed).encode()).digest() * (size // 32) + b"x" * (size % 32)
    )
    return path


def test_put_verify_head_list_get_delete(backend: Factory, tmp_path: Path) -> None:
    container = backend()
    container.ensure()
    wheel = write(tmp_path / "pkg-1.0-cp311-cp311-manylinux_2_36_x86_64.whl", 20_000)
    digest = digest_file(wheel)
    info = container.put_file(wheel.name, wheel, digest)
    assert info.size == digest.size
    assert info.sha256 == digest.sha256
    container.put_bytes("builds/b1.json", b'{"a": 1}')
    head = container.head(wheel.name)
    assert head is not None
    assert head.sha256 == digest.sha256
    assert container.head("missing.whl") is None
    names = [o.name for o in container.list()]
    assert names == ["builds/b1.json", wheel.name]
    assert [o.name for o in container.list("builds/")] == ["builds/b1.json"]
    listed = next(o for o in container.list() if o.name == wheel.name)
    assert listed.size == digest.size
    assert listed.last_modified.tzinfo is not None
    assert container.get_bytes(wheel.name) == wheel.read_bytes()
    container.download("builds/b1.json", tmp_path / "b1.json")
    assert (tmp_path / "b1.json").read_bytes() == b'{"a": 1}'
    assert wheel.name in container.public_url(wheel.name)
    container.delete(wheel.name)
    container.delete("never-there.whl")
    assert [o.name for o in container.list()] == ["builds/b1.json"]


def test_big_files_go_segmented_and_verify(backend: Factory, tmp_path: Path) -> None:
    kind = backend.kind  # type: ignore[attr-defined]
    part = 1 << 20 if kind in ("local", "swift") else 5 << 20
    container = backend(segment_size=part)
    container.ensure()
    big = write(tmp_path / "big-1.0-py3-none-any.whl", 2 * part + 12345, seed=1)
    digest = digest_file(big)
    info = container.put_file(big.name, big, digest)
    assert info.size == digest.size
    if kind == "swift":
        md5s = [
            hashlib.md5(big.read_bytes()[i : i + part]).hexdigest()
            for i in range(0, digest.size, part)
        ]
        assert info.etag == slo_etag(md5s) != digest.md5  # an SLO's ETag is not the md5
    elif kind.startswith("s3"):
        assert info.etag.endswith("-3")  # multipart: md5 of md5s, then -N
    assert container.get_bytes(big.name) == big.read_bytes()
    # Replace it with a different big file: old segments go.
    write(big, 2 * part + 99, seed=2)
    container.put_file(big.name, big, digest_file(big))
    assert container.get_bytes(big.name) == big.read_bytes()
    container.delete(big.name)
    assert container.head(big.name) is None


def test_listing_paginates(
    backend: Factory, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(swift_backend, "PAGE", 3)
    monkeypatch.setattr(s3_backend, "PAGE", 3)
    container = backend()
    container.ensure()
    names = [f"w{i:02d}.whl" for i in range(8)]
    for name in names:
        container.put_bytes(name, name.encode())
    container.put_bytes("zz/other", b"")
    assert [o.name for o in container.list()] == [*names, "zz/other"]
    assert [o.name for o in container.list("w0")] == names
    assert [o.name for o in container.list("w07")] == ["w07.whl"]
    assert list(container.list("nothing")) == []


@pytest.mark.servers
def test_wrong_key_is_a_permanent_credentials_error(swift_server: Any, tmp_path: Path) -> None:
    stats = RetryStats()
    env = {**swift_server.env(), "ST_KEY": "not-the-key-123"}
    container = open_container("swift://x", base_dir=tmp_path, environ=env, policy=FAST)
    container.stats = stats
    with pytest.raises(CredentialsError, match="refused the credentials") as error:
        container.ensure()
    assert "not-the-key-123" not in str(error.value)
    assert stats.retries == 0  # permanent: no retry


@pytest.mark.servers
def test_forbidden_user_gets_a_clear_error(swift_server: Any, tmp_path: Path) -> None:
    env = {
        **swift_server.env(),
        "ST_USER": f"{swift_server_module.ACCOUNT}:{swift_server_module.READER}",
        "ST_KEY": swift_server_module.READER_KEY,
    }
    container = open_container("swift://readonly-test", base_dir=tmp_path, environ=env, policy=FAST)
    with pytest.raises(CredentialsError, match="HTTP 403"):
        container.ensure()


@pytest.mark.servers
def test_swift_container_is_public_and_listable(
    swift_server: Any, tmp_path: Path, container_name: str
) -> None:
    container = open_container(
        f"swift://{container_name}", base_dir=tmp_path, environ=swift_server.env(), policy=FAST
    )
    container.ensure()
    container.put_bytes("a-1.0-py3-none-any.whl", b"wheel")
    url = container.public_url("a-1.0-py3-none-any.whl")
    with urllib.request.urlopen(url, timeout=10) as response:  # anonymous
        assert response.read() == b"wheel"
    with urllib.request.urlopen(container.public_url(), timeout=10) as response:
        listing = response.read().decode()
    assert '<td class="colname"><a href="a-1.0-py3-none-any.whl">' in listing


@pytest.mark.servers
@pytest.mark.parametrize("kind", ["swift", "s3"])
def test_uploads_through_faults_all_land(
    kind: str, swift_server: Any, tmp_path: Path, container_name: str
) -> None:
    """20 % of requests reset (some mid-body), answer 5xx/429, stall past the timeout, have
    their answer cut after its headers or stalled after 20 % of its body, or dropped after
    the server did them."""
    proxy = FaultProxyProcess(tmp_path, swift_server.proxy_port, rate=0.2, stall_s=2.5, seed=7)
    try:
        if kind == "swift":
            env = swift_server.env(auth_url=f"{proxy.endpoint}/auth/v1.0")
            url = f"swift://{container_name}"
        else:
            env = swift_server.s3_env(endpoint=proxy.endpoint)
            url = f"s3://{container_name}"
        policy = RetryPolicy(
            attempts=12, base_s=0.02, max_wait_s=0.2, deadline_s=120, timeout_s=1.5
        )
        container = open_container(
            url,
            base_dir=tmp_path,
            environ=env,
            policy=policy,
            tuning=UploadTuning(segment_size=64 << 10),
        )
        container.ensure()
        files = []
        for i in range(12):
            path = write(tmp_path / f"f{i}-1.0-py3-none-any.whl", 30_000 + i * 7000, seed=i)
            container.put_file(path.name, path, digest_file(path))
            files.append(path)
        listed = {o.name: o for o in container.list()}
        for path in files:
            assert listed[path.name].size == path.stat().st_size
            assert (
                hashlib.sha256(container.get_bytes(path.name)).hexdigest()
                == digest_file(path).sha256
            )
        counts = proxy.counts()
        faults = sum(v for k, v in counts.items() if k != "ok")
        assert faults >= 3, counts
        # Most faults cost a retry (a cut or stalled answer without a body does not).
        assert container.stats.retries >= faults // 2, (counts, container.stats.failures)
        container.close()
    finally:
        proxy.stop()
    print(f"{kind}: faults {counts}, retries {container.stats.retries}")
