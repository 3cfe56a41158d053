"""A real single-node OpenStack Swift on 127.0.0.1: tempauth, s3api, staticweb, SLO.

One device on a plain directory, one replica, `workers = 0` (one process per server), rings
built in one Python process. Each server runs in its own session and is stopped by its PID.
Debian's packages (swift-proxy, swift-account, swift-container, swift-object, memcached) or
PyPI's `swift` plus Debian's memcached.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers.common import LOOPBACK, free_port, stop_process, wait_for_port, wait_until

ACCOUNT = "test"
USER = "tester"
KEY = "testing"
# A second user without .admin: may not create containers in the account (a 403).
READER = "reader"
READER_KEY = "reading"
SERVERS = ("account", "container", "object")

_RINGS = r"""
import sys
from swift.common.ring import RingBuilder
swift_dir, ports = sys.argv[1], sys.argv[2:]
for name, port in zip(("account", "container", "object"), ports):
    builder = RingBuilder(6, 1, 1)
    builder.add_dev({"id": 0, "region": 1, "zone": 1, "ip": "127.0.0.1", "port": int(port),
                     "device": "d1", "weight": 100.0, "meta": ""})
    builder.rebalance()
    builder.get_ring().save(f"{swift_dir}/{name}.ring.gz")
"""

_SWIFT_CONF = """\
[swift-hash]
swift_hash_path_suffix = multibuild-tests
swift_hash_path_prefix = multibuild-tests

[storage-policy:0]
name = Policy-0
default = yes
"""


def _server_conf(kind: str, port: int, devices: Path, swift_dir: Path, log_port: int) -> str:
    return f"""\
[DEFAULT]
bind_ip = {LOOPBACK}
bind_port = {port}
workers = 0
user = root
mount_check = false
devices = {devices}
swift_dir = {swift_dir}
log_udp_host = {LOOPBACK}
log_udp_port = {log_port}
log_level = WARNING

[pipeline:main]
pipeline = {kind}-server

[app:{kind}-server]
use = egg:swift#{kind}
"""


PIPELINE = [
    "catch_errors",
    "gatekeeper",
    "healthcheck",
    "proxy-logging",
    "cache",
    "listing_formats",
    "bulk",
    "s3api",
    "tempauth",
    "staticweb",
    "copy",
    "slo",
    "dlo",
    "proxy-logging",
    "proxy-server",
]


def _proxy_conf(port: int, swift_dir: Path, memcached_port: int, log_port: int) -> str:
    return f"""\
[DEFAULT]
bind_ip = {LOOPBACK}
bind_port = {port}
workers = 0
user = root
swift_dir = {swift_dir}
log_udp_host = {LOOPBACK}
log_udp_port = {log_port}
log_level = WARNING

[pipeline:main]
pipeline = {" ".join(PIPELINE)}

[app:proxy-server]
use = egg:swift#proxy
account_autocreate = true
allow_account_management = true

[filter:tempauth]
use = egg:swift#tempauth
user_{ACCOUNT}_{USER} = {KEY} .admin
user_{ACCOUNT}_{READER} = {READER_KEY}

[filter:s3api]
use = egg:swift#s3api
location = us-east-1

[filter:staticweb]
use = egg:swift#staticweb

[filter:cache]
use = egg:swift#memcache
memcache_servers = {LOOPBACK}:{memcached_port}

