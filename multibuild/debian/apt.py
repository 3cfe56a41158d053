"""The system's apt, read once: its source files (deb822 .sources and one-line .list), their
enabled `deb` entries, and apt-get run with a private state for what is fetched from them.

multibuild.debian.source derives deb-src entries from these entries; multibuild.debian.archive
finds the Debian archive among them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from multibuild.errors import LibraryError, SystemDependencyError
from multibuild.util.cmd import check
from multibuild.util.files import remove_tree

APT_ETC = Path("/etc/apt")


def parse_control(text: str) -> dict[str, str]:
    """One deb822 paragraph: field name -> value (continuation lines joined with newlines)."""
    fields: dict[str, str] = {}
    current: str | None = None
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # only the first paragraph
            continue
        if line.startswith("#"):
            continue
        if line[0] in " \t":
            if current is None:
                raise LibraryError(f"continuation line before any field: {line!r}")
            fields[current] += "\n" + line.strip()
            continue
        name, colon, value = line.partition(":")
        if not colon:
            raise LibraryError(f"not a field: {line!r}")
        current = name.strip()
        fields[current] = value.strip()
    return fields


def _paragraphs(text: str) -> list[str]:
    kept = [line for line in text.splitlines() if not line.lstrip().startswith("#")]
    return [p for p in re.split(r"\n\s*\n", "\n".join(kept)) if p.strip()]


def deb_stanzas(text: str) -> list[dict[str, str]]:
    """The enabled stanzas of type `deb` of a deb822 (.sources) file, parsed."""
    stanzas = [parse_control(paragraph) for paragraph in _paragraphs(text)]
    return [
        fields
        for fields in stanzas
        if "deb" in fields.get("Types", "").split() and fields.get("Enabled", "yes").lower() != "no"
    ]


def deb_lines(text: str) -> list[list[str]]:
    """The `deb` entries of a one-line (.list) file, each as its words after `deb`
    (`[options] URI SUITE COMPONENT...`); comments and other types dropped."""
    entries = []
    for line in text.splitlines():
        words = line.split("#", 1)[0].split()
        if words and words[0] == "deb":
            entries.append(words[1:])
    return entries


@dataclass(frozen=True)
class SourceFile:
    """One of the system's apt source files, read."""

    path: Path
    text: str

    @property
    def deb822(self) -> bool:
        return self.path.suffix == ".sources"


def apt_source_files(apt_etc: Path = APT_ETC) -> list[Path]:
    """The system's apt source files: sources.list, then sources.list.d's in name order."""
    files: list[Path] = []
    if (apt_etc / "sources.list").is_file():
        files.append(apt_etc / "sources.list")
    parts = apt_etc / "sources.list.d"
    if parts.is_dir():
        files += sorted(p for p in parts.iterdir() if p.suffix in (".list", ".sources"))
    return files


def system_sources(apt_etc: Path = APT_ETC) -> list[SourceFile]:
    """The system's apt source files, read, in apt's order."""
    return [
        SourceFile(path, path.read_text(encoding="utf-8", errors="replace"))
        for path in apt_source_files(apt_etc)
    ]


class PrivateApt:
    """apt-get with its own source list, lists and cache under `root`; the system's apt
    configuration (proxies, keyrings named by Signed-By) still applies."""

    def __init__(self, root: Path, entries: dict[str, str]) -> None:
        if not entries:
            raise LibraryError("no deb entries in the apt sources to derive deb-src entries from")
        if shutil.which("apt-get") is None:
            raise SystemDependencyError("fetching a Debian source package needs apt-get")
        self.root = root
        parts = root / "sources.list.d"
        remove_tree(parts)
        parts.mkdir(parents=True)
        for name, text in entries.items():
            (parts / name).write_text(text)
        for sub in ("lists/partial", "cache/archives/partial"):
            (root / sub).mkdir(parents=True, exist_ok=True)

    def options(self) -> list[str]:
        options = {
            "Dir::Etc::SourceList": "/dev/null",
            "Dir::Etc::SourceParts": str(self.root / "sources.list.d"),
            "Dir::State::Lists": str(self.root / "lists"),
            "Dir::Cache": str(self.root / "cache"),
            "Debug::NoLocking": "1",
        }
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            options["APT::Sandbox::User"] = "root"  # _apt cannot write our private dirs
        return [arg for key, value in options.items() for arg in ("-o", f"{key}={value}")]

    def run(self, args: Sequence[str], cwd: Path | None = None) -> str:
        command = ["apt-get", "-q", *self.options(), *args]
        return check(
            command, cwd=cwd, timeout=1800, error=LibraryError, shown=f"apt-get {' '.join(args)}"
        )

    def update(self) -> None:
        self.run(["update"])

    def download_source(self, package: str, version: str | None, dest: Path) -> None:
        spec = f"{package}={version}" if version else package
        self.run(["source", "--download-only", spec], cwd=dest)
