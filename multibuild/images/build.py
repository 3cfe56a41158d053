"""Building the local image (`python -m multibuild image build`): stages, content keys, and a
build that a kill cannot leave half-made.

Stages, each cached by a content key:

  base     mmdebstrap --variant=minbase --include=<recipe.PACKAGES> <suite> -> `ENGINE import`;
           key: the recipe, the suite and every package version apt resolves for it
           (`mmdebstrap --simulate`, a few seconds). The root is checked against that list.
  cpXY     CPython built in a container of the base (no network) from the .orig tarball of a
           Debian source package, packed as a tarball in the cache;
           key: the base key, the source's sha256, the variant, build-cpython.sh.
           For another architecture (aarch64 on x86_64: the base and final stages run under
           QEMU emulation) CPython is cross-compiled on the host against the base's root
           instead (cross-build-cpython.sh; key: also the cross compiler's and the build
           Python's versions), since compiling under emulation takes 10-20 times as long.
  final    a container of the base unpacks the CPythons and installs the pinned wheels
           (no network), then `ENGINE commit` with the image's ENV and labels;
           key: the base and CPython keys, finalize-image.sh, the requirement files.

The image is named <repository>:<first 16 hex digits of the final key>; that name appears
last, after the whole image exists (a temporary tag first), so a build killed at any point
leaves nothing that looks finished: a rerun reuses the finished stages and goes on. Containers
get --init (a kill reaches the build) and are removed on the way out, also after SIGTERM.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import sys
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multibuild.debian.archive import Archives, fetch_orig, system_archives
from multibuild.errors import ContainerError, FatalError
from multibuild.images.emulation import DEBIAN_ARCH, require_emulation
from multibuild.images.oci import Engine, inspect, labels_of
from multibuild.images.recipe import (
    IMAGE_REPOSITORY,
    PACKAGES,
    RECIPE_VERSION,
    STAGE_REPOSITORY,
    CPythonBuild,
    ImageSpec,
)
from multibuild.images.record import ImageRecord, label, read_record
from multibuild.log import Logger
from multibuild.util.cmd import check, excerpt, stream
from multibuild.util.durations import format_duration
from multibuild.util.files import file_lock, remove_tree, sha256_file
from multibuild.util.pythons import PythonVersion
from multibuild.util.system import pid_alive

FILES = Path(__file__).parent / "files"
BUILD_CPYTHON = FILES / "build-cpython.sh"
CROSS_BUILD_CPYTHON = FILES / "cross-build-cpython.sh"
# Debian's cross toolchain for an image's architecture: its triplet and packages.
CROSS_TRIPLET = {"aarch64": "aarch64-linux-gnu"}
CROSS_PACKAGES = {"aarch64": ("gcc-aarch64-linux-gnu", "g++-aarch64-linux-gnu")}
# What a CPython of the image must import (build-cpython.sh checks the same natively).
STDLIB_CHECK = (
    "import bz2, ctypes, curses, dbm.gnu, decimal, hashlib, json, lzma, readline, sqlite3, ssl, "
    "uuid, zlib"
)
FINALIZE = FILES / "finalize-image.sh"
REQUIREMENTS = (FILES / "requirements-python.txt", FILES / "requirements-tools.txt")
PATH_IN_IMAGE = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SIMULATED = re.compile(r"^Inst (\S+) \((\S+) ", flags=re.MULTILINE)


def digest(*parts: str) -> str:
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def simulated_packages(output: str) -> dict[str, str]:
    """`mmdebstrap --simulate --verbose`'s `Inst NAME (VERSION ...)` lines: name -> version."""
    return dict(sorted(SIMULATED.findall(output)))


def image_env(spec: ImageSpec) -> dict[str, str]:
    """The image's environment (auditwheel's defaults are the image's policy, as manylinux's)."""
    return {
        "PATH": PATH_IN_IMAGE,
        "LANG": "C.UTF-8",
        "AUDITWHEEL_POLICY": spec.suite.policy,
        "AUDITWHEEL_ARCH": spec.arch,
        "AUDITWHEEL_PLAT": spec.platform_tag,
    }


