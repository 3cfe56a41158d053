"""The build record: written as JSON beside the wheels (`<build-id>.json`, schema 1) whatever
the outcome, and read back, typed, by everything that shows or uses records (the upload's
pages and retention, the release tools). Reading never trusts the file: a record from a
container may be old, partial or hostile, and whatever it lacks reads as empty."""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from packaging.utils import parse_wheel_filename

from multibuild.util.durations import format_duration
from multibuild.util.files import sha256_file
from multibuild.util.secrets import NO_SECRETS, Redactor
from multibuild.util.sizes import format_size

SCHEMA = 1


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def stamp() -> str:
    return datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")


def _str(data: dict[str, Any], key: str) -> str:
    value = data.get(key)
    return value if isinstance(value, str) else ""


def _number(data: dict[str, Any], key: str) -> float:
    value = data.get(key)
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    return 0.0


def _dict(data: dict[str, Any], key: str) -> dict[str, Any]:
    value = data.get(key)
    return value if isinstance(value, dict) else {}


def _dicts(data: dict[str, Any], key: str) -> list[dict[str, Any]]:
    value = data.get(key)
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


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

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> WheelInfo:
        return cls(
            name=_str(data, "name"),
            size=int(_number(data, "size")),
            sha256=_str(data, "sha256").lower(),
            platform_tag=_str(data, "platform_tag"),
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
    # Why there are no ccache figures, or what the cache started from (a restored CI cache)
    ccache_note: str = ""
    # What meson's build dir kept in the build cache held (cibuildwheel's container route).
    build_dir: str = ""
    # Variables pre_build exported for the wheel build (their names).
    exported: list[str] = field(default_factory=list)
    error: str | None = None

    def summary_lines(self) -> list[str]:
        """This Python's lines of the build's summary."""
        lines: list[str] = []
        steps = "  ".join(f"{k} {format_duration(v)}" for k, v in self.steps.items())
        lines.append(f"python {self.python}: {self.status}  ({steps})")
        for lib in self.libraries:
            how = "cached" if lib.get("cached") else "built"
            lines.append(f"    library {lib['name']} {lib['version']}: {how} {lib['seconds']:.2f}s")
        for wheel in self.wheels:
            lines.append(
                f"    {wheel.name}  {format_size(wheel.size)}  sha256 {wheel.sha256[:16]}…"
            )
        if self.repair.get("grafted"):
            grafted = ", ".join(Path(g).name for g in self.repair["grafted"])
            lines.append(f"    grafted: {grafted}")
        if self.repair.get("policy"):
            lines.append(f"    policy: {self.repair['policy']}")
        if self.ccache:
            lines.append(
                f"    ccache: {self.ccache['hits']:.0f} hits, "
                f"{self.ccache['misses']:.0f} misses ({self.ccache['hit_rate']:.0%})"
            )
        if self.ccache_note:
            lines.append(f"    ccache: {self.ccache_note}")
        if self.build_dir:
            lines.append(f"    build dir: {self.build_dir}")
        if self.tests.get("counts"):
            counts = ", ".join(f"{n} {k}" for k, n in self.tests["counts"].items())
            lines.append(f"    tests: {counts}")
        return lines

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PythonBuild:
        return cls(
            python=_str(data, "python"),
            status=_str(data, "status"),
            duration_s=_number(data, "duration_s"),
            steps={
                k: float(v) for k, v in _dict(data, "steps").items() if isinstance(v, (int, float))
            },
            libraries=_dicts(data, "libraries"),
            wheels=[WheelInfo.from_json(w) for w in _dicts(data, "wheels")],
            repair=_dict(data, "repair"),
            tests=_dict(data, "tests"),
            ccache={
                k: float(v) for k, v in _dict(data, "ccache").items() if isinstance(v, (int, float))
            }
            or None,
            ccache_note=_str(data, "ccache_note"),
            build_dir=_str(data, "build_dir"),
            error=_str(data, "error") or None,
        )


@dataclass(kw_only=True)
class BuildRecord:
    project: str
    platform: str
    plat: str
    # The matrix cell's variant ("musllinux", "accelerate"; "" for the default build): its
    # builds are another line of the history, kept apart by the retention.
    variant: str = ""
    # The CI job that built it (cp312-manylinux_x86_64, ...), part of the build id: the six
    # Python jobs of one PLAT that finish in the same second must not share a record's name.
    job: str = ""
    started: str = field(default_factory=utc_now)
    stamp: str = field(default_factory=stamp)
    version: str | None = None
    status: str = "running"
    finished: str | None = None
    duration_s: float = 0.0
    source: dict[str, str] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    tools: dict[str, str] = field(default_factory=dict)
    # The commit of the repository holding the config.sh (this wheels repository) that built
    # it: {"commit": hash, "modified": "yes" when its tracked files had changes}.
    recipe: dict[str, str] = field(default_factory=dict)
    # What decides the wheels' bytes besides the sources and tools: SOURCE_DATE_EPOCH, ...
    inputs: dict[str, Any] = field(default_factory=dict)
    builds: list[PythonBuild] = field(default_factory=list)
    error: str | None = None
    exit_code: int = 0
    # Where the upload came from (multibuild.ci.providers), added when it is uploaded.
    ci: dict[str, Any] = field(default_factory=dict)
    # The id a record read back carries (a record written here computes its own).
    recorded_id: str = field(default="", repr=False)
    _t0: float = field(default_factory=time.monotonic, repr=False)

    @property
    def build_id(self) -> str:
        if self.recorded_id:
            return self.recorded_id
        parts = [
            self.project,
            self.version or "unknown",
            f"{self.platform}_{self.plat}" + (f"_{self.variant}" if self.variant else ""),
            *([self.job] if self.job else []),
            self.stamp,
        ]
        return "-".join(p.replace("-", "_") for p in parts)

    @property
    def log_name(self) -> str:
        return f"{self.build_id}.log"

    def finish(self, status: str) -> None:
        self.status = status
        self.finished = utc_now()
        self.duration_s = round(time.monotonic() - self._t0, 3)

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        for private in ("_t0", "stamp", "recorded_id"):
            data.pop(private)
        if not data["ci"]:
            data.pop("ci")
        return {"schema": SCHEMA, "build_id": self.build_id, **data, "log": self.log_name}

    @classmethod
    def from_json(cls, data: Any) -> BuildRecord | None:
        """A record read back; None when `data` is not a schema-1 build record."""
        if not isinstance(data, dict) or data.get("schema") != SCHEMA:
            return None
        build_id = _str(data, "build_id")
        if not build_id:
            return None
        return cls(
            project=_str(data, "project"),
            platform=_str(data, "platform"),
            plat=_str(data, "plat"),
            variant=_str(data, "variant"),
            job=_str(data, "job"),
            started=_str(data, "started"),
            version=_str(data, "version") or None,
            status=_str(data, "status"),
            finished=_str(data, "finished") or None,
            duration_s=_number(data, "duration_s"),
            source={k: str(v) for k, v in _dict(data, "source").items()},
            settings=_dict(data, "settings"),
            tools={k: str(v) for k, v in _dict(data, "tools").items()},
            recipe={k: str(v) for k, v in _dict(data, "recipe").items()},
            inputs=_dict(data, "inputs"),
            builds=[PythonBuild.from_json(b) for b in _dicts(data, "builds")],
            error=_str(data, "error") or None,
            exit_code=int(_number(data, "exit_code")),
            ci=_dict(data, "ci"),
            recorded_id=build_id,
        )

    def started_at(self) -> datetime:
        try:
            value = datetime.fromisoformat(self.started.replace("Z", "+00:00"))
        except ValueError:
            return datetime.min.replace(tzinfo=timezone.utc)
        return value if value.tzinfo else value.replace(tzinfo=timezone.utc)

    def write(self, wheelhouse: Path, redact: Redactor = NO_SECRETS) -> Path:
        """`<build-id>.json` in the wheelhouse (by one rename), through the run's Redactor:
        an error holding a hook's output keeps no secret."""
        wheelhouse.mkdir(parents=True, exist_ok=True)
        path = wheelhouse / f"{self.build_id}.json"
        tmp = path.with_name(path.name + f".tmp-{os.getpid()}")
        tmp.write_text(redact(json.dumps(self.to_json(), indent=2)) + "\n", encoding="utf-8")
        tmp.replace(path)
        return path

    def summary(self) -> str:
        src = self.source
        # Before the source is had there is no version: say what was asked for instead.
        what = self.version or src.get("ref") or src.get("spec") or self.build_id
        code = f" (exit code {self.exit_code})" if self.exit_code else ""
        lines = [
            "",
            "=" * 72,
            f"{self.project} {what}: {self.status.upper()}{code} "
            f"in {format_duration(self.duration_s)}",
        ]
        if src.get("kind") == "git":
            commit = f" = {src['commit'][:12]}" if src.get("commit") else " (not fetched)"
            lines.append(f"source   {src['url']} @ {src['ref']}{commit}")
        elif src.get("sha256"):
            lines.append(f"source   sdist {src.get('path')}  sha256 {src['sha256'][:16]}…")
        elif src:
            lines.append(f"source   sdist {src.get('spec')} (not fetched)")
        for build in self.builds:
            lines.extend(build.summary_lines())
        if self.error:
            # The whole message: its first line often ends in a colon before the cause.
            first, *rest = self.error.strip().splitlines() or [""]
            lines.append(f"error: {first}")
            lines.extend(f"       {line}" for line in rest[:12])
        lines.append("=" * 72)
        return "\n".join(lines)
