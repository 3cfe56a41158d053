"""The build matrix: its cells (a CPython on an OS and PLAT, in a variant: musl libc on Linux,
Accelerate on macOS), their cibuildwheel build identifiers (`cp311-manylinux_x86_64`) and job
names (`cp312-macosx_arm64-accelerate`), and which wheels fill which cell, so a complete
release is the wheels of every cell.

Wheel names are parsed with `packaging` (normalised project names, versions compared as pip
compares them, build tags, compressed tag sets such as `cp311-cp311-manylinux_2_17_x86_64.
manylinux2014_x86_64`). A cell matches by interpreter, ABI and platform *family* (manylinux on
an architecture, macOS on an architecture, a Windows platform): the exact manylinux or macOS
version a build reaches varies from release to release.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from packaging.tags import Tag
from packaging.utils import (
    InvalidWheelFilename,
    NormalizedName,
    canonicalize_name,
    parse_wheel_filename,
)
from packaging.version import InvalidVersion, Version

from multibuild.errors import ConfigurationError
from multibuild.settings import MatrixSettings, Settings
from multibuild.util.pythons import PythonVersion

# wheel-uploader's -t: which platform types to handle.
TYPES = ("all", "macosx", "win", "manylinux", "musllinux", "linux")

_WINDOWS = {"amd64": "win_amd64", "x64": "win_amd64", "x86_64": "win_amd64"}
_WINDOWS |= {"x86": "win32", "win32": "win32", "i686": "win32", "arm64": "win_arm64"}


# A cell's variant besides the default build ("").
MUSLLINUX = "musllinux"  # Linux on musl libc: musllinux wheels
ACCELERATE = "accelerate"  # macOS against Apple's Accelerate instead of OpenBLAS
_MACOS_TAG = re.compile(r"^macosx_(\d+)_(\d+)_")


def _macos_version(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor or 0)


@dataclass(frozen=True, order=True)
class Cell:
    """One job of the matrix: a CPython version on a CI operating system and PLAT, in a
    variant (musl libc, Accelerate) or the default build."""

    os: str  # linux, macos, windows
    plat: str  # multibuild's PLAT value (x86_64, arm64, AMD64, ...)
    python: str  # X.Y, or X.Yt for a free-threaded build
    variant: str = ""  # "", MUSLLINUX (linux) or ACCELERATE (macos)
    # macOS: the versions whose wheels fill the cell, [macos_from, macos_below) as X.Y ("" is
    # open). The Accelerate build of a PLAT and its OpenBLAS build share cibuildwheel's build
    # identifier and differ only in the macOS version their wheels are tagged for.
    macos_from: str = ""
    macos_below: str = ""

    @property
    def version(self) -> PythonVersion:
        return PythonVersion.parse(self.python)

    @property
    def interpreter(self) -> str:
        return self.version.interpreter

    @property
    def abi(self) -> str:
        return self.version.abi

    @property
    def musl(self) -> bool:
        return self.variant == MUSLLINUX

    @property
    def type(self) -> str:
        if self.os == "linux":
            return MUSLLINUX if self.musl else "manylinux"
        return {"macos": "macosx", "windows": "win"}[self.os]

    @property
    def platform_tag(self) -> str:
        """cibuildwheel's platform part of a build identifier."""
        if self.os in ("linux", "macos"):
            return f"{self.type}_{self.plat}"
        return _WINDOWS[self.plat.lower()]

    @property
    def build_id(self) -> str:
        """cibuildwheel's build identifier: cp311-manylinux_x86_64, cp312-macosx_arm64."""
        return f"{self.abi}-{self.platform_tag}"

    @property
    def job_id(self) -> str:
        """The job's name: the build identifier, and the variant where cibuildwheel's
        identifier does not show it (cp312-macosx_arm64-accelerate)."""
        return f"{self.build_id}-{self.variant}" if self.variant == ACCELERATE else self.build_id

    @property
    def id(self) -> str:
        """The job's name (job_id), as the CI configs, cibuildwheel.toml and `ci --list` show it."""
        return self.job_id

    @property
    def platform_pattern(self) -> str:
        """A readable pattern of the platform tags this cell accepts."""
        if self.os == "linux":
            return f"{self.type}_*_{self.plat}"
        if self.os == "macos":
            if self.macos_from:
                return f"macosx_{self.macos_from.replace('.', '_')}+_{self.plat}"
            return f"macosx_*_{self.plat}"
        return _WINDOWS[self.plat.lower()]

    @property
    def label(self) -> str:
        return f"{self.interpreter}-{self.abi}-{self.platform_pattern}"

    @property
    def description(self) -> str:
        """OS, PLAT and variant, as people say them: `linux x86_64 (musllinux)`."""
        return f"{self.os} {self.plat}" + (f" ({self.variant})" if self.variant else "")

    def _macos_in_range(self, platform: str) -> bool:
        found = _MACOS_TAG.match(platform)
        if found is None:
            return False
        version = (int(found.group(1)), int(found.group(2)))
        if self.macos_from and version < _macos_version(self.macos_from):
            return False
        return not (self.macos_below and version >= _macos_version(self.macos_below))

    def accepts_platform(self, platform: str) -> bool:
        if self.os == "linux":
            return platform.startswith(f"{self.type}_") and platform.endswith(f"_{self.plat}")
        if self.os == "macos":
            if not self._macos_in_range(platform):
                return False
            if platform.endswith(f"_{self.plat}"):
                return True
            return self.plat in ("x86_64", "arm64") and platform.endswith("_universal2")
        return platform == _WINDOWS[self.plat.lower()]

    def accepts(self, tag: Tag) -> bool:
        return (
            tag.interpreter == self.interpreter
            and tag.abi == self.abi
            and self.accepts_platform(tag.platform)
        )


