"""Real servers for the release tools' tests, on 127.0.0.1 free ports, stopped by PID:

- `python -m http.server` serving a directory (a container as a plain web server shows it);
- pypiserver (htpasswd auth for `update`, no fallback to another index);
- devpi-server (`--offline-mode`, no root/pypi mirror, cheap argon2) with an index root/dev.

Each fixture is a pytest fixture; tests import the ones they use.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.servers.common import LOOPBACK, free_port, stop_process, wait_for_port, wait_until

USER = "release"
PASSWORD = "s3cret-release"


def _spawn(argv: list[str], log: Path, cwd: Path | None = None) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(
            argv,
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        )


def _ok(url: str) -> bool:
    with urllib.request.urlopen(url, timeout=5) as response:
        return bool(response.status == 200)


@dataclass
class StaticServer:
    """`python -m http.server` on a directory."""

    root: Path
    port: int = 0
    process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://{LOOPBACK}:{self.port}/"

    def start(self) -> None:
        self.port = free_port()
        self.process = _spawn(
            [sys.executable, "-m", "http.server", "--bind", LOOPBACK, str(self.port)],
            self.root.parent / f"http-{self.port}.log",
            cwd=self.root,
        )
        wait_for_port(self.port, 20, self.process)

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process)


@pytest.fixture
def static_server(tmp_path: Path) -> Iterator[StaticServer]:
    """An http.server on tmp_path/container (empty at first; tests fill it)."""
    root = tmp_path / "container"
    root.mkdir()
    server = StaticServer(root)
    server.start()
    yield server
    server.stop()


@dataclass
class Index:
    """A running package index: where twine uploads, where pip reads."""

    kind: str
    upload_url: str
    simple_url: str
    root: Path
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def pypirc(self, path: Path, password: str = PASSWORD, name: str = "local") -> Path:
        path.write_text(
            f"[distutils]\nindex-servers =\n    {name}\n\n[{name}]\n"
            f"repository = {self.upload_url}\nusername = {USER}\npassword = {password}\n",
            encoding="utf-8",
        )
        return path

    def files(self, project: str) -> dict[str, str]:
        """{filename: sha256} as the index's simple page shows them."""
        from multibuild.release.pypi import existing_files
        from multibuild.util.http import Http

        http = Http()
        try:
            return existing_files(http, self.simple_url, project) or {}
        finally:
            http.close()

    def stop(self) -> None:
        for proc in self.processes:
            stop_process(proc)


def _htpasswd(path: Path) -> None:
    """An htpasswd file in Apache's {SHA} format (pypiserver reads it with passlib)."""
    digest = base64.b64encode(hashlib.sha1(PASSWORD.encode(), usedforsecurity=False).digest())
    path.write_text(f"{USER}:{{SHA}}{digest.decode()}\n", encoding="utf-8")


