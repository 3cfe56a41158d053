"""macOS: delocate-wheel, requiring the architectures the wheel claims."""

from __future__ import annotations

import os
import sys
from pathlib import Path

from multibuild.platforms import RepairPlan
from multibuild.platforms.posix import PosixPlatform

# delocate's --require-archs names for multibuild's PLAT values.
DELOCATE_ARCHS = {"x86_64": "x86_64", "arm64": "arm64", "universal2": "x86_64,arm64"}


class MacOSPlatform(PosixPlatform):
    name = "macos"
    library_path_var = "DYLD_LIBRARY_PATH"

    def repair_plan(
        self, wheel: Path, dest_dir: Path, *, prefix: Path, plat: str | None
    ) -> RepairPlan:
        archs = DELOCATE_ARCHS.get(plat or self.machine(), plat or self.machine())
        command = [
            str(Path(sys.executable).parent / "delocate-wheel"),
            "--require-archs",
            archs,
            "-w",
            str(dest_dir),
            "-v",
            str(wheel),
        ]
        env = self.prefix_env(prefix, os.environ)
        return RepairPlan(command, {self.library_path_var: env[self.library_path_var]})
