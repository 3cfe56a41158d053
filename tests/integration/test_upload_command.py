"""`python -m multibuild upload` end to end against a local directory: channels, guarantees,
credentials."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import pytest

from multibuild.publish.containers.base import FileDigest, ObjectInfo
from multibuild.publish.containers.local import TEMP_PREFIX, LocalContainer
from multibuild.publish.index import INDEX
from multibuild.publish.upload import upload_to_container
from multibuild.publish.wheelhouse import collect
from multibuild.util.isolation import isolated, namespace_prefix
from tests.helpers import GITHUB_MAIN, index_names, upload_settings
from tests.helpers import run_upload as run_upload_command
from tests.servers.wheelhouse import make_build

SECRET = "sup3r-s3cret-v4lue"


GITHUB_RELEASE = {
    **GITHUB_MAIN,
    "GITHUB_REF": "refs/heads/v1.0.0",
    "GITHUB_REF_NAME": "v1.0.0",
}


GITHUB_PR = {**GITHUB_MAIN, "GITHUB_EVENT_NAME": "pull_request", "GITHUB_REF": "refs/pull/3/merge"}


# These tests check the CI channel decision against local directories: a self-hosted
# runner's persistent disk, as MB_LOCAL_CONTAINER_ON_CI declares (without it, CI refuses a
# local container: test_ci_refuses_a_local_container).
run_upload = functools.partial(run_upload_command, local_on_ci=True)


def test_upload_to_local_container(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    record = make_build(house, pythons=("3.11", "3.12"), log_text=f"token={SECRET}\nok\n")
    done = run_upload(tmp_path, str(house), env={**GITHUB_MAIN, "MY_API_TOKEN": SECRET})
    assert done.returncode == 0, done.stderr
    assert "-> pre-release" in done.stdout
    container = tmp_path / "containers" / "pre"
    wheels = sorted(p.name for p in container.glob("*.whl"))
    assert wheels == sorted(w["name"] for b in record["builds"] for w in b["wheels"])
    listed = index_names((container / INDEX).read_text())
    assert listed == {w["name"]: w["sha256"] for b in record["builds"] for w in b["wheels"]}
    uploaded = json.loads((container / "builds" / f"{record['build_id']}.json").read_text())
    assert uploaded["ci"]["provider"] == "github"
    assert uploaded["ci"]["branch"] == "main"
    assert uploaded["ci"]["channel"] == "pre-release"
    assert uploaded["ci"]["nightly"] is False
    log = (container / "builds" / f"{record['build_id']}.log").read_text()
    assert SECRET not in log
    assert "token=***" in log
    history = (container / "history.html").read_text()
    assert record["build_id"] in history
    assert SECRET not in done.stdout + done.stderr
    assert not (tmp_path / "containers" / "rel").exists()
    # Rerun: idempotent, nothing sent.
    again = run_upload(tmp_path, str(house), env=GITHUB_MAIN)
    assert again.returncode == 0, again.stderr
    assert "0 uploaded, 0 replaced, 2 already there, 0 record/log" in again.stdout


def test_pull_requests_never_upload_nor_need_credentials(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    make_build(house)
    settings = upload_settings(tmp_path, pre="swift://wheels", rel="swift://wheels-release")
    for args in ((), ("--channel", "pre-release"), ("--channel", "release")):
        done = run_upload(tmp_path, *args, str(house), env=GITHUB_PR, settings=settings)
        assert done.returncode == 0, done.stderr
        assert "not uploading" in done.stdout
        assert "pull request 3" in done.stdout


def test_release_from_a_non_release_branch_is_refused(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    make_build(house)
    done = run_upload(tmp_path, "--channel", "release", str(house), env=GITHUB_MAIN)
    assert done.returncode == 10
    assert "REFUSED" in done.stderr
    assert not (tmp_path / "containers").exists()
    # And a pre-release upload may not write into the release container.
    done = run_upload(tmp_path, "--container", "containers/rel", str(house), env=GITHUB_MAIN)
    assert done.returncode == 10
    assert "release container" in done.stderr


def test_release_is_immutable_and_warns_on_moving_refs(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    make_build(house, ref="v1.0")
    done = run_upload(tmp_path, str(house), env=GITHUB_RELEASE)
    assert done.returncode == 0, done.stderr
    assert "-> release" in done.stdout
    assert "moving name" in done.stderr
    # Identical files: skipped. A rebuilt (different) file under the same name: refused.
    assert run_upload(tmp_path, str(house), env=GITHUB_RELEASE).returncode == 0
    rebuilt = tmp_path / "rebuilt"
    make_build(rebuilt, payload="different", started=datetime(2026, 11, 24, tzinfo=timezone.utc))
    extra = make_build(rebuilt, name="other", started=datetime(2026, 11, 24, tzinfo=timezone.utc))
    done = run_upload(tmp_path, str(rebuilt), env=GITHUB_RELEASE)
    assert done.returncode == 10
    assert "immutable" in done.stderr
    release = tmp_path / "containers" / "rel"
    # Nothing of the refused upload landed, not even the unrelated wheel.
    assert not (release / extra["builds"][0]["wheels"][0]["name"]).exists()
    assert len(list((release / "builds").glob("*.json"))) == 1


def test_pre_release_replaces_and_keeps_the_old_record(tmp_path: Path) -> None:
    first, second = tmp_path / "n1", tmp_path / "n2"
    old = make_build(first, started=datetime(2026, 11, 22, tzinfo=timezone.utc))
    new = make_build(second, payload="new", started=datetime(2026, 11, 23, tzinfo=timezone.utc))
    cron = {**GITHUB_MAIN, "GITHUB_EVENT_NAME": "schedule"}
    assert run_upload(tmp_path, str(first), env=cron).returncode == 0
    time.sleep(1.1)  # a new modification second for the replaced file
    done = run_upload(tmp_path, str(second), env=cron)
    assert done.returncode == 0, done.stderr
    assert "1 replaced" in done.stdout
    container = tmp_path / "containers" / "pre"
    name = new["builds"][0]["wheels"][0]["name"]
    assert index_names((container / INDEX).read_text()) == {
        name: new["builds"][0]["wheels"][0]["sha256"]
    }
    assert (container / "builds" / f"{old['build_id']}.json").exists()
    record = json.loads((container / "builds" / f"{new['build_id']}.json").read_text())
    assert record["ci"]["nightly"] is True
    assert record["ci"]["event"] == "cron"


def test_dry_run_writes_nothing(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    make_build(house)
    done = run_upload(tmp_path, "--dry-run", str(house), env=GITHUB_MAIN)
    assert done.returncode == 0, done.stderr
    assert "would upload pkg-1.0" in done.stdout
    assert not (tmp_path / "containers").exists()


def test_local_runs_upload_to_the_local_pre_release_container(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    make_build(house)
    done = run_upload(tmp_path, str(house), env={"CI": "true"})  # like .ci/run; no git here
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "containers" / "pre" / INDEX).exists()


def test_local_containers_are_relative_to_the_current_directory(tmp_path: Path) -> None:
    # As ./wheelhouse: settings.toml elsewhere (--settings other/settings.toml) does not move
    # the local container there.
    house = tmp_path / "wheelhouse"
    make_build(house)
    other = tmp_path / "other"
    other.mkdir()
    done = run_upload(tmp_path, str(house), env={"CI": "true"}, settings=upload_settings(other))
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "containers" / "pre" / INDEX).exists()
    assert not (other / "containers").exists()
    help_text = subprocess.run(
        [sys.executable, "-m", "multibuild", "upload", "--help"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "relative to the current directory" in " ".join(help_text.split())


def test_missing_credentials_name_the_variable_and_upload_nothing(tmp_path: Path) -> None:
    house = tmp_path / "wheelhouse"
    make_build(house)
    settings = upload_settings(tmp_path, pre="swift://wheels", rel="s3://release")
    done = run_upload(
        tmp_path,
        str(house),
        env={**GITHUB_MAIN, "ST_AUTH": "http://127.0.0.1:9/"},
        settings=settings,
    )
    assert done.returncode == 11
    assert "ST_USER, ST_KEY not set" in done.stderr
    done = run_upload(tmp_path, str(house), env=GITHUB_RELEASE, settings=settings)
    assert done.returncode == 11
    assert "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY not set" in done.stderr


def test_ci_refuses_a_local_container(tmp_path: Path) -> None:
    """On a CI provider the runner is thrown away with its disk: an upload to a local
    directory there is a configuration error (exit 2) naming the fix, before anything is
    written; by hand the same upload goes to the directory."""
    house = tmp_path / "wh"
    make_build(house)
    refused = run_upload(tmp_path, str(house), env={**GITHUB_MAIN, "MB_LOCAL_CONTAINER_ON_CI": ""})
    assert refused.returncode == 2, refused.stdout + refused.stderr
    assert "is a local directory" in refused.stderr
    assert "configure a remote container for CI" in refused.stderr
    assert not (tmp_path / "containers").exists()
    # An explicit --container that is a path is refused as well.
    done = run_upload(tmp_path, "--container", str(tmp_path / "elsewhere"), str(house),
                      env={**GITHUB_MAIN, "MB_LOCAL_CONTAINER_ON_CI": "0"})  # fmt: skip
    assert done.returncode == 2 and "configure a remote container for CI" in done.stderr
    assert not (tmp_path / "elsewhere").exists()
    # A pull request decides nothing to upload: no container is needed, so no error.
    assert (
        run_upload(
            tmp_path, str(house), env={**GITHUB_PR, "MB_LOCAL_CONTAINER_ON_CI": ""}
        ).returncode
        == 0
    )
    # By hand (no CI variables) the local directory is the container.
    by_hand = run_upload(tmp_path, str(house), env={})
    assert by_hand.returncode == 0, by_hand.stderr
    assert list((tmp_path / "containers" / "pre").glob("*.whl"))


class WatchedContainer(LocalContainer):
    """A local container with a reader that looks at it after every write: each wheel that
    index.html lists must be, at that moment, the file the page says (its sha256)."""

    def __init__(self, root: Path) -> None:
        super().__init__(root)
        self.looks = 0

    def _look(self) -> None:
        self.looks += 1
        page = self.root / INDEX
        if not page.exists():
            return
        for name, listed in index_names(page.read_text()).items():
            data = (self.root / name).read_bytes()
            assert hashlib.sha256(data).hexdigest() == listed, f"index.html lies about {name}"

    def put_file(self, name: str, path: Path, digest: FileDigest) -> ObjectInfo:
        info = super().put_file(name, path, digest)
        self._look()
        return info

    def put_bytes(self, name: str, data: bytes) -> None:
        super().put_bytes(name, data)
        self._look()

    def delete(self, name: str) -> None:
        super().delete(name)
        self._look()


def test_the_index_never_lists_a_replaced_wheel_with_its_old_hash(tmp_path: Path) -> None:
    """Nightlies replacing a wheel with one of the same size, within the same second: at no
    moment does index.html give the old sha256 for the new file (pip's hash check would
    fail), and at the end it gives the new one."""
    container = WatchedContainer(tmp_path / "pre")
    for night in range(4):
        house = tmp_path / f"night{night}"
        made = make_build(house, payload="abcd"[night] * 5000,
                          started=datetime(2026, 11, 20 + night, tzinfo=timezone.utc))  # fmt: skip
        upload_to_container(
            container, collect([house]), channel="pre-release", ci={}, title="t", echo=print
        )
        wheel = made["builds"][0]["wheels"][0]
        assert index_names((container.root / INDEX).read_text()) == {wheel["name"]: wheel["sha256"]}
    assert container.looks > 10


def test_a_killed_copy_leaves_nothing_for_good(tmp_path: Path) -> None:
    """A copy killed half-way leaves its temporary file; the next upload deletes it once the
    store's clock (the filesystem's mtime) says it is older than the grace, and keeps one
    being written."""
    house = tmp_path / "wheelhouse"
    make_build(house)
    partial = tmp_path / "containers" / "pre" / ".partial"
    partial.mkdir(parents=True)
    left = partial / f"{TEMP_PREFIX}0123abcd-abc123"
    left.write_bytes(b"half a wheel" * 1000)
    stamp = left.stat().st_mtime - 2 * 3600  # the store says: written two hours ago
    os.utime(left, (stamp, stamp))
    running = partial / f"{TEMP_PREFIX}4567cdef-def456"
    running.write_bytes(b"being written")
    done = run_upload(tmp_path, str(house), env=GITHUB_MAIN)
    assert done.returncode == 0, done.stderr
    assert "left by an earlier, interrupted upload" in done.stdout
    assert not left.exists()
    assert running.exists()


def test_a_missing_wheelhouse_is_a_usage_error(tmp_path: Path) -> None:
    """README "Exit codes": a wrong path is 2 (bad flags), not 10 (an upload failed)."""
    done = run_upload(tmp_path, str(tmp_path / "no-such-wheelhouse"), env=GITHUB_MAIN)
    assert done.returncode == 2, done.stderr
    assert "no such wheelhouse or file" in done.stderr
    assert not (tmp_path / "containers").exists()


SWEEP = "import sys; from multibuild.publish.containers.local import LocalContainer as C; "
SWEEP += "from pathlib import Path; print(C(Path(sys.argv[1])).sweep(3600.0))"


def test_an_in_flight_file_is_no_other_uploaders_to_delete(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 23 item 9: an uploader on another host whose clock is 2 h ahead (or behind), or
    in another PID namespace on the same host, never deletes a write in flight; a temporary
    file is judged by the store's clock only."""
    root = tmp_path / "container"
    writer = LocalContainer(root)
    real_time = time.time
    seen: list[Path] = []

    def write(temp: Path) -> None:
        temp.write_bytes(b"half a wheel")
        seen.append(temp)
        # Another host, its clock two hours ahead.
        with monkeypatch.context() as patched:
            patched.setattr(socket, "gethostname", lambda: "other-host")
            patched.setattr(time, "time", lambda: real_time() + 2 * 3600)
            assert LocalContainer(root).sweep(3600.0) == ()
        # Another PID namespace on this host: this writer's PID means nothing there.
        if namespace_prefix() is not None:
            swept = subprocess.run(
                isolated([sys.executable, "-c", SWEEP, str(root)]),
                capture_output=True, text=True, check=True,
            )  # fmt: skip
            assert swept.stdout.strip() == "()", swept.stdout
        assert temp.exists()
        temp.write_bytes(b"a whole wheel")

    writer._write("w-1.0-py3-none-any.whl", write)
    assert (root / "w-1.0-py3-none-any.whl").read_bytes() == b"a whole wheel"
    # One the store dates two hours back goes, whatever the sweeper's clock says.
    left = seen[0].with_name(f"{TEMP_PREFIX}89abcdef-left")
    left.write_bytes(b"left")
    stamp = left.stat().st_mtime - 2 * 3600
    os.utime(left, (stamp, stamp))
    monkeypatch.setattr(time, "time", lambda: real_time() - 2 * 3600)
    assert LocalContainer(root).sweep(3600.0) == (f".partial/{left.name}",)
    assert not left.exists()


