"""Step 2: fresh builds of the C/C++/Fortran libraries a project needs, cached.

config.sh's pre_build calls `build_library NAME VERSION URL SHA256 SYSTEM [ARGS...]` (see
shell/helpers.sh), which runs `python -m multibuild.engine.libraries build ...` here. A build is
cached under a key made of everything that determines its output; a cache entry appears by
one rename only when complete, so a build killed half-way leaves nothing that looks good.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from multibuild.errors import FatalError, LibraryError, report
from multibuild.log import Logger
from multibuild.options import HookContext
from multibuild.util.archives import download, unpack
from multibuild.util.cmd import capture, excerpt, stream
from multibuild.util.files import copy_tree_into, file_lock, remove_tree, sha256_file
from multibuild.util.urls import basename, hide_userinfo

# Each build system and the tools it runs.
BUILD_SYSTEMS = {
    "configure": ("make",),
    "cmake": ("cmake",),
    "meson": ("meson", "ninja"),
    "make": ("make",),
}
# Bump when the way a build system is driven changes: it invalidates every cache entry.
RECIPE_FORMAT = 1
# Compiler-related variables that change what a library build produces.
FLAG_VARIABLES = (
    "CC",
    "CXX",
    "FC",
    "F77",
    "CPPFLAGS",
    "CFLAGS",
    "CXXFLAGS",
    "FFLAGS",
    "FCFLAGS",
    "LDFLAGS",
    "MACOSX_DEPLOYMENT_TARGET",
    "ARCHFLAGS",
)


@dataclass(frozen=True, kw_only=True)
class LibraryRecipe:
    name: str
    version: str
    url: str
    sha256: str
    system: str
    args: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.system not in BUILD_SYSTEMS:
            raise LibraryError(
                f"{self.name}: unknown build system {self.system!r} "
                f"(one of: {', '.join(BUILD_SYSTEMS)})"
            )
        if len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise LibraryError(f"{self.name}: {self.sha256!r} is not a sha256 hex digest")


@dataclass(frozen=True, kw_only=True)
class LibraryResult:
    name: str
    version: str
    key: str
    cached: bool
    seconds: float


def compiler_identity(environ: Mapping[str, str]) -> dict[str, str]:
    """First line of each compiler's --version: a new compiler means a new build."""
    identity = {}
    for variable, default in (("CC", "cc"), ("CXX", "c++"), ("FC", "gfortran")):
        words = [w for w in environ.get(variable, default).split() if w != "ccache"]
        compiler = words[0] if words else default
        if shutil.which(compiler):
            version = capture([compiler, "--version"])
            identity[variable] = version.splitlines()[0] if version else compiler
    return identity


def cache_key(recipe: LibraryRecipe, prefix: Path, environ: Mapping[str, str]) -> str:
    facts = {
        "format": RECIPE_FORMAT,
        "recipe": {k: v for k, v in asdict(recipe).items() if k != "url"},
        "prefix": str(prefix),  # baked into .pc files and install names
        "platform": [sys.platform, platform.machine()],
        "compilers": compiler_identity(environ),
        "flags": {name: environ.get(name, "") for name in FLAG_VARIABLES},
    }
    blob = json.dumps(facts, sort_keys=True).encode()
    return hashlib.sha256(blob).hexdigest()[:20]


# -- fetching sources ----------------------------------------------------------------------------


def fetch_source(
    url: str, sha256: str, archives: Path, mirrors: Sequence[Path], logger: Logger
) -> Path:
    """The source file, verified: from a mirror directory, the archive cache, or the URL."""
    filename = basename(url)
    archives.mkdir(parents=True, exist_ok=True)
    target = archives / filename
    for candidate in [*(m / filename for m in mirrors), target]:
        if candidate.is_file() and sha256_file(candidate) == sha256:
            if candidate != target:
                shutil.copyfile(candidate, target)
            return target
    logger.info(f"fetching {hide_userinfo(url)}")
    try:
        download(url, target, sha256=sha256, error=LibraryError)
    except LibraryError as error:
        where = f" (not in the mirrors {', '.join(map(str, mirrors))} either)" if mirrors else ""
        raise LibraryError(f"{error}{where}") from None
    return target


# -- building --------------------------------------------------------------------------------------


def build_commands(
    recipe: LibraryRecipe, src: Path, prefix: Path, stage: Path, jobs: int
) -> list[tuple[list[str], Path, dict[str, str]]]:
    """(command, cwd, extra env) steps that build `src` and install it into stage/prefix."""
    destdir = {"DESTDIR": str(stage)}
    build = src / "_mb_build"
    args = list(recipe.args)
    match recipe.system:
        case "configure":
            return [
                (["./configure", f"--prefix={prefix}", *args], src, {}),
                (["make", f"-j{jobs}"], src, {}),
                (["make", "install"], src, destdir),
            ]
        case "cmake":
            return [
                (
                    [
                        "cmake",
                        "-S",
                        ".",
                        "-B",
                        str(build),
                        f"-DCMAKE_INSTALL_PREFIX={prefix}",
                        "-DCMAKE_INSTALL_LIBDIR=lib",
                        "-DCMAKE_BUILD_TYPE=Release",
                        *args,
                    ],
                    src,
                    {},
                ),
                (["cmake", "--build", str(build), "--parallel", str(jobs)], src, {}),
                (["cmake", "--install", str(build)], src, destdir),
            ]
        case "meson":
            return [
                (
                    [
                        "meson",
                        "setup",
                        str(build),
                        f"--prefix={prefix}",
                        "--libdir=lib",
                        "--buildtype=release",
                        *args,
                    ],
                    src,
                    {},
                ),
                (["meson", "compile", "-C", str(build), "-j", str(jobs)], src, {}),
                (["meson", "install", "-C", str(build), "--destdir", str(stage)], src, {}),
            ]
        case "make":
            # Plain Makefiles (OpenBLAS style) take PREFIX and honour DESTDIR.
            return [
                (["make", f"-j{jobs}", f"PREFIX={prefix}", *args], src, {}),
                (["make", "install", f"PREFIX={prefix}", *args], src, destdir),
            ]
    raise LibraryError(f"unknown build system {recipe.system}")


