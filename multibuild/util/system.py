"""Command-line tools the build needs from the system: check, and install where we may."""

from __future__ import annotations

import importlib.util
import os
import shutil
import sys
from collections.abc import Callable, Mapping

from multibuild.errors import SystemDependencyError
from multibuild.util.cmd import check

# Debian/Ubuntu package for each tool.
DEBIAN_PACKAGES = {
    "gcc": "gcc",
    "cc": "gcc",
    "g++": "g++",
    "c++": "g++",
    "gfortran": "gfortran",
    "pkg-config": "pkg-config",
    "make": "make",
    "cmake": "cmake",
    "git": "git",
    "ccache": "ccache",
    "patch": "patch",
    "curl": "curl",
    "dpkg-source": "dpkg-dev",
    # autotools, for a tree without configure (build_library --pre-configure "autoreconf -fi")
    "autoreconf": "autoconf",
    "autoconf": "autoconf",
    "automake": "automake",
    "aclocal": "automake",
    "libtoolize": "libtool",
    "libtool": "libtool-bin",
    "meson": "meson",
    "ninja": "ninja-build",
    # the container route: podman with runc (crun refuses cgroups in hybrid mode) and
    # catatonit (--init); mmdebstrap makes the local image's Debian root
    "podman": "podman",
    "runc": "runc",
    "catatonit": "catatonit",
    "mmdebstrap": "mmdebstrap",
}


def missing_tools(tools: list[str] | tuple[str, ...]) -> list[str]:
    return [tool for tool in tools if shutil.which(tool) is None]


def can_install_with_apt() -> bool:
    return (
        sys.platform.startswith("linux")
        and shutil.which("apt-get") is not None
        and hasattr(os, "geteuid")
        and os.geteuid() == 0
    )


def ensure_tools(
    tools: list[str] | tuple[str, ...],
    say: Callable[[str], None],
    *,
    install: bool,
    environ: Mapping[str, str],
) -> None:
    """Every tool present, or installed with apt-get (when allowed), or one clear error."""
    missing = missing_tools(tools)
    if not missing:
        return
    packages = sorted({DEBIAN_PACKAGES.get(tool, tool) for tool in missing})
    if install and can_install_with_apt():
        say(f"installing system packages: {' '.join(packages)}")
        env = {**environ, "DEBIAN_FRONTEND": "noninteractive"}
        for command in (
            ["apt-get", "update", "-qq"],
            ["apt-get", "install", "-y", "-qq", "--no-install-recommends", *packages],
        ):
            check(command, env=env, error=SystemDependencyError)
        missing = missing_tools(tools)
        if not missing:
            return
    hint = (
        f"install them with: apt-get install {' '.join(packages)}"
        if sys.platform.startswith("linux")
        else f"install them ({', '.join(packages)}) with your system's package manager"
    )
    raise SystemDependencyError(
        f"the build needs {', '.join(missing)}, not found on PATH; {hint}"
        + ("" if install else " (or run with --install-system-deps as root on Debian/Ubuntu)")
    )


def pid_alive(pid: int) -> bool:
    """Whether a process `pid` exists (owned by anyone): the writer of a temporary file or
    a half-built stage may still be at work."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# The engine's own Python dependencies a build reaches only at its end (the repair), by the
# platform that runs it: checked before anything is built.
ENGINE_MODULES = {
    "linux": ("build", "packaging", "auditwheel"),
    "macos": ("build", "packaging", "delocate"),
    "windows": ("build", "packaging", "delvewheel"),
}


def check_engine_modules(names: tuple[str, ...] | list[str]) -> None:
    """Each module importable by this Python, or one error naming them and the way in."""
    missing = [name for name in names if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemDependencyError(
            f"the engine's dependencies are not installed for {sys.executable}: "
            f"{', '.join(missing)}; install the engine with them: `pip install -e .` in its "
            "repository (or run through nox: `nox -s build`)"
        )
