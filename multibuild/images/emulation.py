"""Running another architecture's containers here: QEMU user emulation through the kernel's
binfmt_misc, the route cibuildwheel documents for aarch64 wheels on x86_64 machines
(`docker/setup-qemu-action` on GitHub).

A foreign root's programs run when binfmt_misc has the architecture's qemu handler enabled
with the F flag ("fix binary": the kernel opens the interpreter when it is registered, so it
runs inside containers that do not hold it). Debian's qemu-user-static and binfmt-support
register it; the kernel's binfmt_misc file system may need mounting first. Setting that up
changes the machine (root, /proc): `.ci/run` does it, never the build or the tests.
"""

from __future__ import annotations

import platform
from dataclasses import dataclass
from pathlib import Path

from multibuild.errors import ContainerError

BINFMT_MISC = Path("/proc/sys/fs/binfmt_misc")
# The image architecture (cibuildwheel's and the wheel tags' name) -> Debian's and QEMU's.
DEBIAN_ARCH = {"x86_64": "amd64", "aarch64": "arm64"}
QEMU_ARCH = {"x86_64": "x86_64", "aarch64": "aarch64"}
SETUP_PACKAGES = ("qemu-user-static", "binfmt-support", "arch-test")


@dataclass(frozen=True)
class Emulation:
    """What binfmt_misc says about one architecture's handler."""

    arch: str
    registered: bool
    enabled: bool
    flags: str
    interpreter: str

    @property
    def usable(self) -> bool:
        return self.registered and self.enabled and "F" in self.flags


def read_handler(arch: str, binfmt_misc: Path = BINFMT_MISC) -> Emulation:
    """binfmt_misc's entry for qemu-ARCH (absent: not registered)."""
    entry = binfmt_misc / f"qemu-{QEMU_ARCH.get(arch, arch)}"
    try:
        text = entry.read_text()
    except OSError:
        return Emulation(arch, False, False, "", "")
    fields = dict(line.partition(" ")[::2] for line in text.splitlines() if line)
    return Emulation(
        arch,
        registered=True,
        enabled="enabled" in fields,
        flags=fields.get("flags:", "").strip(),
        interpreter=fields.get("interpreter", "").strip(),
    )


def setup_hint(arch: str) -> str:
    qemu = QEMU_ARCH.get(arch, arch)
    return (
        f"as root, once: apt-get install {' '.join(SETUP_PACKAGES)}; mount -t binfmt_misc "
        f"binfmt_misc {BINFMT_MISC} (if it is empty); update-binfmts --enable qemu-{qemu} "
        "(`.ci/run` does this)"
    )


def emulation_problem(
    arch: str, *, machine: str | None = None, binfmt_misc: Path = BINFMT_MISC
) -> str | None:
    """Why this machine cannot run `arch` containers, or None when it can (natively, or
    emulated with the F flag)."""
    native = (machine or platform.machine()).lower()
    if native in (arch, DEBIAN_ARCH.get(arch)):
        return None
    if arch not in DEBIAN_ARCH:
        return f"no {arch} image can be made here (known: {', '.join(DEBIAN_ARCH)})"
    if not (binfmt_misc / "status").exists():
        state = f"binfmt_misc is not mounted at {binfmt_misc}"
    else:
        handler = read_handler(arch, binfmt_misc)
        if not handler.registered:
            state = f"no qemu-{QEMU_ARCH[arch]} handler is registered in binfmt_misc"
        elif not handler.enabled:
            state = f"binfmt_misc's qemu-{QEMU_ARCH[arch]} handler is disabled"
        elif "F" not in handler.flags:
            state = (
                f"binfmt_misc's qemu-{QEMU_ARCH[arch]} handler lacks the F flag (flags "
                f"{handler.flags or 'none'}): it cannot run inside containers"
            )
        else:
            return None
    return f"{arch} containers on this {native} machine need QEMU user emulation: {state}; " + (
        setup_hint(arch)
    )


def require_emulation(arch: str, *, machine: str | None = None) -> None:
    """ContainerError (exit code 13) when `arch` containers cannot run here."""
    problem = emulation_problem(arch, machine=machine)
    if problem is not None:
        raise ContainerError(problem)