def accelerate_targets(matrix: MatrixSettings) -> dict[str, str]:
    """[matrix] macos_accelerate as PLAT -> X.Y, each PLAT one of [matrix] macos."""
    targets = dict(entry.split("=", 1) for entry in matrix.macos_accelerate)
    unknown = sorted(set(targets) - set(matrix.macos))
    if unknown:
        raise ConfigurationError(
            f"[matrix] macos_accelerate names {', '.join(unknown)}, not in [matrix] macos"
        )
    return targets


def cells(matrix: MatrixSettings) -> list[Cell]:
    """Every cell of the matrix, in a stable order (OS, PLAT, variant, Python)."""
    for python in matrix.python:
        try:
            PythonVersion.parse(python)
        except ConfigurationError as error:
            raise ConfigurationError(f"[matrix] python: {error}") from None
    accelerate = accelerate_targets(matrix)
    result = []
    for os_name, variant, plats in (
        ("linux", "", matrix.linux),
        ("linux", MUSLLINUX, matrix.musllinux),
        ("macos", "", matrix.macos),
        ("windows", "", matrix.windows),
    ):
        for plat in plats:
            if os_name == "windows" and plat.lower() not in _WINDOWS:
                raise ConfigurationError(f"[matrix] windows: unknown PLAT {plat!r}")
            for python in matrix.python:
                # An OpenBLAS macOS cell ends where its PLAT's Accelerate cell begins.
                below = accelerate.get(plat, "") if os_name == "macos" else ""
                result.append(Cell(os_name, plat, python, variant, macos_below=below))
            if os_name == "macos" and plat in accelerate:
                result += [
                    Cell(os_name, plat, python, ACCELERATE, macos_from=accelerate[plat])
                    for python in matrix.python
                ]
    return result


# A job of the CI matrix is a cell: one type, one name everywhere (the CI configs,
# cibuildwheel.toml and `python -m multibuild ci --list` take their jobs from jobs()).
Job = Cell

# The PLATs the CI providers have machines for, by OS (ci/configs/github.py's GITHUB_RUNNERS
# names a runner for each).
CI_PLATS = {
    "linux": ("x86_64", "aarch64"),
    "macos": ("x86_64", "arm64", "universal2"),
    "windows": ("AMD64", "x86", "ARM64"),
}


def jobs(settings: Settings) -> list[Job]:
    """Every job of the matrix, in a stable order (OS, PLAT, Python)."""
    result = cells(settings.matrix)
    for cell in result:
        if cell.plat not in CI_PLATS[cell.os]:
            raise ConfigurationError(
                f"[matrix] {cell.os}: no CI runner known for PLAT {cell.plat!r} "
                f"(known: {', '.join(CI_PLATS[cell.os])})"
            )
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
    return settings.ci.musllinux_image if job.musl else settings.ci.manylinux_image


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


