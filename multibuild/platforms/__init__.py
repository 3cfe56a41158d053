"""What differs between Linux, macOS and Windows, behind one interface."""

from __future__ import annotations

import os
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePath, PurePosixPath
from typing import Literal

from multibuild.util.pythons import PythonVersion, is_installed

PlatformName = Literal["linux", "macos", "windows"]
# cibuildwheel's placeholders in a repair-wheel-command.
WHEEL_PLACEHOLDER = "{wheel}"
DEST_DIR_PLACEHOLDER = "{dest_dir}"


@dataclass(frozen=True)
class RepairPlan:
    """The command that repairs one wheel on this machine, and the environment it needs."""

    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


class Platform(ABC):
    name: PlatformName
    # Where the dynamic loader looks for libraries: set for build and repair, never for tests.
    library_path_var: str
    # The repair tool: its command (as cibuildwheel runs it), and what it does, in a phrase.
    repair_tool: str
    repair_summary: str
    # The library prefix of a cibuildwheel build on this OS, and the separator of its path
    # lists: fixed paths keep CI caches valid.
    ci_prefix: PurePosixPath = PurePosixPath("/tmp/multibuild/prefix")
    pathsep: str = ":"

    @abstractmethod
    def machine(self) -> str:
        """multibuild's PLAT: x86_64, aarch64, arm64, AMD64 ..."""

    @abstractmethod
    def python_candidates(self, version: PythonVersion) -> list[Path]: ...

    @abstractmethod
    def venv_python(self, venv: Path) -> Path: ...

    @abstractmethod
    def repair_args(
        self, *, wheel: str, dest_dir: str, prefix: PurePath, plat: str | None
    ) -> list[str]:
        """The repair tool's arguments: the one definition of the repair, which the engine
        runs on this machine and cibuildwheel.toml's repair-wheel-command runs in CI."""

    @abstractmethod
    def repair_program(self) -> list[str]:
        """How this machine runs the repair tool (the engine's own environment has it)."""

    @abstractmethod
    def prefix_env(
        self, prefix: PurePath, environ: Mapping[str, str], pathsep: str = os.pathsep
    ) -> dict[str, str]:
        """Variables that point compilers, pkg-config and CMake at the library prefix
        (`pathsep`: the separator of the OS the variables are for)."""

    def library_dirs(self, prefix: PurePath) -> list[PurePath]:
        return [prefix / "lib", prefix / "lib64"]

    def repair_env(self, prefix: Path, environ: Mapping[str, str]) -> dict[str, str]:
        """What the repair tool needs besides `environ`: the prefix on the loader's path."""
        env = self.prefix_env(prefix, environ)
        return {self.library_path_var: env[self.library_path_var]}

    def repair_plan(
        self,
        wheel: Path,
        dest_dir: Path,
        *,
        prefix: Path,
        plat: str | None,
        environ: Mapping[str, str],
    ) -> RepairPlan:
        args = self.repair_args(wheel=str(wheel), dest_dir=str(dest_dir), prefix=prefix, plat=plat)
        return RepairPlan([*self.repair_program(), *args], self.repair_env(prefix, environ))

    def path_maps(self, maps: Mapping[Path, str]) -> str:
        """Compiler flags that write `maps`' directories under fixed names into what the
        compilers emit (debug info, __FILE__): a wheel's bytes do not depend on where it was
        built. "" where the compilers have no such flag."""
        return ""

    def system_copies(self, grafted: Sequence[str]) -> list[Path]:
        """The system's own files of the libraries a repair grafted: the tests hide them, so a
        wheel that still loads them from the system fails there (Linux; elsewhere none)."""
        return []

    def hiding_wrapper(self, paths: Sequence[Path]) -> list[str] | None:
        """A command prefix that runs a command with `paths` hidden from it ([] with nothing
        to hide; None when this machine cannot hide files)."""
        return [] if not paths else None

    def cibuildwheel_repair_env(self, prefix: PurePath) -> list[str]:
        """NAME=value words the repair command itself sets (a variable of cibuildwheel's
        environment may not reach the tool); none by default."""
        return []

    def cibuildwheel_repair_command(self, prefix: PurePath, extra_args: Sequence[str] = ()) -> str:
        """cibuildwheel's repair-wheel-command: the same arguments, with its placeholders, and
        `extra_args` (settings.toml's) before the wheel."""
        args = self.repair_args(
            wheel=WHEEL_PLACEHOLDER, dest_dir=DEST_DIR_PLACEHOLDER, prefix=prefix, plat=None
        )
        words = [*args[:-1], *extra_args, args[-1]]
        return " ".join([*self.cibuildwheel_repair_env(prefix), self.repair_tool, *words])


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


def python_installed(version: PythonVersion) -> bool:
    """Whether this machine has CPython `version` (free-threaded for 3.13t)."""
    return is_installed(version, current().python_candidates(version))
