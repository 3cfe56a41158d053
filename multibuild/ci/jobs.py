"""The jobs of the CI matrix: one per cell of settings.toml's [matrix] (a CPython on an OS and
PLAT, in a variant), named by its cibuildwheel build identifier (`cp311-manylinux_x86_64`,
`cp312-musllinux_aarch64`; an Accelerate build adds `-accelerate`), with the machine each CI
provider runs it on and whether this machine can run it.

The CI configs, cibuildwheel.toml and `python -m multibuild ci --list` all take their jobs from
here, so a job has one name everywhere.
"""

from __future__ import annotations

import os
import platform as host_platform
from collections.abc import Callable, Mapping
from dataclasses import dataclass

from multibuild import platforms
from multibuild.errors import ConfigurationError
from multibuild.images.build import cross_problem
from multibuild.images.emulation import emulation_problem
from multibuild.images.oci import answering_engine
from multibuild.images.recipe import unavailable
from multibuild.matrix import ACCELERATE, Cell, accelerate_targets, cells
from multibuild.settings import Settings
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

# GitHub-hosted runners, by (OS, PLAT), as GitHub's runner-images list them (2026-11):
# macos-13 was retired on 2025-12-04, macos-14 is unsupported since 2026-11-02; macos-15-intel
# is the last Intel image (until August 2027), macos-15 an arm64 one.
GITHUB_RUNNERS = {
    ("linux", "x86_64"): "ubuntu-24.04",
    ("linux", "aarch64"): "ubuntu-24.04-arm",
    ("macos", "x86_64"): "macos-15-intel",
    ("macos", "arm64"): "macos-15",
    ("macos", "universal2"): "macos-15",
    ("windows", "AMD64"): "windows-2025",
    ("windows", "x86"): "windows-2025",
    ("windows", "ARM64"): "windows-11-arm",
}
# Travis runs Linux only: its macOS support ended on 2025-03-31 (and its newest image,
# xcode14.2, is Intel). macOS wheels come from GitHub Actions.
TRAVIS_DIST = "noble"
APPVEYOR_IMAGE = "Visual Studio 2022"


@dataclass(frozen=True)
class Job:
    cell: Cell

    @property
    def os(self) -> str:
        return self.cell.os

    @property
    def plat(self) -> str:
        return self.cell.plat

    @property
    def python(self) -> str:
        return self.cell.python

    @property
    def version(self) -> PythonVersion:
        return self.cell.version

    @property
    def variant(self) -> str:
        return self.cell.variant

    @property
    def id(self) -> str:
        """The job's name: cibuildwheel's build identifier (cp311-manylinux_x86_64,
        cp313t-win_amd64), and the variant it does not show (cp312-macosx_arm64-accelerate)."""
        return self.cell.job_id

    @property
    def build_id(self) -> str:
        """cibuildwheel's build identifier (`--only`)."""
        return self.cell.build_id

    @property
    def github_runner(self) -> str:
        return GITHUB_RUNNERS[(self.os, self.plat)]


def jobs(settings: Settings) -> list[Job]:
    """Every job of the matrix, in a stable order (OS, PLAT, Python)."""
    result = []
    for cell in cells(settings.matrix):
        if (cell.os, cell.plat) not in GITHUB_RUNNERS:
            raise ConfigurationError(
                f"[matrix] {cell.os}: no CI runner known for PLAT {cell.plat!r} "
                f"(known: {', '.join(p for o, p in GITHUB_RUNNERS if o == cell.os)})"
            )
        result.append(Job(cell))
    return result


def deployment_targets(settings: Settings) -> dict[str, str]:
    """MACOSX_DEPLOYMENT_TARGET by macOS PLAT of the matrix ([ci] macos_deployment_targets)."""
    targets = dict(entry.split("=", 1) for entry in settings.ci.macos_deployment_targets)
    unknown = sorted(set(targets) - set(settings.matrix.macos))
    if unknown:
        raise ConfigurationError(
            f"[ci] macos_deployment_targets names {', '.join(unknown)}, not in [matrix] macos"
        )
    return {plat: targets[plat] for plat in settings.matrix.macos if plat in targets}


def wheel_targets(settings: Settings) -> dict[str, str]:
    """The macOS version each PLAT's wheels are tagged with, where it is older than the
    deployment target ([ci] macos_wheel_targets): same major version, never newer."""
    targets = deployment_targets(settings)
    wheel = dict(entry.split("=", 1) for entry in settings.ci.macos_wheel_targets)
    for plat, version in wheel.items():
        built = targets.get(plat)
        if built is None:
            raise ConfigurationError(
                f"[ci] macos_wheel_targets names {plat}, which has no deployment target "
                "([ci] macos_deployment_targets)"
            )
        old, new = (
            _version(built, "macos_deployment_targets"),
            _version(version, "macos_wheel_targets"),
        )
        if new[0] != old[0] or new > old:
            raise ConfigurationError(
                f"[ci] macos_wheel_targets: {plat}={version} must be the same major version as "
                f"its deployment target {built}, and not newer"
            )
    return {plat: wheel[plat] for plat in targets if plat in wheel and wheel[plat] != targets[plat]}


def _version(text: str, key: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    if not (major.isdigit() and (minor or "0").isdigit()):
        raise ConfigurationError(f"[ci] {key}: {text!r} is not a macOS version (12.0)")
    return int(major), int(minor or "0")


def macos_platform_tag(plat: str, version: str) -> str:
    """A macOS wheel's platform tag: macosx_12_3_arm64 for arm64 and 12.3."""
    major, minor = _version(version, "macos_deployment_targets")
    return f"macosx_{major}_{minor}_{plat}"


def variant_build(settings: Settings, job: Job) -> tuple[dict[str, str], tuple[str, ...]]:
    """The variables and config settings a job adds to its OS's build: a macOS job its
    deployment target ([ci] macos_deployment_targets); an Accelerate job [matrix]
    macos_accelerate's instead, MB_BLAS=accelerate for the hooks (no OpenBLAS to fetch) and
    [matrix] accelerate_config_settings for the backend."""
    if job.variant == ACCELERATE:
        target = accelerate_targets(settings.matrix)[job.plat]
        env = {"MACOSX_DEPLOYMENT_TARGET": target, "MB_BLAS": ACCELERATE}
        return env, settings.matrix.accelerate_config_settings
    default = deployment_targets(settings).get(job.plat) if job.os == "macos" else None
    return ({"MACOSX_DEPLOYMENT_TARGET": default} if default else {}), ()


def official_image(settings: Settings, job: Job) -> str:
    """The image cibuildwheel pulls for a Linux job: [ci] musllinux_image for a musllinux job,
    else [ci] manylinux_image."""
    return settings.ci.musllinux_image if job.cell.musl else settings.ci.manylinux_image


def find_job(settings: Settings, job_id: str) -> Job:
    known = jobs(settings)
    for job in known:
        if job.id == job_id:
            return job
    raise ConfigurationError(
        f"no job {job_id!r} in the matrix of {settings.path.name}; the jobs are: "
        + ", ".join(j.id for j in known)
        + " (`python -m multibuild ci --list`)"
    )


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
    if job.cell.musl and builder == "host":
        return Runnable(
            False,
            "a musllinux wheel is built on musl libc: in cibuildwheel's musllinux container "
            "(`--builder cibuildwheel`), not on this machine",
        )
    if job.cell.musl and local_image:
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
