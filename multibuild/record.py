"""The build record (JSON, beside the wheels) and the one-screen summary."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.utils import parse_wheel_filename

from multibuild.log import format_duration
from multibuild.util.files import sha256_file

SCHEMA = 1


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


@dataclass(kw_only=True)
class WheelInfo:
    name: str
    size: int
    sha256: str
    platform_tag: str

    @classmethod
    def of(cls, wheel: Path) -> WheelInfo:
        tags = sorted({tag.platform for tag in parse_wheel_filename(wheel.name)[3]})
        return cls(
            name=wheel.name,
            size=wheel.stat().st_size,
            sha256=sha256_file(wheel),
            platform_tag=".".join(tags),
        )


@dataclass(kw_only=True)
class PythonBuild:
    python: str
    status: str = "running"
    duration_s: float = 0.0
    steps: dict[str, float] = field(default_factory=dict)
    libraries: list[dict[str, Any]] = field(default_factory=list)
    wheels: list[WheelInfo] = field(default_factory=list)
    repair: dict[str, Any] = field(default_factory=dict)
    tests: dict[str, Any] = field(default_factory=dict)
    ccache: dict[str, float] | None = None
    error: str | None = None


@dataclass(kw_only=True)
class BuildRecord:
    project: str
    platform: str
    plat: str
    started: str = field(default_factory=utc_now)
    stamp: str = field(default_factory=stamp)
    version: str | None = None
    status: str = "running"
    finished: str | None = None
    duration_s: float = 0.0
    source: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    builds: list[PythonBuild] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0
    _t0: float = field(default_factory=time.monotonic, repr=False)

    @property
    def build_id(self) -> str:
        parts = [
            self.project,
            self.version or "unknown",
            f"{self.platform}_{self.plat}",
            self.stamp,
        ]
        return "-".join(p.replace("-", "_") for p in parts)

    def finish(self, status: str) -> None:
        self.status = status
        self.finished = utc_now()
        self.duration_s = round(time.monotonic() - self._t0, 3)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("_t0")
        data.pop("stamp")
        return {"schema": SCHEMA, "build_id": self.build_id, **data, "log": f"{self.build_id}.log"}

    def write(self, wheelhouse: Path) -> Path:
        wheelhouse.mkdir(parents=True, exist_ok=True)
        path = wheelhouse / f"{self.build_id}.json"
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(self.to_json(), indent=2) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def summary(self) -> str:
        lines = [
            "",
            "=" * 72,
            f"{self.project} {self.version or '?'}: {self.status.upper()} "
            f"in {format_duration(self.duration_s)}",
        ]
        src = self.source
        if src.get("kind") == "git":
            lines.append(f"source   {src['url']} @ {src['ref']} = {src['commit'][:12]}")
        elif src:
            lines.append(f"source   {src.get('path')} sha256 {src.get('sha256', '')[:16]}…")
        for build in self.builds:
            steps = "  ".join(f"{k} {format_duration(v)}" for k, v in build.steps.items())
            lines.append(f"python {build.python}: {build.status}  ({steps})")
            for lib in build.libraries:
                how = "cached" if lib.get("cached") else "built"
                lines.append(
                    f"    library {lib['name']} {lib['version']}: {how} {lib['seconds']:.2f}s"
                )
            for wheel in build.wheels:
                lines.append(
                    f"    {wheel.name}  {wheel.size / 1e6:.2f} MB  sha256 {wheel.sha256[:16]}…"
                )
            if build.repair.get("grafted"):
                grafted = ", ".join(Path(g).name for g in build.repair["grafted"])
                lines.append(f"    grafted: {grafted}")
            if build.repair.get("policy"):
                lines.append(f"    policy: {build.repair['policy']}")
            if build.ccache:
                lines.append(
                    f"    ccache: {build.ccache['hits']:.0f} hits, "
                    f"{build.ccache['misses']:.0f} misses ({build.ccache['hit_rate']:.0%})"
                )
            if build.tests.get("counts"):
                counts = ", ".join(f"{n} {k}" for k, n in build.tests["counts"].items())
                lines.append(f"    tests: {counts}")
        if self.error:
            lines.append(f"error: {self.error.splitlines()[0]}")
        lines.append("=" * 72)
        return "\n".join(lines)