def _staged_prefix(stage: Path, prefix: Path) -> Path:
    # DESTDIR puts files at stage + absolute prefix (drive letters dropped on Windows).
    return stage / prefix.relative_to(prefix.anchor)


def build_library(
    recipe: LibraryRecipe,
    *,
    prefix: Path,
    cache_dir: Path,
    mirrors: Sequence[Path],
    jobs: int,
    logger: Logger,
    environ: Mapping[str, str],
) -> LibraryResult:
    start = time.monotonic()
    key = cache_key(recipe, prefix, environ)
    libs = cache_dir / "libs"
    entry = libs / f"{recipe.name}-{recipe.version}-{key}"
    with file_lock(libs / f"{entry.name}.lock"):
        cached = (entry / "manifest.json").is_file()
        if not cached:
            missing = [t for t in BUILD_SYSTEMS[recipe.system] if shutil.which(t) is None]
            if missing:
                raise LibraryError(
                    f"building {recipe.name} with {recipe.system} needs "
                    f"{' and '.join(missing)}, not found on PATH"
                )
            # Leftovers of a build killed half-way: never used, removed here under the lock.
            for stale in libs.glob(f"{entry.name}.tmp-*"):
                remove_tree(stale)
            archive = fetch_source(
                recipe.url, recipe.sha256, cache_dir / "archives", mirrors, logger
            )
            tmp = libs / f"{entry.name}.tmp-{os.getpid()}"
            src = unpack(archive, tmp / "src", error=LibraryError)
            stage = tmp / "stage"
            for command, cwd, extra in build_commands(recipe, src, prefix, stage, jobs):
                done = stream(
                    command,
                    logger,
                    cwd=cwd,
                    env={**environ, **extra},
                    label=f"{recipe.name} {command[0]}",
                )
                if done.returncode != 0:
                    raise LibraryError(
                        f"building {recipe.name} {recipe.version} failed: `{command[0]} "
                        f"{' '.join(command[1:2])}...` exited with status {done.returncode}\n"
                        + excerpt(done.tail, 15)
                    )
            installed = _staged_prefix(stage, prefix)
            if not installed.is_dir():
                raise LibraryError(f"{recipe.name}: the build installed nothing into {prefix}")
            installed.rename(tmp / "tree")
            remove_tree(tmp / "src")
            remove_tree(stage)
            manifest = {
                "recipe": asdict(recipe),
                "key": key,
                "built": time.time(),
                "seconds": round(time.monotonic() - start, 3),
            }
            (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
            tmp.rename(entry)  # the one step that makes the entry visible
        prefix.mkdir(parents=True, exist_ok=True)
        files = copy_tree_into(entry / "tree", prefix)
    seconds = time.monotonic() - start
    how = "from cache" if cached else "built"
    logger.info(
        f"library {recipe.name} {recipe.version}: {how} ({files} files, key {key}) "
        f"in {seconds:.2f}s"
    )
    return LibraryResult(
        name=recipe.name, version=recipe.version, key=key, cached=cached, seconds=round(seconds, 3)
    )


# -- the entry point shell/helpers.sh calls -------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="build_library")
    parser.add_argument("name")
    parser.add_argument("version")
    parser.add_argument("url")
    parser.add_argument("sha256")
    parser.add_argument("system")
    parser.add_argument("args", nargs=argparse.REMAINDER)
    ns = parser.parse_args(argv)
    logger = Logger(verbose=True)
    try:
        context = HookContext.from_environ(os.environ)
        if context.prefix is None or context.cache_dir is None:
            raise LibraryError(
                "BUILD_PREFIX and MB_CACHE_DIR are not set; call build_library from a hook "
                "run by multibuild"
            )
        recipe = LibraryRecipe(
            name=ns.name,
            version=ns.version,
            url=ns.url,
            sha256=ns.sha256.lower(),
            system=ns.system,
            args=tuple(a for a in ns.args if a != "--"),
        )
        result = build_library(
            recipe,
            prefix=context.prefix,
            cache_dir=context.cache_dir,
            mirrors=context.mirrors,
            jobs=context.jobs,
            logger=logger,
            environ=os.environ,
        )
    except FatalError as error:
        return report("build_library", error)
    if context.library_results is not None:
        with context.library_results.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(asdict(result)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
