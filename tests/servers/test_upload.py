"""`python -m multibuild upload` against a real Swift and a real S3 (SeaweedFS) on 127.0.0.1:
secrets, pip finding the links, a killed uploader, concurrent uploaders."""

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

from multibuild.publish.containers import open_container
from multibuild.publish.containers.base import digest_file
from multibuild.publish.index import INDEX, MARKERS, index_entries, rebuild_index
from tests.helpers import (
    GITHUB_MAIN,
    REPO_ROOT,
    SMALL_SEGMENTS,
    index_names,
    run_upload,
    segmented_swift,
    upload_settings,
)
from tests.servers.wheelhouse import make_build, make_wheel

REPO = REPO_ROOT


SECRET = "sup3r-s3cret-v4lue"


def _upload_env(server: Any, kind: str) -> dict[str, str]:
    return {**GITHUB_MAIN, **(server.env() if kind == "swift" else server.s3_env())}


@pytest.mark.servers
def test_secrets_never_shown(tmp_path: Path, swift_server: Any, container_name: str) -> None:
    house = tmp_path / "wheelhouse"
    make_build(house)
    settings = upload_settings(tmp_path, pre=f"swift://{container_name}")
    env = {**GITHUB_MAIN, **swift_server.env(), "ST_KEY": SECRET, "MB_DEBUG_TRACEBACK": "1"}
    done = run_upload(tmp_path, str(house), env=env, settings=settings)
    assert done.returncode == 11, done.stderr
    assert "refused the credentials" in done.stderr
    assert SECRET not in done.stdout + done.stderr


@pytest.mark.servers
@pytest.mark.parametrize("kind", ["swift", "s3"])
def test_upload_to_servers_and_pip_finds_links(  # noqa: PLR0917 (pytest's fixtures)
    kind: str,
    tmp_path: Path,
    swift_server: Any,
    seaweedfs_server: Any,
    container_name: str,
    pypiserver: Any,
) -> None:
    server = swift_server if kind == "swift" else seaweedfs_server
    house = tmp_path / "wheelhouse"
    record = make_build(house, name="tinypkg", platform="linux", pythons=("3.11",))
    # Plus a pure wheel pip can install here, needing a package only the index has (as scipy
    # needs numpy).
    pure = make_wheel(house, "tinypkg", "1.0", "py3-none-any")
    nightly = make_wheel(house, "tinypkg", "1.1.dev0", "py3-none-any", requires=("tinydep>=2",))
    make_wheel(pypiserver.root, "tinydep", "2.0", "py3-none-any")
    url = f"{kind}://{container_name}/nightly"
    settings = upload_settings(tmp_path, pre=url)
    done = run_upload(tmp_path, str(house), env=_upload_env(server, kind), settings=settings)
    assert done.returncode == 0, done.stderr
    container = open_container(url, base_dir=tmp_path, environ=_upload_env(server, kind))
    page = container.get_bytes(INDEX).decode()
    assert set(index_names(page)) == {
        pure.name, nightly.name, record["builds"][0]["wheels"][0]["name"]
    }  # fmt: skip
    assert container.head(f"builds/{record['build_id']}.json") is not None
    if kind == "swift":
        # Public, anonymous, through pip --find-links (it checks the #sha256= of the link).
        index_url = container.public_url(INDEX)
        assert index_url.startswith(swift_server.endpoint)
        target = tmp_path / "dl"
        pip = subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "--isolated",
                "download",
                "--no-deps",
                "--no-index",
                "--find-links",
                index_url,
                "-d",
                str(target),
                "tinypkg==1.0",
            ],
            env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert pip.returncode == 0, pip.stdout + pip.stderr
        (got,) = target.iterdir()  # the best match for this interpreter
        assert got.read_bytes() == (house / got.name).read_bytes()
        # README's way (the container beside the package index, --pre for a nightly): the
        # wheel from the container, its dependency from the index. With --no-index the
        # dependency is missing.
        for index_args, ok in (
            (["--index-url", pypiserver.simple_url], True),
            (["--no-index"], False),
        ):
            target = tmp_path / f"dl-{ok}"
            pip = subprocess.run(
                [sys.executable, "-m", "pip", "--isolated", "download", "--pre", *index_args,
                 "--find-links", index_url, "-d", str(target), "tinypkg==1.1.dev0"],
                env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
                capture_output=True, text=True, timeout=120, check=False,
            )  # fmt: skip
            assert (pip.returncode == 0) == ok, pip.stdout + pip.stderr
            if ok:
                assert sorted(p.name for p in target.iterdir()) == [
                    "tinydep-2.0-py3-none-any.whl",
                    nightly.name,
                ]
            else:
                assert "tinydep" in pip.stderr
    container.close()


