"""wheel-uploader end to end: a container on `python -m http.server`, twine to a real
pypiserver and a real devpi-server on 127.0.0.1, signatures from a throwaway GNUPGHOME. Every
upload is read back through the index's simple page (sha256) and once with a hermetic pip."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from multibuild.release import sign
from tests.helpers import MATRIX, PYTHONS, REPO_ROOT
from tests.helpers import release_settings_file as settings_file
from tests.servers.faultproxy import FaultProxyProcess
from tests.servers.wheelhouse import make_build

if TYPE_CHECKING:
    from tests.servers.release import GpgHome, Index, StaticServer

PASSWORD = "s3cret-release"  # tests/release_servers.py
pytestmark = pytest.mark.servers


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def release(container: Path, name: str, version: str, payload: str = "") -> list[Path]:
    for platform, plat in MATRIX:
        make_build(container, name=name, version=version, platform=platform, plat=plat,
                   pythons=PYTHONS, payload=payload)  # fmt: skip
    return sorted(container.glob(f"{name}-{version}-*.whl"))


def uploader(
    tmp_path: Path, url: str, name: str, version: str, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """scripts/wheel-uploader as release managers run it."""
    settings = settings_file(tmp_path)
    script = REPO_ROOT / "scripts" / "wheel-uploader"
    argv = [sys.executable, str(script), "-u", url, "-w", str(tmp_path / "wh")]
    argv += ["--settings", str(settings), *args, name, version]
    run_env = {k: v for k, v in os.environ.items() if not k.startswith("TWINE_")}
    run_env.update(env or {})
    return subprocess.run(argv, capture_output=True, text=True, env=run_env, check=False)


def test_pypiserver_release_signed_and_read_back(
    tmp_path: Path, static_server: StaticServer, pypiserver: Index, gpg_home: GpgHome
) -> None:
    wheels = release(static_server.root, "relpkg", "2.0")
    pypirc = pypiserver.pypirc(tmp_path / "pypirc")
    args = ["-r", "local", "--config-file", str(pypirc), "-s", "--identity", gpg_home.fingerprint]
    done = uploader(tmp_path, static_server.url, "relpkg", "2.0", *args)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "uploaded 8 wheel(s)" in done.stdout
    on_index = pypiserver.files("relpkg")
    assert {k: v for k, v in on_index.items() if k.endswith(".whl")} == {
        w.name: sha256(w) for w in wheels
    }
    assert {k for k in on_index if k.endswith(".asc")} == {w.name + ".asc" for w in wheels}
    # Signatures: each wheel's, SHA256SUMS' (kept in the wheelhouse), verified by gpg; the
    # index kept the wheels' too.
    wh = tmp_path / "wh"
    for wheel in wheels:
        assert sign.verify(wh / wheel.name)
        assert (pypiserver.root / (wheel.name + ".asc")).exists()
    assert sign.verify(wh / "SHA256SUMS")
    check = subprocess.run(
        ["sha256sum", "-c", "SHA256SUMS"], cwd=wh, capture_output=True, check=False
    )
    assert check.returncode == 0
    # A hermetic pip (no global config, no extra indexes) installs from the index, checking
    # the sha256 the page gives.
    target = tmp_path / "pipdl"
    pip = subprocess.run(
        [sys.executable, "-m", "pip", "--isolated", "download", "--no-deps", "--dest",
         str(target), "--index-url", pypiserver.simple_url, "--only-binary", ":all:",
         "--platform", "win_amd64", "--python-version", "3.12", "relpkg==2.0"],
        capture_output=True, text=True, env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
        check=False,
    )  # fmt: skip
    assert pip.returncode == 0, pip.stdout + pip.stderr
    [got] = target.glob("*.whl")
    assert got.name == "relpkg-2.0-cp312-cp312-win_amd64.whl"
    assert sha256(got) == sha256(static_server.root / got.name)

    # The index itself read as a container (PEP 503 root page, then the project's page).
    other = tmp_path / "from-index"
    other.mkdir()
    read = uploader(other, pypiserver.simple_url, "relpkg", "2.0", "-n")
    assert read.returncode == 0, read.stdout + read.stderr
    for wheel in wheels:
        assert sha256(other / "wh" / wheel.name) == sha256(wheel)

    # A rerun: everything is there with the same sha256, nothing is sent.
    again = uploader(tmp_path, static_server.url, "relpkg", "2.0", "-r", "local",
                     "--config-file", str(pypirc))  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.count("already on the index (same sha256)") == 8
    assert "nothing to upload" in again.stdout


def test_pypiserver_refusals_upload_nothing(
    tmp_path: Path, static_server: StaticServer, pypiserver: Index, gpg_home: GpgHome
) -> None:
    release(static_server.root, "refpkg", "1.0")
    good = pypiserver.pypirc(tmp_path / "good")
    bad = pypiserver.pypirc(tmp_path / "bad", password="wrong")
    # A key gpg does not have: one clear message before anything is uploaded.
    args = ["-r", "local", "--config-file", str(good), "-s", "--identity", "nobody@example.invalid"]
    done = uploader(tmp_path, static_server.url, "refpkg", "1.0", *args)
    assert done.returncode == 12, done.stdout + done.stderr
    assert "gpg could not sign" in done.stderr and "nobody@example.invalid" in done.stderr
    assert pypiserver.files("refpkg") == {}
    # Wrong credentials: twine's 403 becomes one clear message; nothing on the index.
    done = uploader(tmp_path, static_server.url, "refpkg", "1.0", "-r", "local",
                    "--config-file", str(bad))  # fmt: skip
    assert done.returncode == 11, done.stdout + done.stderr
    assert "refused the credentials (403)" in done.stderr
    assert pypiserver.files("refpkg") == {}
    # --dry-run says what would go, sends nothing.
    dry = uploader(tmp_path, static_server.url, "refpkg", "1.0", "-r", "local",
                   "--config-file", str(good), "--dry-run")  # fmt: skip
    assert dry.returncode == 0 and dry.stdout.count("would upload to local") == 8
    assert pypiserver.files("refpkg") == {}
    # One wheel already on the index with other content: refused before anything is sent.
    other = tmp_path / "other"
    [clash] = [w for w in release(other, "refpkg", "1.0", payload="x") if "win_amd64" in w.name
               and "cp311" in w.name]  # fmt: skip
    subprocess.run(
        [sys.executable, "-m", "twine", "upload", "--non-interactive", "--repository-url",
         pypiserver.upload_url, "-u", "release", "-p", PASSWORD, str(clash)],
        check=True, capture_output=True,
    )  # fmt: skip
    done = uploader(tmp_path, static_server.url, "refpkg", "1.0", "-r", "local",
                    "--config-file", str(good), "-c")  # fmt: skip
    assert done.returncode == 12, done.stdout + done.stderr
    assert "already on" in done.stderr and "with other content" in done.stderr
    assert "nothing was uploaded" in done.stderr
    assert pypiserver.files("refpkg") == {clash.name: sha256(clash)}


def test_devpi_upload_by_url_with_twine_variables(
    tmp_path: Path, static_server: StaticServer, devpi: Index
) -> None:
    wheels = release(static_server.root, "devpkg", "3.1")
    env = {"TWINE_USERNAME": "release", "TWINE_PASSWORD": PASSWORD}
    done = uploader(tmp_path, static_server.url, "devpkg", "3.1",
                    "--repository-url", devpi.upload_url, env=env)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert devpi.files("devpkg") == {w.name: sha256(w) for w in wheels}
    sent = devpi.files("devpkg")
    # Wrong credentials: devpi's 401, one clear message, nothing uploaded.
    release(static_server.root, "devbad", "1.0")
    bad = uploader(tmp_path, static_server.url, "devbad", "1.0", "--repository-url",
                   devpi.upload_url, env={**env, "TWINE_PASSWORD": "nope"})  # fmt: skip
    assert bad.returncode == 11, bad.stdout + bad.stderr
    assert "refused the credentials (401)" in bad.stderr
    assert devpi.files("devbad") == {}
    # The same names rebuilt with other content: refused before anything is sent.
    for wheel in wheels:
        wheel.unlink()
    release(static_server.root, "devpkg", "3.1", payload="changed")
    clash = uploader(tmp_path, static_server.url, "devpkg", "3.1", "-c",
                     "--repository-url", devpi.upload_url, env=env)  # fmt: skip
    assert clash.returncode == 12, clash.stdout + clash.stderr
    assert "with other content" in clash.stderr
    assert devpi.files("devpkg") == sent


def test_twine_failures_are_told_apart(
    tmp_path: Path, static_server: StaticServer, pypiserver: Index
) -> None:
    """A server error, an index that cannot be reached and missing credentials are three
    different failures (exit 12, 12 and 11), each said as it is, also with -v (twine's
    verbose output names the username: that is no missing credential); nothing is
    uploaded."""
    release(static_server.root, "twfail", "1.0")
    env = {"TWINE_USERNAME": "release", "TWINE_PASSWORD": PASSWORD}
    index = ["--index-url", pypiserver.simple_url]
    proxy = FaultProxyProcess(tmp_path, int(pypiserver.upload_url.rsplit(":", 1)[1].strip("/")),
                              rate=1.0, faults=("500",))  # fmt: skip
    try:
        done = uploader(tmp_path, static_server.url, "twfail", "1.0", *index, "-v",
                        "--repository-url", proxy.endpoint + "/", env=env)  # fmt: skip
    finally:
        proxy.stop()
    assert done.returncode == 12, done.stdout + done.stderr
    assert "failed with HTTP 500 (a server error; retry later)" in done.stderr
    done = uploader(tmp_path, static_server.url, "twfail", "1.0", *index,
                    "--repository-url", "http://127.0.0.1:9/", env=env)  # fmt: skip
    assert done.returncode == 12, done.stdout + done.stderr
    assert "cannot reach http://127.0.0.1:9/" in done.stderr
    assert "Traceback" not in done.stderr
    done = uploader(tmp_path, static_server.url, "twfail", "1.0", *index,
                    "--repository-url", pypiserver.upload_url,
                    "--config-file", str(tmp_path / "no-pypirc"))  # fmt: skip
    assert done.returncode == 11, done.stdout + done.stderr
    assert "twine has no credentials for" in done.stderr
    assert pypiserver.files("twfail") == {}
