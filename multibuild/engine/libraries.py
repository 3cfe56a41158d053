"""Fresh builds of the C/C++/Fortran libraries a project needs, cached.

config.sh's pre_build calls `build_library [OPTIONS] NAME VERSION SOURCE SHA256 SYSTEM [ARGS]`
(shell/helpers.sh), which runs `python -m multibuild.engine.libraries ...` here. SOURCE is a
tarball (path, URL or a mirror's file) checked against SHA256, or a directory (SHA256 `-`:
a library vendored in the project's own tree, keyed by its content). Patches, a pre-configure
step (`autoreconf -fi`) and a subdirectory are part of the recipe.

A build is cached under a key made of everything that determines its output, except the
prefix: an entry built for another prefix is relocated (the prefix rewritten in its text files:
.pc, .la, CMake and -config scripts) unless a binary file holds it, and then an entry is built
for this prefix too. An entry appears by one rename only when complete, so a build killed
half-way leaves nothing that looks good. Builds run in a fixed directory of the cache (under a
lock), so compiler caches (ccache) hit from one build to the next.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import stat
import sys
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path

from multibuild.errors import FatalError, LibraryError, SystemDependencyError, report
from multibuild.log import Logger
from multibuild.options import HookContext
from multibuild.util.archives import download, unpack
from multibuild.util.cmd import capture, excerpt, stream
from multibuild.util.files import copy_tree_into, file_lock, remove_tree, sha256_file
from multibuild.util.urls import basename, hide_userinfo, local_path

# Each build system and the tools it runs.
BUILD_SYSTEMS = {
    "configure": ("make",),
    "cmake": ("cmake",),
    "meson": ("meson", "ninja"),
    "make": ("make",),
}
# Bump when the way a build system is driven changes: it invalidates every cache entry.
RECIPE_FORMAT = 3
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
DIRECTORY = "-"  # SHA256 of a directory source: its content is hashed here


@dataclass(frozen=True, kw_only=True)
class LibraryRecipe:
    name: str
    version: str
    url: str  # a tarball (path, file:// or URL) or a directory
    sha256: str  # the tarball's, or "-" for a directory
    system: str
    args: tuple[str, ...] = ()
    patches: tuple[Path, ...] = ()
    pre_configure: str = ""  # a shell command run in the source tree first (autoreconf -fi)
    subdir: str = ""  # where the build system's files are, inside the source

    def __post_init__(self) -> None:
        if self.system not in BUILD_SYSTEMS:
            raise LibraryError(
                f"{self.name}: unknown build system {self.system!r} "
                f"(one of: {', '.join(BUILD_SYSTEMS)})"
            )
        if self.sha256 == DIRECTORY:
            path = local_path(self.url)
            if path is None or not path.is_dir():
                raise LibraryError(
                    f"{self.name}: SHA256 '-' is for a directory source; {self.url} is not one"
                )
        elif len(self.sha256) != 64 or any(c not in "0123456789abcdef" for c in self.sha256):
            raise LibraryError(f"{self.name}: {self.sha256!r} is not a sha256 hex digest")
        for patch in self.patches:
            if not patch.is_file():
                raise LibraryError(f"{self.name}: patch {patch} does not exist")
        if self.subdir and (self.subdir.startswith("/") or ".." in Path(self.subdir).parts):
            raise LibraryError(f"{self.name}: --subdir {self.subdir!r} must be inside the source")

    @property
    def is_directory(self) -> bool:
        return self.sha256 == DIRECTORY


@dataclass(frozen=True, kw_only=True)
class LibraryResult:
    """What the build record says of a library: where it came from, how it was built."""

    name: str
    version: str
    key: str
    cached: bool
    seconds: float
    source: str  # URL or path (credentials hidden)
    sha256: str  # of the tarball, or of the directory's content
    system: str
    args: tuple[str, ...] = ()
    patches: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    pre_configure: str = ""
    subdir: str = ""
    flags: dict[str, str] = field(default_factory=dict)  # the compiler variables it saw
    relocated_from: str = ""  # the prefix a cache entry was built for, when not this one


def directory_digest(tree: Path) -> str:
    """sha256 of a source tree: relative paths, file contents, the executable bit and symlink
    targets, in sorted order (.git directories left out)."""
    digest = hashlib.sha256()
    for path in sorted(tree.rglob("*")):
        relative = path.relative_to(tree)
        if ".git" in relative.parts:
            continue
        if path.is_symlink():
            digest.update(b"L" + str(relative).encode() + b"\0" + str(path.readlink()).encode())
        elif path.is_file():
            executable = b"x" if path.stat().st_mode & 0o111 else b"-"
            digest.update(b"F" + executable + str(relative).encode() + b"\0")
            digest.update(sha256_file(path).encode())
        elif path.is_dir():
            digest.update(b"D" + str(relative).encode() + b"\0")
    return digest.hexdigest()


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


def flags_of(environ: Mapping[str, str]) -> dict[str, str]:
    """The compiler variables a build sees (a ccache launcher is not a flag)."""
    flags = {}
    for name in FLAG_VARIABLES:
        value = environ.get(name, "")
        if name in ("CC", "CXX", "FC", "F77"):
            value = " ".join(word for word in value.split() if word != "ccache")
        if value:
            flags[name] = value
    return flags


def cache_key(
    recipe: LibraryRecipe, source_sha256: str, environ: Mapping[str, str], prefix: Path
) -> str:
    """The key of everything that decides a build's output. Not the prefix (nor the flags'
    mentions of it: -I<prefix>/include): entries are relocated (the module's docstring)."""
    facts = {
        "format": RECIPE_FORMAT,
        "recipe": {
            "name": recipe.name,
            "version": recipe.version,
            "sha256": source_sha256,
            "system": recipe.system,
            "args": list(recipe.args),
            "patches": [sha256_file(p) for p in recipe.patches],
            "pre_configure": recipe.pre_configure,
            "subdir": recipe.subdir,
        },
        "platform": [sys.platform, platform.machine()],
        "compilers": compiler_identity(environ),
        "flags": {
            name: " ".join(
                word.replace(str(prefix), "${PREFIX}")
                for word in value.split()
                # Maps of the build's directories to fixed names: the output is the same
                # from any work dir (that is what they are for).
                if not word.startswith("-ffile-prefix-map=")
            )
            for name, value in flags_of(environ).items()
        },
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


def cmake_flags(environ: Mapping[str, str]) -> dict[str, str]:
    """CMake reads CFLAGS and CXXFLAGS but not CPPFLAGS: the preprocessor flags (include paths,
    -ffile-prefix-map) go in front of them. Its build type's own flags (-O3, -g) stay apart."""
    cppflags = environ.get("CPPFLAGS", "").strip()
    if not cppflags:
        return {}
    return {
        name: " ".join(filter(None, (cppflags, environ.get(name, "").strip())))
        for name in ("CFLAGS", "CXXFLAGS")
    }


def build_commands(
    recipe: LibraryRecipe,
    src: Path,
    prefix: Path,
    stage: Path,
    jobs: int,
    *,
    environ: Mapping[str, str] | None = None,
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
                    cmake_flags(environ or {}),
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


def _listing(prefix: Path) -> set[Path]:
    """The files (and links) under `prefix`."""
    if not prefix.is_dir():
        return set()
    return {
        Path(top) / name
        for top, dirs, files in os.walk(prefix)
        for name in [*files, *(d for d in dirs if (Path(top) / d).is_symlink())]
    }


def _refuse_ignored_destdir(recipe: LibraryRecipe, prefix: Path, before: set[Path]) -> None:
    """An install that ignored DESTDIR (hand-written Makefiles: bzip2's, lua's) wrote into
    the shared prefix behind the cache's back: those files go again, and the error says how
    to stage the install."""
    written = sorted(_listing(prefix) - before)
    if not written:
        return
    for path in written:
        path.unlink(missing_ok=True)
    shown = ", ".join(str(p.relative_to(prefix)) for p in written[:5])
    more = f" and {len(written) - 5} more" if len(written) > 5 else ""
    raise LibraryError(
        f"{recipe.name}: its install ignored DESTDIR and wrote into {prefix} itself ({shown}"
        f"{more}; removed again). The library cache needs the install staged under "
        "$(DESTDIR): put $(DESTDIR) in front of the Makefile's install paths with --patch, or "
        "with --pre-configure, e.g. --pre-configure \"sed -i 's|$(PREFIX)|$(DESTDIR)$(PREFIX)|g' "
        'Makefile"'
    )


def _staged_prefix(stage: Path, prefix: Path) -> Path:
    # DESTDIR puts files at stage + absolute prefix (drive letters dropped on Windows).
    return stage / prefix.relative_to(prefix.anchor)


def _prepare_source(
    recipe: LibraryRecipe,
    work: Path,
    *,
    cache_dir: Path,
    mirrors: Sequence[Path],
    environ: Mapping[str, str],
    logger: Logger,
) -> Path:
    """The source tree to build, in `work`: unpacked or copied, patched, pre-configured."""
    if recipe.is_directory:
        origin = local_path(recipe.url)
        assert origin is not None
        src = work / origin.name
        shutil.copytree(origin, src, symlinks=True, ignore=shutil.ignore_patterns(".git"))
    else:
        archive = fetch_source(recipe.url, recipe.sha256, cache_dir / "archives", mirrors, logger)
        src = unpack(archive, work, error=LibraryError)
    for patch in recipe.patches:
        if shutil.which("patch") is None:
            raise SystemDependencyError(f"{recipe.name}: --patch needs `patch` (not on PATH)")
        done = stream(
            ["patch", "-p1", "--forward", "--batch", "-i", patch.resolve()],
            logger,
            cwd=src,
            env=environ,
            label=f"{recipe.name} patch",
        )
        if done.returncode != 0:
            raise LibraryError(
                f"{recipe.name}: patch {patch.name} does not apply:\n{excerpt(done.tail, 10)}"
            )
    if recipe.subdir:
        src = src / recipe.subdir
        if not src.is_dir():
            raise LibraryError(f"{recipe.name}: no directory {recipe.subdir} in the source")
    if recipe.pre_configure:
        done = stream(
            ["sh", "-c", recipe.pre_configure],
            logger,
            cwd=src,
            env=environ,
            label=f"{recipe.name} pre-configure",
        )
        if done.returncode != 0:
            raise LibraryError(
                f"{recipe.name}: `{recipe.pre_configure}` failed (exit status "
                f"{done.returncode}):\n{excerpt(done.tail, 10)}"
            )
    return src


def _build_into(
    recipe: LibraryRecipe,
    entry: Path,
    *,
    prefix: Path,
    cache_dir: Path,
    mirrors: Sequence[Path],
    jobs: int,
    environ: Mapping[str, str],
    logger: Logger,
    manifest: dict[str, object],
) -> None:
    """Build the library and make `entry` appear (by one rename) with its tree and manifest."""
    missing = [t for t in BUILD_SYSTEMS[recipe.system] if shutil.which(t) is None]
    if missing:
        raise LibraryError(
            f"building {recipe.name} with {recipe.system} needs "
            f"{' and '.join(missing)}, not found on PATH"
        )
    libs = entry.parent
    for stale in libs.glob(f"{entry.name}.tmp-*"):  # leftovers of a killed build
        remove_tree(stale)
    # A fixed build directory (under the lock): the same paths on every build, so ccache hits.
    work = libs / "build" / entry.name
    remove_tree(work)
    work.mkdir(parents=True)
    start = time.monotonic()
    src = _prepare_source(
        recipe, work / "src", cache_dir=cache_dir, mirrors=mirrors, environ=environ, logger=logger
    )
    stage = work / "stage"
    before = _listing(prefix)
    for command, cwd, extra in build_commands(recipe, src, prefix, stage, jobs, environ=environ):
        done = stream(
            command, logger, cwd=cwd, env={**environ, **extra}, label=f"{recipe.name} {command[0]}"
        )
        if done.returncode != 0:
            raise LibraryError(
                f"building {recipe.name} {recipe.version} failed: `{command[0]} "
                f"{' '.join(command[1:2])}...` exited with status {done.returncode}\n"
                + excerpt(done.tail, 15)
            )
    installed = _staged_prefix(stage, prefix)
    if not installed.is_dir():
        _refuse_ignored_destdir(recipe, prefix, before)
        raise LibraryError(f"{recipe.name}: the build installed nothing into {prefix}")
    tmp = libs / f"{entry.name}.tmp-{os.getpid()}"
    remove_tree(tmp)
    tmp.mkdir()
    installed.rename(tmp / "tree")
    holding = _files_holding(tmp / "tree", str(prefix))
    binary = sorted(name for name, is_binary in holding.items() if is_binary)
    manifest.update(
        prefix=str(prefix),
        binary_refs=binary,  # files that hold the prefix and cannot be rewritten
        built=time.time(),
        seconds=round(time.monotonic() - start, 3),
    )
    (tmp / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    remove_tree(work)
    tmp.rename(entry)  # the one step that makes the entry visible


def _files_holding(tree: Path, prefix: str) -> dict[str, bool]:
    """The files of `tree` whose bytes hold `prefix`, each with whether it is binary (a NUL
    byte: an ELF's RUNPATH, a Mach-O install name) and so cannot be rewritten."""
    needle = prefix.encode()
    found = {}
    for path in sorted(tree.rglob("*")):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if needle in data:
            found[str(path.relative_to(tree))] = b"\0" in data
    return found


def _copy_relocated(tree: Path, prefix: Path, built_for: str) -> int:
    """Copy an entry's tree into `prefix`, its old prefix rewritten in its text files."""
    files = copy_tree_into(tree, prefix)
    old, new = built_for.encode(), str(prefix).encode()
    if old == new:
        return files  # the files keep their dates: a kept build dir's outputs stay current
    for name in _files_holding(tree, built_for):
        path = prefix / name
        mode = stat.S_IMODE(path.stat().st_mode)
        path.write_bytes(path.read_bytes().replace(old, new))
        path.chmod(mode)
    return files


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
    if recipe.is_directory:
        origin = local_path(recipe.url)
        assert origin is not None
        source_sha256 = directory_digest(origin)
    else:
        source_sha256 = recipe.sha256
    key = cache_key(recipe, source_sha256, environ, prefix)
    libs = cache_dir / "libs"
    primary = libs / f"{recipe.name}-{recipe.version}-{key}"
    own = primary.with_name(
        f"{primary.name}-{hashlib.sha256(str(prefix).encode()).hexdigest()[:8]}"
    )
    manifest: dict[str, object] = {
        "recipe": {**asdict(recipe), "patches": [str(p) for p in recipe.patches]},
        "source_sha256": source_sha256,
        "key": key,
    }
    relocated_from = ""
    with file_lock(libs / f"{primary.name}.lock"):
        entry = primary
        cached = (entry / "manifest.json").is_file()
        if cached:
            built_for = json.loads((entry / "manifest.json").read_text()).get("prefix", "")
            binary = json.loads((entry / "manifest.json").read_text()).get("binary_refs", [])
            if built_for != str(prefix) and binary:
                # Built for another prefix, which a binary file holds: one for this prefix.
                entry = own
                cached = (entry / "manifest.json").is_file()
            elif built_for != str(prefix):
                relocated_from = built_for
        if not cached:
            _build_into(
                recipe,
                entry,
                prefix=prefix,
                cache_dir=cache_dir,
                mirrors=mirrors,
                jobs=jobs,
                environ=environ,
                logger=logger,
                manifest=manifest,
            )
        prefix.mkdir(parents=True, exist_ok=True)
        if relocated_from:
            files = _copy_relocated(entry / "tree", prefix, relocated_from)
        else:
            files = copy_tree_into(entry / "tree", prefix)
    seconds = time.monotonic() - start
    how = "from cache" if cached else "built"
    moved = f", relocated from {relocated_from}" if relocated_from else ""
    logger.info(
        f"library {recipe.name} {recipe.version}: {how} ({files} files, key {key}{moved}) "
        f"in {seconds:.2f}s"
    )
    return LibraryResult(
        name=recipe.name,
        version=recipe.version,
        key=key,
        cached=cached,
        seconds=round(seconds, 3),
        source=hide_userinfo(recipe.url),
        sha256=source_sha256,
        system=recipe.system,
        args=recipe.args,
        patches={p.name: sha256_file(p) for p in recipe.patches},
        pre_configure=recipe.pre_configure,
        subdir=recipe.subdir,
        flags=flags_of(environ),
        relocated_from=relocated_from,
    )


# -- the entry point shell/helpers.sh calls -------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="build_library",
        usage="build_library [--patch FILE]... [--pre-configure CMD] [--subdir DIR] "
        "NAME VERSION SOURCE SHA256|- SYSTEM [ARGS...]",
    )
    # A value may hold several files, PATH-style (fetch_debian_source's $DEBIAN_PATCHES).
    parser.add_argument("--patch", action="append", default=[], metavar="FILE[:FILE...]")
    parser.add_argument("--pre-configure", default="", metavar="CMD")
    parser.add_argument("--subdir", default="", metavar="DIR")
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
            patches=tuple(
                Path(p).resolve() for value in ns.patch for p in value.split(os.pathsep) if p
            ),
            pre_configure=ns.pre_configure,
            subdir=ns.subdir,
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