def cross_problem(version: PythonVersion, path: str | None = None) -> str | None:
    """Why CPython `version` cannot be cross-compiled here for a foreign image, or None: the
    cross build needs a build Python of the same X.Y on PATH (python3.11), and is not done
    for free-threaded ones."""
    if version.free_threaded:
        return "no free-threaded CPython is cross-compiled for a foreign image"
    if shutil.which(f"python{version.number}", path=path) is None:
        return (
            f"cross-compiling it needs a build Python {version.number} here (python"
            f"{version.number} on PATH: CPython's cross build requires the same X.Y)"
        )
    return None


@dataclass(frozen=True)
class Cross:
    """A foreign image's CPython cross build: the host's cross compiler and build Pythons."""

    triplet: str
    compiler: str  # `TRIPLET-gcc -dumpfullversion`
    build_pythons: Mapping[str, tuple[str, str]]  # X.Y -> (path, version)

    def key_lines(self, build: CPythonBuild) -> tuple[str, ...]:
        return (
            f"cross {self.triplet} gcc {self.compiler}",
            f"build-python {self.build_pythons[build.version.number][1]}",
            sha256_file(CROSS_BUILD_CPYTHON),
        )


@dataclass(frozen=True)
class Keys:
    """The content key of each stage (sha256 hex)."""

    base: str
    cpythons: tuple[str, ...]  # one per spec.cpythons, in order
    final: str
    packages: Mapping[str, str]


def content_keys(spec: ImageSpec, packages: Mapping[str, str], cross: Cross | None = None) -> Keys:
    """The stages' keys from what determines their content, and nothing else (no mirror, no
    time): the same inputs give the same keys on any machine."""
    base = digest(
        f"recipe {RECIPE_VERSION}",
        f"suite {spec.suite.name} variant minbase arch {spec.arch}",
        "include " + ",".join(PACKAGES),
        *(f"{name} {version}" for name, version in sorted(packages.items())),
    )
    build_script = sha256_file(BUILD_CPYTHON)
    cpythons = tuple(
        digest(
            base,
            f"{build.source.package} {build.source.upstream} {build.source.orig_sha256}",
            f"{build.tag} {build.prefix}",
            build_script,
            *(cross.key_lines(build) if cross is not None else ()),
        )
        for build in spec.cpythons
    )
    final = digest(
        base,
        *cpythons,
        sha256_file(FINALIZE),
        *(sha256_file(path) for path in REQUIREMENTS),
        json.dumps(image_env(spec), sort_keys=True),
    )
    return Keys(base=base, cpythons=cpythons, final=final, packages=dict(packages))