@dataclass(frozen=True)
class WheelName:
    """A wheel file name, parsed as pip parses it."""

    filename: str
    name: NormalizedName
    version: Version
    build: tuple[int, str] | tuple[()]
    tags: frozenset[Tag]

    @property
    def platforms(self) -> set[str]:
        return {tag.platform for tag in self.tags}


def parse_wheel_name(filename: str) -> WheelName | None:
    """The parsed wheel name, or None for a name that is not a valid wheel file name (a
    bare name, never a path: names holding a separator are refused)."""
    if "/" in filename or "\\" in filename or filename.startswith("."):
        return None
    try:
        name, version, build, tags = parse_wheel_filename(filename)
    except (InvalidWheelFilename, InvalidVersion):
        return None
    return WheelName(filename, name, version, build, frozenset(tags))


def platform_type(platform: str) -> str:
    if platform.startswith("manylinux"):
        return "manylinux"
    if platform.startswith("musllinux"):
        return "musllinux"
    if platform.startswith("linux"):
        return "linux"
    if platform.startswith("macosx"):
        return "macosx"
    if platform.startswith("win"):
        return "win"
    return "any" if platform == "any" else "other"


def type_wanted(kind: str, platform: str) -> bool:
    """Whether wheel-uploader's `-t KIND` takes a wheel for `platform`."""
    if kind not in TYPES:
        raise ConfigurationError(f"unknown wheel type {kind!r} (choose from {', '.join(TYPES)})")
    found = platform_type(platform)
    if kind == "all":
        return True
    if kind == "linux":
        return found in ("manylinux", "musllinux", "linux")
    return found == kind


def select(filenames: Iterable[str], name: str, version: str, kind: str = "all") -> list[WheelName]:
    """The wheels of NAME VERSION among `filenames` (of type `kind`), as pip would match them."""
    try:
        wanted_version = Version(version)
    except InvalidVersion:
        raise ConfigurationError(f"{version!r} is not a valid version (PEP 440)") from None
    wanted_name = canonicalize_name(name)
    result = []
    for filename in filenames:
        wheel = parse_wheel_name(filename)
        if wheel is None or wheel.name != wanted_name or wheel.version != wanted_version:
            continue
        if any(type_wanted(kind, platform) for platform in wheel.platforms):
            result.append(wheel)
    return sorted(result, key=lambda w: w.filename)


@dataclass
class Completeness:
    """Which cells the wheels fill; `extra` wheels fill none, `conflicts` are cells with two
    or more wheels (e.g. a rebuild with a build tag beside the first build)."""

    cells: list[Cell]
    found: dict[Cell, list[WheelName]] = field(default_factory=dict)
    extra: list[WheelName] = field(default_factory=list)

    @property
    def missing(self) -> list[Cell]:
        return [cell for cell in self.cells if not self.found.get(cell)]

    @property
    def conflicts(self) -> dict[Cell, list[WheelName]]:
        return {cell: wheels for cell, wheels in self.found.items() if len(wheels) > 1}

    @property
    def complete(self) -> bool:
        return not self.missing and not self.conflicts


def completeness(
    matrix_cells: Sequence[Cell], wheels: Iterable[WheelName], kind: str = "all"
) -> Completeness:
    """Match wheels to the cells (of type `kind`) of the matrix."""
    wanted = [c for c in matrix_cells if kind == "all" or type_wanted(kind, c.platform_pattern)]
    result = Completeness(cells=list(wanted))
    for wheel in wheels:
        filled = [cell for cell in wanted if any(cell.accepts(tag) for tag in wheel.tags)]
        for cell in filled:
            result.found.setdefault(cell, []).append(wheel)
        if not filled:
            result.extra.append(wheel)
    return result


def describe_missing(missing: Sequence[Cell], name: str, version: str) -> str:
    return ", ".join(
        f"{canonicalize_name(name).replace('-', '_')}-{version}-{cell.label}.whl "
        f"({cell.description}, Python {cell.python})"
        for cell in missing
    )
