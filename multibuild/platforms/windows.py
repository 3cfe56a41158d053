"""Windows: delvewheel, with the prefix's DLL directories on its search path."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath

from multibuild.platforms import Platform, RepairPlan, prepend


class WindowsPlatform(Platform):
    name = "windows"
    library_path_var = "PATH"

    def machine(self) -> str:
        return platform.machine()  # AMD64, ARM64, x86

    def python_candidates(self, version: str) -> list[Path]:
        nodot = version.replace(".", "")
        roots = [Path(os.environ.get("LOCALAPPDATA", "C:/")) / "Programs/Python", Path("C:/")]
        return [root / f"Python{nodot}" / "python.exe" for root in roots]

    def venv_python(self, venv: Path) -> Path:
        return venv / "Scripts" / "python.exe"

    def library_dirs(self, prefix: PurePath) -> list[PurePath]:
        return [prefix / "bin", prefix / "lib"]

    def repair_plan(
        self, wheel: Path, dest_dir: Path, *, prefix: Path, plat: str | None
    ) -> RepairPlan:
        search = os.pathsep.join(str(d) for d in self.library_dirs(prefix))
        command = [
            sys.executable,
            "-m",
            "delvewheel",
            "repair",
            "--add-path",
            search,
            "-w",
            str(dest_dir),
            "-v",
            str(wheel),
        ]
        return RepairPlan(command)

    def prefix_env(
        self, prefix: PurePath, environ: Mapping[str, str], pathsep: str = os.pathsep
    ) -> dict[str, str]:
        return {
            "INCLUDE": prepend(environ, "INCLUDE", str(prefix / "include"), pathsep),
            "LIB": prepend(environ, "LIB", str(prefix / "lib"), pathsep),
            "PKG_CONFIG_PATH": prepend(
                environ, "PKG_CONFIG_PATH", str(prefix / "lib" / "pkgconfig"), pathsep
            ),
            "CMAKE_PREFIX_PATH": prepend(environ, "CMAKE_PREFIX_PATH", str(prefix), pathsep),
            "PATH": prepend(
                environ,
                "PATH",
                pathsep.join(str(d) for d in self.library_dirs(prefix)),
                pathsep,
            ),
        }