@contextmanager
def interruptible() -> Iterator[None]:
    """SIGTERM as Ctrl-C, so that the cleanup below runs when a build is killed."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, interrupt)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


class ImageBuilder:
    """Builds (or finds) the image of `spec` with `engine`; `cache_dir` holds the stages that
    are files (CPython tarballs, sources, wheels, ccache), the records and the logs."""

    def __init__(
        self,
        spec: ImageSpec,
        engine: Engine,
        *,
        cache_dir: Path,
        logger: Logger,
        environ: Mapping[str, str],
        archives: Archives | None = None,
    ) -> None:
        self.spec = spec
        self.engine = engine
        self.root = cache_dir
        self.logger = logger
        self.environ = dict(environ)
        self._archives = archives
        self._cross: Cross | None = None
        self._containers: list[str] = []
        self._temporary: list[Path] = []
        self._tags: list[str] = []

    # -- helpers -----------------------------------------------------------------------------

    @property
    def archives(self) -> Archives:
        if self._archives is None:
            try:
                self._archives = system_archives()
            except FatalError as error:
                raise ContainerError(f"the local image cannot be built: {error}") from None
        return self._archives

    @property
    def records(self) -> Path:
        return self.root / "records"

    def reference(self, keys: Keys) -> str:
        return f"{self.spec.repository}:{keys.final[:16]}"

    def _run(self, *args: str | Path, label_: str, what: str) -> str:
        """An engine command streamed into the log; ContainerError if it fails."""
        done = stream(
            self.engine.command(*args),
            self.logger,
            env=self.engine.env(self.environ),
            label=label_,
        )
        if done.returncode != 0:
            raise ContainerError(
                f"{what} failed (`{self.engine.name} {args[0]}`, exit status "
                f"{done.returncode}):\n{excerpt(done.tail, 12)}"
            )
        return done.tail

    def _quiet(self, *args: str | Path, what: str) -> str:
        done = self.engine.run(*args, base=self.environ)
        if done.returncode != 0:
            raise ContainerError(f"{what} failed: {(done.stderr or done.stdout).strip()[-800:]}")
        return done.stdout

    def _untag(self, reference: str) -> None:
        if self.engine.name == "podman":
            self.engine.run("untag", reference, reference, base=self.environ)
        else:
            self.engine.run("rmi", reference, base=self.environ)

    def _remove_container(self, name: str) -> None:
        extra = ("-t", "0") if self.engine.name == "podman" else ()
        self.engine.run("rm", "-f", *extra, name, base=self.environ)

    def _container_name(self, stage: str, key: str) -> str:
        name = f"multibuild-image-{stage}-{key[:12]}-{os.getpid()}"
        self._containers.append(name)
        return name

    @contextmanager
    def _cleanup(self) -> Iterator[None]:
        """Whatever happens, no container, temporary file or temporary tag stays behind."""
        try:
            yield
        finally:
            for name in self._containers:
                self._remove_container(name)
            for path in self._temporary:
                remove_tree(path)
            for reference in self._tags:
                self._untag(reference)
            self._containers.clear()
            self._temporary.clear()
            self._tags.clear()

    def _sweep(self) -> None:
        """What a build killed outright (SIGKILL, a power cut) left: its containers and
        temporary tags (named after its process id, no longer alive) and, since this build
        holds the cache's lock, every temporary file of the cache."""
        for directory, pattern in ((self.root / "tmp", "*"), (self.root / "cpython", ".*.part")):
            for path in directory.glob(pattern) if directory.is_dir() else ():
                remove_tree(path)
        listed = self.engine.run(
            "ps",
            "-a",
            "--filter",
            "name=multibuild-image-",
            "--format",
            "{{.Names}}",
            base=self.environ,
        )
        images = self.engine.run(
            "images", "--format", "{{.Repository}}:{{.Tag}}", base=self.environ
        )
        names = listed.stdout.split() if listed.returncode == 0 else []
        tags = [t for t in images.stdout.split() if ":tmp-" in t] if images.returncode == 0 else []
        for name in names + tags:
            pid = name.rpartition("-")[2]
            if pid.isdigit() and not pid_alive(int(pid)):
                self.logger.info(f"image: removing {name}, left by a build that was killed")
                if name in tags:
                    self._untag(name)
                else:
                    self._remove_container(name)

    def _arch_options(self, option: str) -> tuple[str, ...]:
        """mmdebstrap's, or the engine's import, option for a foreign root's architecture
        (none for this machine's: the commands stay as they were)."""
        if not self.spec.foreign:
            return ()
        debian = DEBIAN_ARCH[self.spec.arch]
        if option == "import" and self.engine.name == "docker":
            return ("--platform", f"linux/{debian}")
        return (f"--arch={debian}",) if option == "import" else (f"--architectures={debian}",)

    def _suite_sources(self) -> list[str]:
        """The apt sources of the root. A foreign root's come from the suite and its updates
        only: the mirror here lists bullseye-security's arm64 packages but serves none of
        their files (404, 2026-12-04), so the aarch64 image lacks the security updates."""
        sources = self.archives.suite_sources(self.spec.suite.name)
        if self.spec.foreign:
            sources = [line for line in sources if f" {self.spec.suite.name}-security " not in line]
        return sources

    def cross(self) -> Cross | None:
        """The host's cross toolchain and build Pythons for a foreign image (None for this
        machine's); ContainerError naming what to install when they are missing."""
        if not self.spec.foreign:
            return None
        path = self.environ.get("PATH")
        triplet = CROSS_TRIPLET[self.spec.arch]
        compilers = (f"{triplet}-gcc", f"{triplet}-g++")
        missing = [tool for tool in compilers if not shutil.which(tool, path=path)]
        if missing:
            raise ContainerError(
                f"the {self.spec.arch} image's CPythons are cross-compiled here and "
                f"{', '.join(missing)} is not installed: apt-get install "
                + " ".join(CROSS_PACKAGES[self.spec.arch])
            )
        compiler = self._output([f"{triplet}-gcc", "-dumpfullversion"])
        pythons: dict[str, tuple[str, str]] = {}
        for build in self.spec.cpythons:
            number = build.version.number
            problem = cross_problem(build.version, path)
            found = shutil.which(f"python{number}", path=path)
            if problem is not None or found is None:
                raise ContainerError(
                    f"CPython {build.version} for the {self.spec.arch} image: {problem}"
                )
            version = self._output([found, "-c", "import sys; print(sys.version.split()[0])"])
            if not version.startswith(f"{number}."):
                raise ContainerError(f"{found} is CPython {version}, not {number}")
            pythons[number] = (found, version)
        return Cross(triplet, compiler, pythons)

    def _output(self, command: list[str]) -> str:
        return check(command, env=self.environ, timeout=60, error=ContainerError).strip()

    def _has_stage(self, reference: str, key: str) -> bool:
        found = inspect(self.engine, reference, self.environ)
        return found is not None and labels_of(found).get(label("content-key")) == key

    # -- keys ----------------------------------------------------------------------------------

    def resolve(self) -> Keys:
        """What the root would hold, from apt's resolution (nothing installed), and the keys."""
        if shutil.which("mmdebstrap", path=self.environ.get("PATH")) is None:
            raise ContainerError(
                "the local image is made with mmdebstrap, which is not installed: "
                "apt-get install mmdebstrap (or --image with an image you have)"
            )
        suite = self.spec.suite.name
        if self.spec.foreign:
            require_emulation(self.spec.arch)
        self._cross = self.cross()
        with self.logger.group(f"image: resolve Debian {suite}'s packages"):
            done = stream(
                [
                    "mmdebstrap",
                    "--simulate",
                    "--verbose",
                    "--variant=minbase",
                    *self._arch_options("mmdebstrap"),
                    "--include=" + ",".join(PACKAGES),
                    suite,
                    "/dev/null",
                    *self._suite_sources(),
                ],
                _Collect(self.logger),
                env=self.environ,
                label="mmdebstrap --simulate",
            )
            packages = simulated_packages(done.tail)
            if done.returncode != 0 or not packages:
                raise ContainerError(
                    f"apt could not resolve Debian {suite}'s packages for the image "
                    f"(mmdebstrap --simulate, exit status {done.returncode}):\n"
                    f"{excerpt(done.tail, 10)}"
                )
            self.logger.info(f"{len(packages)} packages; libc6 {packages.get('libc6', '?')}")
        return content_keys(self.spec, packages, self._cross)

    def find(self, keys: Keys) -> ImageRecord | None:
        """The image of these keys, if this engine has it."""
        reference = self.reference(keys)
        found = inspect(self.engine, reference, self.environ)
        if found is None or labels_of(found).get(label("content-key")) != keys.final:
            return None
        record = read_record(self.records / f"{keys.final[:16]}.json")
        if record is None or record.content_key != keys.final:
            record = image_record(self.engine, reference, self.environ)
        return record

    # -- the build -----------------------------------------------------------------------------

    def ensure(self) -> ImageRecord:
        """The image of the spec: found by its content key, or built (only what changed)."""
        start = time.monotonic()
        tags = ", ".join(b.tag for b in self.spec.cpythons)
        self.logger.info(
            f"image: {self.spec.repository} (Debian {self.spec.suite.name}, glibc "
            f"{self.spec.suite.glibc}; {tags}) with {self.engine.name}"
        )
        keys = self.resolve()
        found = self.find(keys)
        if found is not None:
            self.logger.info(f"image: up to date: {found.reference}")
            return found
        with file_lock(self.root / "lock"), interruptible(), self._cleanup():
            found = self.find(keys)  # another build may have made it meanwhile
            if found is not None:
                return found
            self._sweep()
            stages: dict[str, dict[str, object]] = {}
            base = self.base_stage(keys, stages)
            tarballs = [
                self.cpython_stage(build, key, base, stages)
                for build, key in zip(self.spec.cpythons, keys.cpythons, strict=True)
            ]
            record = self.final_stage(keys, base, tarballs, stages, start)
        self.logger.info(record.summary())
        return record

    def base_stage(self, keys: Keys, stages: dict[str, dict[str, object]]) -> str:
        reference = f"{STAGE_REPOSITORY}:base-{keys.base[:16]}"
        if self._has_stage(reference, keys.base):
            self.logger.info(f"image: base: reusing {reference}")
            stages["base"] = {"key": keys.base, "reused": True}
            return reference
        suite = self.spec.suite.name
        start = time.monotonic()
        with self.logger.group(f"image: base: mmdebstrap {suite} (minbase and the toolchain)"):
            tmp = self.root / "tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            tarball = tmp / f"base-{keys.base[:16]}-{os.getpid()}.tar"
            self._temporary.append(tarball)
            done = stream(
                [
                    "mmdebstrap",
                    "--variant=minbase",
                    "--include=" + ",".join(PACKAGES),
                    *self._arch_options("mmdebstrap"),
                    "--format=tar",
                    suite,
                    tarball,
                    *self._suite_sources(),
                ],
                self.logger,
                env=self.environ,
                label="mmdebstrap",
            )
            if done.returncode != 0:
                raise ContainerError(
                    f"mmdebstrap {suite} failed (exit status {done.returncode}):\n"
                    f"{excerpt(done.tail, 12)}"
                )
            temporary = f"{STAGE_REPOSITORY}:tmp-base-{keys.base[:16]}-{os.getpid()}"
            self._tags.append(temporary)
            self._run(
                "import",
                *self._arch_options("import"),
                "--change",
                'CMD ["/bin/bash"]',
                "--change",
                f"LABEL {label('stage')}=base",
                "--change",
                f"LABEL {label('content-key')}={keys.base}",
                tarball,
                temporary,
                label_="import",
                what="importing the Debian root",
            )
            remove_tree(tarball)
            installed = self._quiet(
                "run",
                "--rm",
                "--network=none",
                temporary,
                "dpkg-query",
                "-W",
                "-f",
                "${Package} ${Version}\n",
                what="listing the root's packages",
            )
            listed = dict(sorted(line.split(" ", 1) for line in installed.splitlines() if line))
            if listed != dict(keys.packages):
                differ = sorted(set(listed.items()) ^ set(keys.packages.items()))[:6]
                raise ContainerError(
                    "the Debian root holds other packages than apt resolved for its key "
                    f"(the mirror changed during the build?): {differ}; run the build again"
                )
            self._quiet("tag", temporary, reference, what="tagging the base stage")
        stages["base"] = {"key": keys.base, "seconds": round(time.monotonic() - start, 1)}
        return reference

    def cpython_stage(
        self, build: CPythonBuild, key: str, base: str, stages: dict[str, dict[str, object]]
    ) -> Path:
        out_dir = self.root / "cpython"
        stem = f"{build.tag}-{key[:16]}"
        tarball, info = out_dir / f"{stem}.tar", out_dir / f"{stem}.json"
        if tarball.is_file() and info.is_file():
            self.logger.info(f"image: {build.tag}: reusing {tarball.name}")
            stages[build.tag] = {"key": key, "reused": True}
            return tarball
        source = build.source
        start = time.monotonic()
        with self.logger.group(f"image: CPython {source.upstream} ({build.tag}) from source"):
            try:
                orig = fetch_orig(
                    source.package,
                    source.upstream,
                    source.orig_sha256,
                    suites=source.suites,
                    archives=self.archives,
                    cache=self.root / "sources",
                )
            except FatalError as error:
                raise ContainerError(
                    f"CPython {build.version}'s source for the local image: {error}"
                ) from None
            self.logger.info(
                f"source: {orig.path.name} ({orig.package} {orig.debian_version or '(cached)'}), "
                f"sha256 {orig.sha256}, .dsc signature: {orig.signature or 'unknown'}"
            )
            out_dir.mkdir(parents=True, exist_ok=True)
            partial = out_dir / f".{stem}.tar.{os.getpid()}.part"
            self._temporary.append(partial)
            if self._cross is not None:
                self._cross_build(build, self._cross, orig.path, base, partial)
            else:
                self._native_build(build, key, orig.path, base, partial)
            seconds = round(time.monotonic() - start, 1)
            info.write_text(
                json.dumps({"key": key, "source": orig.as_record(), "seconds": seconds}) + "\n"
            )
            partial.replace(tarball)  # the stage exists only whole
        stages[build.tag] = {"key": key, "seconds": seconds}
        return tarball

    def _native_build(
        self, build: CPythonBuild, key: str, orig: Path, base: str, partial: Path
    ) -> None:
        """build-cpython.sh in a container of the base, without network."""
        out_dir = partial.parent
        ccache = self.root / "ccache"
        ccache.mkdir(parents=True, exist_ok=True)
        name = self._container_name(build.tag, key)
        self._run(
            "run",
            "--rm",
            "--init",
            "--name",
            name,
            "--network=none",
            "--volume",
            f"{orig.parent}:/mb/src:ro",
            "--volume",
            f"{FILES}:/mb/files:ro",
            "--volume",
            f"{out_dir}:/mb/out",
            # ccache outside the image and its key: it changes nothing in the content
            "--volume",
            f"{ccache}:/mb/ccache",
            "--env",
            "CCACHE_DIR=/mb/ccache",
            "--env",
            f"PATH=/usr/lib/ccache:{PATH_IN_IMAGE}",
            base,
            "bash",
            "/mb/files/build-cpython.sh",
            f"/mb/src/{orig.name}",
            build.prefix,
            "nogil" if build.version.free_threaded else "gil",
            f"/mb/out/{partial.name}",
            label_=f"cpython {build.tag}",
            what=f"building CPython {build.source.upstream}",
        )

    def _cross_build(
        self, build: CPythonBuild, cross: Cross, orig: Path, base: str, partial: Path
    ) -> None:
        """cross-build-cpython.sh on the host against the base's root (exported, its absolute
        symbolic links made relative so that they resolve inside it)."""
        tmp = self.root / "tmp"
        sysroot = tmp / f"sysroot-{os.getpid()}"
        self._temporary.append(sysroot)
        self._export_root(base, sysroot)
        work = tmp / f"cross-{build.tag}-{os.getpid()}"
        self._temporary.append(work)
        done = stream(
            [
                "bash",
                str(CROSS_BUILD_CPYTHON),
                str(orig),
                build.prefix,
                "nogil" if build.version.free_threaded else "gil",
                str(partial),
                str(sysroot),
                cross.triplet,
                cross.build_pythons[build.version.number][0],
                str(work),
            ],
            self.logger,
            env=self.environ,
            label=f"cross cpython {build.tag}",
        )
        if done.returncode != 0:
            raise ContainerError(
                f"cross-compiling CPython {build.source.upstream} for {self.spec.arch} failed "
                f"(exit status {done.returncode}):\n{excerpt(done.tail, 12)}"
            )

    def _export_root(self, base: str, sysroot: Path) -> None:
        if (sysroot / "usr").is_dir():
            return
        tmp = sysroot.parent
        name = self._container_name("sysroot", base.rpartition("-")[2])
        self._quiet("create", "--name", name, base, "true", what="creating the sysroot container")
        tarball = tmp / f"sysroot-{os.getpid()}.tar"
        self._temporary.append(tarball)
        self._quiet("export", "-o", tarball, name, what="exporting the base's root")
        sysroot.mkdir(parents=True, exist_ok=True)
        check(
            ["tar", "-xf", tarball, "-C", sysroot, "--exclude=./dev", "--exclude=dev"],
            error=ContainerError,
            shown=f"tar -xf {tarball.name} (unpacking the base's root)",
        )
        remove_tree(tarball)
        relative_links(sysroot)

    def download_wheels(self) -> Path:
        """The pinned wheels the final stage installs, downloaded here by hash (the stage
        itself has no network)."""
        wheels = self.root / "wheels"
        oldest = min(build.version for build in self.spec.cpythons)
        arch = self.spec.arch
        platform_tags = (
            self.spec.platform_tag,
            f"manylinux_2_17_{arch}",
            f"manylinux2014_{arch}",
            f"manylinux_2_5_{arch}",
            f"manylinux1_{arch}",
        )
        command = [
            sys.executable,
            "-m",
            "pip",
            "download",
            "--quiet",
            "--no-deps",
            "--require-hashes",
            "--only-binary",
            ":all:",
            "--implementation",
            "cp",
            "--python-version",
            oldest.number,
            *(arg for tag in platform_tags for arg in ("--platform", tag)),
            "--dest",
            str(wheels),
            *(arg for path in REQUIREMENTS for arg in ("--requirement", str(path))),
        ]
        done = stream(command, self.logger, env=self.environ, label="pip download")
        if done.returncode != 0:
            raise ContainerError(
                f"the image's pinned wheels could not be downloaded:\n{excerpt(done.tail, 10)}"
            )
        return wheels

    def final_stage(
        self,
        keys: Keys,
        base: str,
        tarballs: Sequence[Path],
        stages: dict[str, dict[str, object]],
        start: float,
    ) -> ImageRecord:
        reference = self.reference(keys)
        stage_start = time.monotonic()
        with self.logger.group(f"image: final: pip, build, auditwheel; {reference}"):
            wheels = self.download_wheels()
            name = self._container_name("final", keys.final)
            cpython_dir = self.root / "cpython"
            self._run(
                "run",
                "--init",
                "--name",
                name,
                "--network=none",
                "--volume",
                f"{cpython_dir}:/mb/cpython:ro",
                "--volume",
                f"{wheels}:/mb/wheels:ro",
                "--volume",
                f"{FILES}:/mb/files:ro",
                base,
                "bash",
                "/mb/files/finalize-image.sh",
                *(f"/mb/cpython/{t.name}" for t in tarballs),
                label_="finalize",
                what="finishing the image",
            )
            tmp = self.root / "tmp"
            tmp.mkdir(parents=True, exist_ok=True)
            tools_json = tmp / f"tools-{os.getpid()}.json"
            self._temporary.append(tools_json)
            self._quiet(
                "cp",
                f"{name}:/opt/_internal/tools.json",
                tools_json,
                what="reading the image's tool versions",
            )
            made = json.loads(tools_json.read_text())
            # The copy in the image tells what it holds and how its earlier stages went.
            record = self._record(keys, reference, made, tarballs, dict(stages))
            in_image = tmp / f"image-{os.getpid()}.json"
            self._temporary.append(in_image)
            in_image.write_text(json.dumps(record.to_json(), indent=1) + "\n")
            self._quiet(
                "cp",
                in_image,
                f"{name}:/opt/_internal/image.json",
                what="writing the image record into the image",
            )
            changes = ['CMD ["/bin/bash"]']
            changes += [f"ENV {k}={v}" for k, v in image_env(self.spec).items()]
            changes += [f"LABEL {k}={v}" for k, v in record.labels().items()]
            temporary = f"{self.spec.repository}:tmp-{keys.final[:16]}-{os.getpid()}"
            self._tags.append(temporary)
            self._run(
                "commit",
                *(arg for change in changes for arg in ("--change", change)),
                name,
                temporary,
                label_="commit",
                what="committing the image",
            )
            if self.spec.foreign:
                # Cross-compiled: its stdlib's modules are first loaded here, emulated.
                for build in self.spec.cpythons:
                    self._quiet(
                        "run",
                        "--rm",
                        "--network=none",
                        temporary,
                        f"/opt/python/{build.tag}/bin/python",
                        "-c",
                        STDLIB_CHECK,
                        what=f"importing the stdlib of the cross-compiled CPython {build.tag}",
                    )
            # The name appears last: before this line, a kill leaves no image by this name.
            self._quiet("tag", temporary, reference, what="naming the image")
        stages["final"] = {"key": keys.final, "seconds": round(time.monotonic() - stage_start, 1)}
        described = inspect(self.engine, reference, self.environ) or {}
        record.image_id = str(described.get("Id", ""))
        record.size = int(described.get("Size", 0) or 0)
        record.build_seconds = round(time.monotonic() - start, 1)
        record.stages = stages
        path = record.write(self.records)
        self.logger.info(f"image: built {reference} in {format_duration(record.build_seconds)}")
        self.logger.info(f"image record: {path}")
        return record

    def _record(
        self,
        keys: Keys,
        reference: str,
        made: Mapping[str, Any],
        tarballs: Sequence[Path],
        stages: dict[str, dict[str, object]],
    ) -> ImageRecord:
        pythons: dict[str, dict[str, Any]] = {}
        for build, tarball in zip(self.spec.cpythons, tarballs, strict=True):
            info = json.loads(tarball.with_suffix(".json").read_text())
            pythons[build.tag] = {
                **made.get("pythons", {}).get(build.tag, {}),
                "source": info.get("source", {}),
            }
        packages = dict(keys.packages)
        gcc = self.spec.suite.gcc
        tools = {
            "gcc": packages.get(f"gcc-{gcc}", ""),
            "g++": packages.get(f"g++-{gcc}", ""),
            "gfortran": packages.get(f"gfortran-{gcc}", ""),
            "binutils": packages.get("binutils", ""),
            "cmake": packages.get("cmake", ""),
            **{str(k): str(v) for k, v in made.get("tools", {}).items()},
        }
        return ImageRecord(
            reference=reference,
            content_key=keys.final,
            suite=self.spec.suite.name,
            glibc=self.spec.suite.glibc,
            libc6=packages.get("libc6", ""),
            platform_tag=self.spec.platform_tag,
            pythons=pythons,
            tools=tools,
            packages=packages,
            created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            stages=stages,
        )