[filter:catch_errors]
use = egg:swift#catch_errors
[filter:gatekeeper]
use = egg:swift#gatekeeper
[filter:healthcheck]
use = egg:swift#healthcheck
[filter:proxy-logging]
use = egg:swift#proxy_logging
[filter:listing_formats]
use = egg:swift#listing_formats
[filter:bulk]
use = egg:swift#bulk
[filter:copy]
use = egg:swift#copy
[filter:slo]
use = egg:swift#slo
[filter:dlo]
use = egg:swift#dlo
"""


SHM = "/dev/shm"


def _tmpfs_dir() -> Path | None:
    try:
        path = Path(tempfile.mkdtemp(prefix="swift-test-", dir=SHM))
    except OSError:
        return None
    probe = path / "probe"
    try:
        probe.touch()
        os.setxattr(probe, "user.swift.test", b"x" * 4096)
    except OSError:
        shutil.rmtree(path, ignore_errors=True)
        return None
    probe.unlink()
    return path


def swift_python() -> str | None:
    """The Python that has Swift installed (the one swift-proxy-server runs with)."""
    proxy = shutil.which("swift-proxy-server")
    if proxy is None:
        return None
    first = Path(proxy).read_text(encoding="utf-8", errors="replace").splitlines()[0]
    if first.startswith("#!"):
        return first[2:].strip().split()[0]
    return None


def missing_tools() -> list[str]:
    return [
        tool
        for tool in ("memcached", *(f"swift-{s}-server" for s in (*SERVERS, "proxy")))
        if shutil.which(tool) is None
    ]


@dataclass
class SwiftServer:
    """A running single-node Swift; `auth_url` is tempauth's v1 endpoint."""

    root: Path
    # The object data: on tmpfs when it takes user xattrs (fast, and no ext4 xattr cap).
    data_dir: Path | None = None
    proxy_port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    startup_s: float = 0.0

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.proxy_port}"

    @property
    def auth_url(self) -> str:
        return f"{self.endpoint}/auth/v1.0"

    @property
    def storage_url(self) -> str:
        return f"{self.endpoint}/v1/AUTH_{ACCOUNT}"

    def env(self, auth_url: str | None = None) -> dict[str, str]:
        """The `swift` command line's variables for the admin user."""
        return {"ST_AUTH": auth_url or self.auth_url, "ST_USER": f"{ACCOUNT}:{USER}", "ST_KEY": KEY}

    def s3_env(self, endpoint: str | None = None) -> dict[str, str]:
        """boto3's variables for s3api (tempauth: access key `account:user`, secret the key)."""
        return {
            "AWS_ACCESS_KEY_ID": f"{ACCOUNT}:{USER}",
            "AWS_SECRET_ACCESS_KEY": KEY,
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> None:
        started = time.monotonic()
        python = swift_python()
        if python is None:
            raise RuntimeError("swift-proxy-server is not installed")
        etc = self.root / "etc"
        if self.data_dir is None:
            self.data_dir = _tmpfs_dir() or self.root / "srv"
        devices = self.data_dir
        logs = self.root / "logs"
        for directory in (etc, devices / "d1", logs):
            directory.mkdir(parents=True, exist_ok=True)
        (etc / "swift.conf").write_text(_SWIFT_CONF, encoding="utf-8")
        if not Path("/etc/swift/swift.conf").exists():
            # Swift reads /etc/swift/swift.conf before it reads swift_dir; PyPI's swift
            # ships none. We run as root in CI; a missing file is the only thing we write.
            Path("/etc/swift").mkdir(parents=True, exist_ok=True)
            Path("/etc/swift/swift.conf").write_text(_SWIFT_CONF, encoding="utf-8")
        ports = {kind: free_port() for kind in SERVERS}
        self.proxy_port = free_port()
        memcached_port = free_port()
        log_port = free_port()  # syslog over UDP to a loopback port nobody reads
        subprocess.run([python, "-c", _RINGS, str(etc), *map(str, ports.values())], check=True)
        self._spawn(
            ["memcached", "-l", LOOPBACK, "-p", str(memcached_port), "-U", "0", "-u", "root"],
            logs / "memcached.log",
        )
        for kind, port in ports.items():
            conf = etc / f"{kind}-server.conf"
            conf.write_text(_server_conf(kind, port, devices, etc, log_port), encoding="utf-8")
            self._spawn([f"swift-{kind}-server", str(conf), "-v"], logs / f"{kind}.log")
        conf = etc / "proxy-server.conf"
        conf.write_text(_proxy_conf(self.proxy_port, etc, memcached_port, log_port), "utf-8")
        self._spawn(["swift-proxy-server", str(conf), "-v"], logs / "proxy.log")
        try:
            wait_for_port(memcached_port, 20, self.processes[0])
            for proc, port in zip(
                self.processes[1:], [*ports.values(), self.proxy_port], strict=True
            ):
                wait_for_port(port, 60, proc)
            wait_until(self._authenticates, 30, "Swift tempauth")
        except Exception:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started

    def _authenticates(self) -> bool:
        request = urllib.request.Request(
            self.auth_url, headers={"X-Auth-User": f"{ACCOUNT}:{USER}", "X-Auth-Key": KEY}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            token = response.headers["X-Auth-Token"]
        # The account is made on first use; a HEAD proves the whole chain works.
        request = urllib.request.Request(
            self.storage_url, method="HEAD", headers={"X-Auth-Token": token}
        )
        with urllib.request.urlopen(request, timeout=5) as response:
            return bool(response.status < 300)

    def _spawn(self, argv: list[str], log: Path) -> None:
        with log.open("ab") as out:
            self.processes.append(
                subprocess.Popen(
                    argv,
                    stdin=subprocess.DEVNULL,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,  # Swift signals its whole process group
                    env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
                )
            )

    def stop(self) -> None:
        for proc in reversed(self.processes):
            stop_process(proc)
        self.processes.clear()
        if self.data_dir is not None and self.data_dir.parent == Path(SHM):
            shutil.rmtree(self.data_dir, ignore_errors=True)

    def logs(self) -> str:
        parts = []
        for log in sorted((self.root / "logs").glob("*.log")):
            parts.append(f"== {log.name}\n{log.read_text(errors='replace')[-4000:]}")
        return "\n".join(parts)
