"""Whether this machine can run a job of the matrix (multibuild.matrix.Job), with which
builder, and why not.
"""

from __future__ import annotations

import os
import platform as host_platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from multibuild import platforms
from multibuild.images.build import cross_problem
from multibuild.images.emulation import emulation_problem
from multibuild.images.oci import answering_engine
from multibuild.images.recipe import unavailable
from multibuild.matrix import Job
from multibuild.util.pythons import PythonVersion

# What `platform.machine()` says on a machine that runs a PLAT natively.
_NATIVE = {
    "x86_64": {"x86_64", "amd64"},
    "aarch64": {"aarch64", "arm64"},
    "arm64": {"arm64", "aarch64"},
    "AMD64": {"amd64", "x86_64"},
    "x86": {"x86", "i686", "amd64", "x86_64"},
    "ARM64": {"arm64", "aarch64"},
    "universal2": {"arm64", "x86_64"},
}
_SYSTEMS = {"linux": "Linux", "macos": "macOS", "windows": "Windows"}


def container_engine(
    environ: Mapping[str, str] | None = None, preferred: str | None = None
) -> str | None:
    """A container engine that answers (cibuildwheel's Linux builds need one), or None."""
    return answering_engine(os.environ if environ is None else environ, preferred)


@dataclass(frozen=True)
class Runnable:
    ok: bool
    reason: str


def runnable_here(
    job: Job,
    builder: str,
    *,
    os_name: str | None = None,
    machine: str | None = None,
    has_python: Callable[[PythonVersion], bool] | None = None,
    engine: Callable[[], str | None] = container_engine,
    local_image: bool = False,
    emulation: Callable[[str], str | None] = emulation_problem,
    cross: Callable[[PythonVersion], str | None] = cross_problem,
) -> Runnable:
    """Whether this machine can run `job` with `builder`, and why not (`local_image`: its
    container is the local image, which holds only the CPythons Debian's sources give;
    `emulation`: why this machine cannot run a Linux PLAT's containers, None when it can: the
    container route runs another architecture's Linux jobs under QEMU emulation; `cross`: why
    the local image of another architecture cannot hold a CPython, cross-compiled here)."""
    os_name = os_name or platforms.current_name()
    machine = (machine or host_platform.machine()).lower()
    if job.os != os_name:
        return Runnable(
            False,
            f"needs a {_SYSTEMS[job.os]} machine (this one runs {_SYSTEMS.get(os_name, os_name)})",
        )
    native = machine in _NATIVE.get(job.plat, {job.plat.lower()})
    emulated = not native and job.os == "linux" and emulation(job.plat) is None
    article = "an" if job.plat[0] in "aeiouAEIOU" else "a"
    if not native and not (emulated and builder == "cibuildwheel"):
        reason = f"needs {article} {job.plat} machine (this one is {machine})"
        if emulated:
            reason += "; `--builder cibuildwheel` runs it here in a container, under emulation"
        elif job.os == "linux" and builder == "cibuildwheel":
            reason += f", or emulation: {emulation(job.plat)}"
        return Runnable(False, reason)
    if job.musl and builder == "host":
        return Runnable(
            False,
            "a musllinux wheel is built on musl libc: in cibuildwheel's musllinux container "
            "(`--builder cibuildwheel`), not on this machine",
        )
    if job.musl and local_image:
        return Runnable(
            False,
            "the local image is glibc-based (manylinux; no musl image can be made from Debian "
            "packages); a musllinux job runs in cibuildwheel's musllinux image "
            "(`--image official`)",
        )
    if builder == "cibuildwheel" and job.os == "linux" and engine() is None:
        return Runnable(
            False,
            "cibuildwheel builds Linux wheels in manylinux containers and no container engine "
            "answers here (docker/podman); `--builder host` runs the same steps on this machine",
        )
    missing = unavailable(job.version) if local_image and job.os == "linux" else None
    if emulated and local_image and missing is None:
        missing = cross(job.version)
    if builder == "cibuildwheel" and missing is not None:
        return Runnable(
            False,
            f"the local image cannot hold CPython {job.version}: {missing}"
            + ("" if emulated else "; `--builder host` builds the job with this machine's CPython"),
        )
    if builder == "host" and has_python is not None and not has_python(job.version):
        kind = "free-threaded CPython" if job.version.free_threaded else "CPython"
        return Runnable(False, f"{kind} {job.version.number} is not installed here")
    if builder == "host" and job.os == "linux":
        return Runnable(
            True,
            "on this machine, not in a manylinux container: the wheel is repaired to the "
            "newest manylinux policy this machine's glibc allows",
        )
    if emulated:
        return Runnable(True, f"in {article} {job.plat} container under QEMU emulation (slower)")
    return Runnable(True, "on this machine")
