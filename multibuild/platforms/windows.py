"""Windows: delvewheel, with the prefix's DLL directories on its search path."""

from __future__ import annotations

import os
import platform
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath, PurePosixPath

from multibuild.platforms import Platform, prepend
from multibuild.util.pythons import PythonVersion


class WindowsPlatform(Platform):
    name = "windows"
    library_path_var = "PATH"
    ci_prefix = PurePosixPath("C:/multibuild/prefix")
    pathsep = ";"
    repair_tool = "delvewheel"
    repair_summary = "delvewheel repair (grafts the DLLs, prefix on its path)"

    def machine(self) -> str:
        return platform.machine()  # AMD64, ARM64, x86

    def python_candidates(self, version: PythonVersion) -> list[Path]:
        nodot = version.number.replace(".", "") + ("t" if version.free_threaded else "")
        local = os.environ.get("LOCALAPPDATA", "C:/")
        exe = f"python{version.number}t.exe" if version.free_threaded else "python.exe"
        return [
            root / f"Python{nodot}" / exe for root in (Path(local) / "Programs/Python", Path("C:/"))
        ]

    def venv_python(self, venv: Path) -> Path:
        return venv / "Scripts" / "python.exe"

    def library_dirs(self, prefix: PurePath) -> list[PurePath]:
        return [prefix / "bin", prefix / "lib"]

    def repair_args(
        self, *, wheel: str, dest_dir: str, prefix: PurePath, plat: str | None
    ) -> list[str]:
        search = ";".join(str(d) for d in self.library_dirs(prefix))
        return ["repair", "--add-path", search, "-w", dest_dir, "-v", wheel]

    def repair_program(self) -> list[str]:
        return [sys.executable, "-m", "delvewheel"]

    def repair_env(self, prefix: Path, environ: Mapping[str, str]) -> dict[str, str]:
        return {}  # delvewheel takes the prefix with --add-path

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
