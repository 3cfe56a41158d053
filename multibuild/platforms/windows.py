"""Windows: delvewheel, with the prefix's DLL directories on its search path."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path

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

    def library_dirs(self, prefix: Path) -> list[Path]:
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

    def prefix_env(self, prefix: Path, environ: Mapping[str, str]) -> dict[str, str]:
        return {
            "INCLUDE": prepend(environ, "INCLUDE", str(prefix / "include"), os.pathsep),
            "LIB": prepend(environ, "LIB", str(prefix / "lib"), os.pathsep),
            "PKG_CONFIG_PATH": prepend(
                environ, "PKG_CONFIG_PATH", str(prefix / "lib" / "pkgconfig"), os.pathsep
            ),
            "CMAKE_PREFIX_PATH": prepend(environ, "CMAKE_PREFIX_PATH", str(prefix), os.pathsep),
            "PATH": prepend(
                environ,
                "PATH",
                os.pathsep.join(str(d) for d in self.library_dirs(prefix)),
                os.pathsep,
            ),
        }
