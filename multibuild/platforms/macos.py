"""macOS: delocate-wheel, requiring the architectures the wheel claims."""

from __future__ import annotations

import sys
from pathlib import Path, PurePath

from multibuild.platforms import WHEEL_PLACEHOLDER
from multibuild.platforms.posix import PosixPlatform

# delocate's --require-archs names for multibuild's PLAT values.
DELOCATE_ARCHS = {"x86_64": "x86_64", "arm64": "arm64", "universal2": "x86_64,arm64"}


class MacOSPlatform(PosixPlatform):
    name = "macos"
    library_path_var = "DYLD_LIBRARY_PATH"
    repair_tool = "delocate-wheel"
    repair_summary = "delocate-wheel --require-archs (grafts the dylibs)"

    def repair_args(
        self, *, wheel: str, dest_dir: str, prefix: PurePath, plat: str | None
    ) -> list[str]:
        if wheel == WHEEL_PLACEHOLDER:  # in CI, cibuildwheel knows the architectures
            archs = "{delocate_archs}"
        else:
            archs = DELOCATE_ARCHS.get(plat or self.machine(), plat or self.machine())
        return ["--require-archs", archs, "-w", dest_dir, "-v", wheel]

    def repair_program(self) -> list[str]:
        return [str(Path(sys.executable).parent / "delocate-wheel")]

    def cibuildwheel_repair_env(self, prefix: PurePath) -> list[str]:
        # cibuildwheel runs the repair through /bin/sh, a SIP-protected binary: macOS drops
        # DYLD_* from its environment, so the variable is set on delocate's command line.
        dirs = ":".join(str(d) for d in self.library_dirs(prefix))
        return [f"{self.library_path_var}={dirs}"]
