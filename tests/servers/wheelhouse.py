"""Small wheelhouses made by the tests: real (installable) wheels, build records, logs."""

from __future__ import annotations

import base64
import hashlib
import json
import zipfile
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

HASH = "0123456789abcdef0123456789abcdef01234567"


def make_wheel(
    directory: Path,
    name: str,
    version: str,
    tag: str,
    *,
    payload: str = "",
    requires: tuple[str, ...] = (),
) -> Path:
    """A minimal valid wheel (pip installs it); `payload` changes its bytes; `requires` are
    its Requires-Dist."""
    directory.mkdir(parents=True, exist_ok=True)
    dist = f"{name}-{version}.dist-info"
    metadata = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n" + "".join(
        f"Requires-Dist: {requirement}\n" for requirement in requires
    )
    files = {
        f"{name}/__init__.py": f"VERSION = {version!r}\nPAYLOAD = {payload!r}\n",
        f"{dist}/METADATA": metadata,
        f"{dist}/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: tests\nRoot-Is-Purelib: true\nTag: {tag}\n"
        ),
    }
    record_lines = []
    for path, text in files.items():
        digest = base64.urlsafe_b64encode(hashlib.sha256(text.encode()).digest()).rstrip(b"=")
        record_lines.append(f"{path},sha256={digest.decode()},{len(text.encode())}")
    record_lines.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record_lines) + "\n"
    wheel = directory / f"{name}-{version}-{tag}.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        for path, text in files.items():
            info = zipfile.ZipInfo(path, date_time=(2026, 1, 1, 0, 0, 0))
            archive.writestr(info, text)
    return wheel


def make_build(
    directory: Path,
    *,
    name: str = "pkg",
    version: str = "1.0",
    platform: str = "linux",
    plat: str = "x86_64",
    pythons: tuple[str, ...] = ("3.11",),
    started: datetime | None = None,
    payload: str = "",
    log_text: str = "building...\nok\n",
    status: str = "success",
    ref: str = "v1.0",
) -> dict[str, Any]:
    """Wheels (one per Python), a schema-1 record and a log, as the engine leaves them."""
    started = started or datetime(2026, 11, 23, 23, 52, tzinfo=timezone.utc)
    build_id = f"{name}-{version}-{platform}_{plat}-{started:%Y%m%dT%H%M%SZ}"
    builds = []
    for python in pythons:
        cp = "cp" + python.replace(".", "")
        platform_tag = {
            "linux": f"manylinux_2_36_{plat}",
            "macos": f"macosx_11_0_{plat}",
            "windows": "win_amd64",
        }[platform]
        # Pure-python payload, platform-tagged name: pip installs it on this machine only for
        # the py3-none-any form, which the tests ask for by passing tag explicitly.
        tag = f"{cp}-{cp}-{platform_tag}" if platform_tag else "py3-none-any"
        wheel = make_wheel(directory, name, version, tag, payload=payload)
        data = wheel.read_bytes()
        builds.append(
            {
                "python": python,
                "status": status,
                "duration_s": 61.5,
                "steps": {"pre_build": 1.0, "build": 50.0, "repair": 3.0, "test": 7.5},
                "wheels": [
                    {
                        "name": wheel.name,
                        "size": len(data),
                        "sha256": hashlib.sha256(data).hexdigest(),
                        "platform_tag": platform_tag,
                    }
                ],
            }
        )
    record = {
        "schema": 1,
        "build_id": build_id,
        "project": name,
        "version": version,
        "status": status,
        "started": started.isoformat().replace("+00:00", "Z"),
        "finished": (started + timedelta(minutes=2)).isoformat().replace("+00:00", "Z"),
        "duration_s": 120.0,
        "platform": platform,
        "plat": plat,
        "source": {"kind": "git", "url": "https://example.org/x.git", "ref": ref, "commit": HASH},
        "tools": {"python": "3.11.7"},
        "log": f"{build_id}.log",
        "builds": builds,
    }
    (directory / f"{build_id}.json").write_text(json.dumps(record, indent=2))
    (directory / f"{build_id}.log").write_text(log_text)
    return record