@pytest.fixture(scope="session")
def pypiserver(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    if shutil.which("pypi-server") is None:
        pytest.skip("pypiserver not installed (pip install '.[test]')")
    root = tmp_path_factory.mktemp("pypiserver")
    packages = root / "packages"
    packages.mkdir()
    _htpasswd(root / "htpasswd")
    port = free_port()
    argv = ["pypi-server", "run", "--host", LOOPBACK, "--port", str(port)]
    argv += ["--passwords", str(root / "htpasswd"), "--authenticate", "update"]
    argv += ["--disable-fallback", str(packages)]
    proc = _spawn(argv, root / "pypiserver.log")
    base = f"http://{LOOPBACK}:{port}/"
    index = Index("pypiserver", base, base + "simple/", packages, [proc])
    try:
        wait_for_port(port, 30, proc)
        wait_until(lambda: _ok(index.simple_url), 30, "pypiserver")
    except Exception:
        index.stop()
        raise
    yield index
    index.stop()


@pytest.fixture(scope="session")
def devpi(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Index]:
    if shutil.which("devpi-server") is None or shutil.which("devpi-init") is None:
        pytest.skip("devpi-server not installed (pip install '.[test]')")
    root = tmp_path_factory.mktemp("devpi")
    serverdir = root / "server"
    cheap = ["--argon2-memory-cost", "8", "--argon2-time-cost", "1", "--argon2-parallelism", "1"]
    init = subprocess.run(
        ["devpi-init", "--serverdir", str(serverdir), "--no-root-pypi", "--root-passwd", "rootpw"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stdout + init.stderr
    port = free_port()
    argv = ["devpi-server", "--serverdir", str(serverdir), "--host", LOOPBACK]
    argv += ["--port", str(port), "--offline-mode", *cheap]
    proc = _spawn(argv, root / "devpi.log")
    base = f"http://{LOOPBACK}:{port}"
    index = Index("devpi", f"{base}/{USER}/dev/", f"{base}/{USER}/dev/+simple/", root, [proc])
    try:
        wait_for_port(port, 60, proc)
        wait_until(lambda: _ok(f"{base}/+api"), 30, "devpi-server")
        _request(f"{base}/{USER}", {"password": PASSWORD}, ("root", "rootpw"))
        _request(
            f"{base}/{USER}/dev",
            {"type": "stage", "bases": [], "volatile": False},
            (USER, PASSWORD),
        )
    except Exception:
        index.stop()
        raise
    yield index
    index.stop()


def _request(url: str, data: dict[str, object], auth: tuple[str, str]) -> None:
    token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
    request = urllib.request.Request(
        url,
        data=json.dumps(data).encode(),
        method="PUT",
        headers={
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Authorization": f"Basic {token}",
        },
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        assert response.status in (200, 201), response.status


@dataclass
class GpgHome:
    home: Path
    fingerprint: str

    def env(self) -> dict[str, str]:
        return {"GNUPGHOME": str(self.home)}


@pytest.fixture(scope="session")
def gpg_home(tmp_path_factory: pytest.TempPathFactory) -> Iterator[GpgHome]:
    """A throwaway GNUPGHOME with one ed25519 signing key (no passphrase), set in the
    environment for the session; the agent is stopped afterwards."""
    if shutil.which("gpg") is None:
        pytest.skip("gpg not installed (.ci/apt-packages.txt: gnupg)")
    home = Path(tempfile_short_dir())
    home.chmod(0o700)
    env = {**os.environ, "GNUPGHOME": str(home)}
    subprocess.run(
        [
            "gpg", "--batch", "--pinentry-mode", "loopback", "--passphrase", "",
            "--quick-gen-key", "Release Tests <release@example.invalid>", "ed25519", "sign",
            "never",
        ],
        env=env, capture_output=True, check=True,
    )  # fmt: skip
    listing = subprocess.run(
        ["gpg", "--batch", "--with-colons", "--list-secret-keys"],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    fingerprint = next(
        line.split(":")[9] for line in listing.stdout.splitlines() if line.startswith("fpr:")
    )
    old = os.environ.get("GNUPGHOME")
    os.environ["GNUPGHOME"] = str(home)
    try:
        yield GpgHome(home, fingerprint)
    finally:
        subprocess.run(["gpgconf", "--kill", "all"], env=env, check=False)
        if old is None:
            os.environ.pop("GNUPGHOME", None)
        else:
            os.environ["GNUPGHOME"] = old
        shutil.rmtree(home, ignore_errors=True)


def tempfile_short_dir() -> str:
    """gpg-agent's socket path must be short: a directory under /tmp, not pytest's deep one."""
    import tempfile

    return tempfile.mkdtemp(prefix="gpg-")


class _PublicJson:
    """Stands in for the json module inside tests/servers/seaweedfs.py while it writes its
    s3.json: the same identities plus `anonymous` with Read and List (a public bucket)."""

    @staticmethod
    def dumps(obj: object, **kwargs: object) -> str:
        if isinstance(obj, dict) and "identities" in obj:
            anonymous = {"name": "anonymous", "actions": ["Read", "List"]}
            obj = {**obj, "identities": [*obj["identities"], anonymous]}
        return json.dumps(obj, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def public_seaweedfs(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """SeaweedFS (tests/servers/seaweedfs.py) whose buckets anyone may list and read: what a
    release bucket served over plain HTTP looks like."""
    from tests.servers import seaweedfs

    if seaweedfs.missing_tools():
        pytest.skip(f"SeaweedFS not installed: {', '.join(seaweedfs.missing_tools())}")
    server = seaweedfs.SeaweedFS(tmp_path_factory.mktemp("seaweedfs-public"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(seaweedfs, "json", _PublicJson)
        server.start()
    yield server
    server.stop()


class ShapingProxy:
    """A loopback TCP relay that behaves like a long-haul link: each request waits one round
    trip before it reaches the server, and each connection has `window` bytes in flight per
    round trip (TCP's bandwidth-delay limit), so one connection moves window/RTT at most. On
    127.0.0.1, in a thread of this process; a model of a CDN or remote Swift, not a
    measurement of one."""

    def __init__(
        self, upstream_port: int, rtt_s: float, window: int, hold_after: int | None = None
    ) -> None:
        self.upstream_port, self.rtt_s, self.window = upstream_port, rtt_s, window
        self.port = 0
        self._loop = asyncio.new_event_loop()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        # With `hold_after`: once that many bytes of wheels went through, every response
        # stops (`holding` is set) until `release()`: a test interrupts a download half-way
        # on an event, not a timer.
        self.hold_after = hold_after
        self.holding = threading.Event()
        self._wheel_bytes = 0
        self._gate: asyncio.Event | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def start(self) -> None:
        self._thread.start()
        self._ready.wait(10)

    def stop(self) -> None:
        async def shutdown() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
            self._loop.stop()

        asyncio.run_coroutine_threadsafe(shutdown(), self._loop)
        self._thread.join(10)

    def release(self) -> None:
        """Let held responses go on."""
        if self._gate is not None:
            self._loop.call_soon_threadsafe(self._gate.set)

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._gate = asyncio.Event()
        server = self._loop.run_until_complete(asyncio.start_server(self._client, "127.0.0.1", 0))
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        self._loop.run_forever()
        server.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.upstream_port)
        except OSError:
            writer.close()
            return

        wheel = [False]  # the connection's last request was for a wheel

        async def requests() -> None:
            while data := await reader.read(65536):
                await asyncio.sleep(self.rtt_s)  # the request's way there and the first byte's back
                wheel[0] = b".whl " in data.split(b"\r\n", 1)[0]
                up_writer.write(data)
                await up_writer.drain()
            up_writer.close()

        async def responses() -> None:
            assert self._gate is not None
            while data := await up_reader.read(self.window):
                writer.write(data)
                await writer.drain()
                if wheel[0] and self.hold_after is not None:
                    self._wheel_bytes += len(data)
                    if self._wheel_bytes >= self.hold_after:
                        self.holding.set()
                        await self._gate.wait()
                await asyncio.sleep(self.rtt_s)  # one window per round trip
            writer.close()

        try:
            await asyncio.gather(requests(), responses(), return_exceptions=True)
        except asyncio.CancelledError:  # the relay stops: end quietly
            writer.close()
            up_writer.close()


@pytest.fixture
def shaping_proxy() -> Iterator[Callable[..., ShapingProxy]]:
    """Starts ShapingProxy(upstream_port, rtt_s, window[, hold_after]) relays; stops them
    afterwards."""
    started: list[ShapingProxy] = []

    def start(
        upstream_port: int, rtt_s: float, window: int, hold_after: int | None = None
    ) -> ShapingProxy:
        proxy = ShapingProxy(upstream_port, rtt_s, window, hold_after)
        proxy.start()
        started.append(proxy)
        return proxy

    yield start
    for proxy in started:
        proxy.stop()