def test_a_container_named_by_hand_is_uploaded_to_or_refused(tmp_path: Path) -> None:
    """`upload --container URL` where the branch decides no upload (issue 23, item 10): a
    configuration error that says why, never "not uploading" with exit 0."""
    house = tmp_path / "wheelhouse"
    make_build(house)
    settings = upload_settings(tmp_path)
    feature = {**GITHUB_MAIN, "GITHUB_REF": "refs/heads/feature", "GITHUB_REF_NAME": "feature"}
    for env, hint in ((feature, "give --channel"), (GITHUB_PR, "pull request")):
        for url in ("s3://bucket/x", "swift://wheels"):
            done = run_upload(tmp_path, "--container", url, str(house), env=env, settings=settings)
            assert done.returncode == 2, done.stdout + done.stderr
            assert f"--container {url} given, but this run uploads nothing" in done.stderr
            assert hint in done.stderr
    # With a channel, the container named is the one written.
    target = tmp_path / "by-hand"
    done = run_upload(
        tmp_path, "--container", str(target), "--channel", "pre-release", str(house),
        env=feature, settings=settings,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert (target / INDEX).is_file()
    # Issue 23 item 10: what the status line says is what happens.
    assert "no upload" not in done.stdout + done.stderr
    assert "--channel pre-release (branch feature is neither" in done.stdout