@pytest.mark.servers
def test_killed_uploader_leaves_no_half_wheel_listed(
    tmp_path: Path, swift_server: Any, container_name: str
) -> None:
    env = swift_server.env()
    url = f"swift://{container_name}"
    container = segmented_swift(tmp_path, env, url)
    house = tmp_path / "wheelhouse"
    make_build(house)
    wheel = next(house.glob("*.whl"))
    # A wheel that landed but was never verified (the uploader died before its marker) ...
    container.put_file(wheel.name, wheel, digest_file(wheel))
    # ... and a marker that does not fit what is there (a wrong size) are not listed.
    other = tmp_path / "other-1.0-py3-none-any.whl"
    other.write_bytes(b"0" * 1000)
    container.put_bytes(other.name, other.read_bytes())
    container.put_bytes(f"{MARKERS}{other.name}/999-{'0' * 64}", b"")
    assert rebuild_index(container, "t") == []
    # A real kill: a big segmented wheel, SIGKILL while its segments go up.
    big_house = tmp_path / "big"
    big = make_wheel(big_house, "big", "1.0", "py3-none-any", payload=os.urandom(12 << 20).hex())
    settings = upload_settings(tmp_path, pre=url)
    clean_env = {
        **GITHUB_MAIN,
        **env,
        "PYTHONPATH": str(REPO),
        "MB_SEGMENT_SIZE": str(SMALL_SEGMENTS),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "multibuild", "upload", "--settings", str(settings), str(big_house)],
        cwd=tmp_path,
        env={**os.environ, **clean_env},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    segments = open_container(f"swift://{container_name}_segments", base_dir=tmp_path, environ=env)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not any(True for _ in segments.list()):
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert container.head(big.name) is None  # no manifest: no half wheel at all
    names = index_names(container.get_bytes(INDEX).decode()) if container.head(INDEX) else {}
    assert big.name not in names
    # A rerun finishes the job: everything verified and listed.
    done = run_upload(tmp_path, str(house), str(big_house), env=clean_env, settings=settings)
    assert done.returncode == 0, done.stderr
    names = index_names(container.get_bytes(INDEX).decode())
    assert names[big.name] == hashlib.sha256(big.read_bytes()).hexdigest()
    assert names[wheel.name] == digest_file(wheel).sha256
    assert other.name not in names
    container.close()
    segments.close()


@pytest.mark.servers
def test_concurrent_uploaders_lose_nothing(
    tmp_path: Path, swift_server: Any, container_name: str
) -> None:
    url = f"swift://{container_name}"
    settings = upload_settings(tmp_path, pre=url)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TRAVIS", "APPVEYOR", "MB_", "ST_", "OS_", "AWS_"))
    }
    env.update({**GITHUB_MAIN, **swift_server.env(), "PYTHONPATH": str(REPO)})
    jobs = 8
    procs = []
    expected = {}
    started = time.monotonic()
    for job in range(jobs):
        house = tmp_path / f"job{job}"
        record = make_build(
            house,
            plat=f"x86_64_{job}",
            pythons=("3.11", "3.12"),
            started=datetime(2026, 11, 23, tzinfo=timezone.utc) + timedelta(minutes=job),
        )
        for build in record["builds"]:
            for wheel in build["wheels"]:
                expected[wheel["name"]] = wheel["sha256"]
        procs.append(
            subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "multibuild",
                    "upload",
                    "--settings",
                    str(settings),
                    str(house),
                ],
                cwd=tmp_path,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert all(p.returncode == 0 for p in procs), outputs
    elapsed = time.monotonic() - started
    container = open_container(url, base_dir=tmp_path, environ=swift_server.env())
    assert index_names(container.get_bytes(INDEX).decode()) == expected
    history = container.get_bytes("history.html").decode()
    assert history.count('<tr class="build success"') == 2 * jobs
    assert index_entries(container.list()) and len(index_entries(container.list())) == 2 * jobs
    print(f"{jobs} concurrent uploaders, {2 * jobs} wheels: {elapsed:.1f} s")
    container.close()


@pytest.mark.servers
def test_ci_uploads_go_to_the_remote_container_never_a_local_one(
    tmp_path: Path, seaweedfs_server: Any, container_name: str
) -> None:
    """With a CI provider's variables set, the settings' local container is refused (exit 2,
    nothing written) and the remote one (a real S3 server on 127.0.0.1) takes the upload."""
    house = tmp_path / "wheelhouse"
    record = make_build(house, name="tinypkg", platform="linux", pythons=("3.11",))
    env = _upload_env(seaweedfs_server, "s3")
    local = run_upload(tmp_path, str(house), env=env, settings=upload_settings(tmp_path))
    assert local.returncode == 2, local.stdout + local.stderr
    assert "configure a remote container for CI" in local.stderr
    assert not (tmp_path / "containers").exists()
    url = f"s3://{container_name}"
    remote = run_upload(tmp_path, str(house), env=env, settings=upload_settings(tmp_path, pre=url))
    assert remote.returncode == 0, remote.stdout + remote.stderr
    assert (
        f"-> pre-release (github push on main: development branch main) -> {url}" in remote.stdout
    )
    container = open_container(url, base_dir=tmp_path, environ=env)
    wheel = record["builds"][0]["wheels"][0]["name"]
    assert container.head(wheel) is not None
    assert wheel in container.get_bytes(INDEX).decode()