def relative_links(root: Path) -> None:
    """Every absolute symbolic link under `root` made relative, pointing where it points when
    `root` is /: a root used as a sysroot resolves inside itself, not on the host."""
    for directory, dirnames, filenames in os.walk(root):
        for name in (*dirnames, *filenames):
            path = Path(directory) / name
            if not path.is_symlink():
                continue
            target = str(path.readlink())
            if target.startswith("/"):
                path.unlink()
                path.symlink_to(os.path.relpath(root / target.lstrip("/"), path.parent))


class _Collect:
    """A sink that keeps every line (the simulation's package list), not only the tail, and
    passes them on to the log."""

    def __init__(self, logger: Logger) -> None:
        from collections import deque

        self.logger = logger
        self.tail: deque[str] = deque()

    def output(self, line: str) -> None:
        self.tail.append(line.rstrip("\n"))
        self.logger.output(line)

    def progress(self, label: str, elapsed: float) -> None:
        self.logger.progress(label, elapsed)


def image_record(engine: Engine, reference: str, environ: Mapping[str, str]) -> ImageRecord | None:
    """An image's record: the JSON it holds, else what its labels say."""
    found = inspect(engine, reference, environ)
    if found is None:
        return None
    done = engine.run(
        "run", "--rm", "--network=none", reference, "cat", "/opt/_internal/image.json", base=environ
    )
    if done.returncode == 0:
        try:
            record = ImageRecord.from_json(json.loads(done.stdout))
        except ValueError:
            record = None
        if record is not None:
            record.reference = reference
            record.image_id = str(found.get("Id", ""))
            record.size = int(found.get("Size", 0) or 0)
            return record
    return ImageRecord.from_labels(reference, labels_of(found))


def local_images(engine: Engine, environ: Mapping[str, str]) -> list[str]:
    """The references of the local images this engine holds (those with a content key)."""
    done = engine.run(
        "images",
        "--filter",
        f"label={label('content-key')}",
        "--format",
        "{{.Repository}}:{{.Tag}}",
        base=environ,
    )
    if done.returncode != 0:
        raise ContainerError(f"`{engine.name} images` failed: {done.stderr.strip()[-500:]}")
    return sorted(
        {
            line.strip()
            for line in done.stdout.splitlines()
            if line.startswith(IMAGE_REPOSITORY) and ":tmp-" not in line
        }
    )
