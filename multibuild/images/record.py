"""The record of a local build image, as a build record is kept for a build: what the image
holds (suite, glibc, compilers, every Debian package with its version, each CPython with its
source), its content key and how it was made. Written as JSON beside the image cache
(images/records/<tag>.json) and into the image (/opt/_internal/image.json); the image's labels
carry the summary, so an image found without its JSON still says what it is.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from multibuild.images.recipe import LABEL_PREFIX, RECIPE_VERSION
from multibuild.util.durations import format_duration

SCHEMA = 1
KIND = "multibuild-image"


def label(name: str) -> str:
    return f"{LABEL_PREFIX}.{name}"


@dataclass(kw_only=True)
class ImageRecord:
    reference: str  # repository:tag
    content_key: str
    suite: str
    glibc: str
    libc6: str  # Debian's version of libc6
    platform_tag: str  # manylinux_2_31_x86_64: the best tag its wheels reach
    pythons: dict[str, dict[str, Any]]  # tag -> version, path, pip, build, source
    tools: dict[str, str]  # gcc, g++, gfortran, cmake, auditwheel, patchelf
    packages: dict[str, str]  # every Debian package of the root -> version
    created: str = ""
    recipe: int = RECIPE_VERSION
    stages: dict[str, dict[str, Any]] = field(default_factory=dict)
    build_seconds: float = 0.0
    image_id: str = ""
    size: int = 0

    @property
    def tag(self) -> str:
        return self.reference.rpartition(":")[2]

    @property
    def packages_sha256(self) -> str:
        text = "".join(f"{name} {version}\n" for name, version in sorted(self.packages.items()))
        return hashlib.sha256(text.encode()).hexdigest()

    def labels(self) -> dict[str, str]:
        """The summary the image carries (one label each: podman takes `LABEL a=1 b=2` as one)."""
        sources = sorted(
            f"{p['source']['file']}=sha256:{p['source']['sha256']}"
            for p in self.pythons.values()
            if p.get("source")
        )
        return {
            label("content-key"): self.content_key,
            label("recipe"): str(self.recipe),
            label("suite"): self.suite,
            label("glibc"): self.glibc,
            label("libc6"): self.libc6,
            label("platform-tag"): self.platform_tag,
            label("pythons"): ",".join(
                f"{tag}={info.get('version', '')}" for tag, info in sorted(self.pythons.items())
            ),
            label("cpython-sources"): ",".join(sorted(set(sources))),
            label("packages-sha256"): self.packages_sha256,
            label("gcc"): self.tools.get("gcc", ""),
        }

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "kind": KIND, **asdict(self)}

    @classmethod
    def from_json(cls, data: Any) -> ImageRecord | None:
        if not isinstance(data, dict) or data.get("kind") != KIND or data.get("schema") != SCHEMA:
            return None
        fields = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        try:
            return cls(**fields)
        except TypeError:
            return None

    @classmethod
    def from_labels(cls, reference: str, labels: dict[str, str]) -> ImageRecord | None:
        """What an image's labels say, for an image whose JSON is not at hand."""
        key = labels.get(label("content-key"))
        if not key:
            return None
        pythons: dict[str, dict[str, Any]] = {}
        for item in filter(None, labels.get(label("pythons"), "").split(",")):
            tag, _, version = item.partition("=")
            pythons[tag] = {"version": version, "path": f"/opt/python/{tag}"}
        return cls(
            reference=reference,
            content_key=key,
            suite=labels.get(label("suite"), ""),
            glibc=labels.get(label("glibc"), ""),
            libc6=labels.get(label("libc6"), ""),
            platform_tag=labels.get(label("platform-tag"), ""),
            pythons=pythons,
            tools={"gcc": labels.get(label("gcc"), "")},
            packages={},
            recipe=int(labels.get(label("recipe"), "0") or 0),
        )

    def write(self, directory: Path) -> Path:
        directory.mkdir(parents=True, exist_ok=True)
        path = directory / f"{self.tag}.json"
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        partial.write_text(json.dumps(self.to_json(), indent=1) + "\n", encoding="utf-8")
        partial.replace(path)
        return path

    def summary(self) -> str:
        pythons = ", ".join(
            f"{tag} ({info.get('version', '?')})" for tag, info in sorted(self.pythons.items())
        )
        lines = [
            f"image      {self.reference}",
            f"content    {self.content_key}",
            f"root       Debian {self.suite}, glibc {self.glibc} (libc6 {self.libc6}), "
            f"{len(self.packages)} packages",
            f"wheels     {self.platform_tag} at best",
            f"compilers  gcc {self.tools.get('gcc', '?')}, "
            f"gfortran {self.tools.get('gfortran', '?')}",
            f"pythons    {pythons}",
            f"tools      auditwheel {self.tools.get('auditwheel', '?')}, "
            f"patchelf {self.tools.get('patchelf', '?')}",
        ]
        for tag, info in sorted(self.pythons.items()):
            source = info.get("source")
            if source:
                lines.append(
                    f"  {tag}: {source['file']} from Debian's {source['package']} "
                    f"{source.get('debian_version') or ''} sha256 {source['sha256'][:16]}..."
                )
        if self.stages:
            made = ", ".join(
                f"{name} {'reused' if s.get('reused') else format_duration(s.get('seconds', 0))}"
                for name, s in self.stages.items()
            )
            lines.append(f"stages     {made}")
        if self.build_seconds:
            lines.append(f"built in   {format_duration(self.build_seconds)}")
        return "\n".join(lines)


def read_record(path: Path) -> ImageRecord | None:
    try:
        return ImageRecord.from_json(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return None
