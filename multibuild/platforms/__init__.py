"""What differs between Linux, macOS and Windows, behind one interface."""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePath
from typing import Literal

PlatformName = Literal["linux", "macos", "windows"]


@dataclass(frozen=True)
class RepairPlan:
    """The command that repairs one wheel, and the environment it needs."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


class Platform(ABC):
    name: PlatformName
    # Where the dynamic loader looks for libraries: set for build and repair, never for tests.
    library_path_var: str

    @abstractmethod
    def machine(self) -> str:
        """multibuild's PLAT: x86_64, aarch64, arm64, AMD64 ..."""

    @abstractmethod
    def python_candidates(self, version: str) -> list[Path]: ...

    @abstractmethod
    def venv_python(self, venv: Path) -> Path: ...

    @abstractmethod
    def repair_plan(
        self, wheel: Path, dest_dir: Path, *, prefix: Path, plat: str | None
    ) -> RepairPlan: ...

    @abstractmethod
    def prefix_env(
        self, prefix: PurePath, environ: Mapping[str, str], pathsep: str = os.pathsep
    ) -> dict[str, str]:
        """Variables that point compilers, pkg-config and CMake at the library prefix
        (`pathsep`: the separator of the OS the variables are for)."""

    def library_dirs(self, prefix: PurePath) -> list[PurePath]:
        return [prefix / "lib", prefix / "lib64"]


def prepend(environ: Mapping[str, str], name: str, value: str, sep: str) -> str:
    old = environ.get(name, "")
    return f"{value}{sep}{old}" if old else value


def current_name() -> str:
    """linux, macos or windows: the OS this runs on (sys.platform itself for any other)."""
    system: str = sys.platform  # a plain str: every branch is checked on every OS
    if system.startswith("linux"):
        return "linux"
    return {"darwin": "macos", "win32": "windows"}.get(system, system)


def by_name(name: str) -> Platform:
    """The platform of an OS by name, whichever OS this runs on (CI configs for all of them
    are written here)."""
    if name == "linux":
        from multibuild.platforms.linux import LinuxPlatform

        return LinuxPlatform()
    if name == "macos":
        from multibuild.platforms.macos import MacOSPlatform

        return MacOSPlatform()
    if name == "windows":
        from multibuild.platforms.windows import WindowsPlatform

        return WindowsPlatform()
    raise RuntimeError(f"unsupported platform {name}")


def current() -> Platform:
    return by_name(current_name())
