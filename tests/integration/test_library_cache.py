"""The library cache: hits skip the build, a changed recipe rebuilds, a killed build leaves
nothing that passes for a good entry."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

from multibuild.engine.libraries import LibraryRecipe, LibraryResult, build_library, cache_key
from multibuild.errors import LibraryError
from multibuild.log import Logger
from multibuild.util.files import sha256_file
from tests.helpers import FIXTURES, build_args, config_copy, make_repo, run_multibuild

HELLO_SHA = "6d1645e831d0181fcf82c289fce1ee934f2495ff3350afe23fe9f8d6a6a05cc6"


def recipe(**changes: object) -> LibraryRecipe:
    fields: dict[str, object] = {
        "name": "libhello",
        "version": "1.0",
        "url": str(FIXTURES / "tarballs/libhello-1.0.tar.gz"),
        "sha256": HELLO_SHA,
        "system": "cmake",
        "args": (),
    }
    fields.update(changes)
    return LibraryRecipe(**fields)  # type: ignore[arg-type]


def key(lib: LibraryRecipe, env: dict[str, str], prefix: Path = Path("/p")) -> str:
    return cache_key(lib, lib.sha256, env, prefix)


def test_cache_key_follows_what_determines_the_output(tmp_path: Path) -> None:
    env = {"CFLAGS": "-O2", "CC": "gcc"}
    base = key(recipe(), env)
    assert key(recipe(), env) == base
    assert (
        key(recipe(url="https://mirror.invalid/libhello-1.0.tar.gz"), env) == base
    )  # where it came from does not change what it is
    assert key(recipe(), {**env, "CC": "ccache gcc"}) == base  # nor a compiler cache
    assert key(recipe(args=("-DHELLO_SHOUT=ON",)), env) != base
    assert key(recipe(version="1.1"), env) != base
    assert key(recipe(system="meson"), env) != base
    assert key(recipe(pre_configure="true"), env) != base
    assert key(recipe(subdir="x"), env) != base
    patch = tmp_path / "a.patch"
    patch.write_text("x")
    patched = key(recipe(patches=(patch,)), env)
    assert patched != base
    patch.write_text("y")  # the patch's content, not its name
    assert key(recipe(patches=(patch,)), env) != patched
    assert key(recipe(), {**env, "CFLAGS": "-O3"}) != base
    # Flags that name the prefix name it the same way from any work dir.
    inc = {**env, "CPPFLAGS": "-I/a/prefix/include"}
    assert key(recipe(), inc, Path("/a/prefix")) == key(
        recipe(), {**env, "CPPFLAGS": "-I/b/prefix/include"}, Path("/b/prefix")
    )


def test_killed_build_leftovers_are_not_used(tmp_path: Path) -> None:
    prefix, cache = tmp_path / "prefix", tmp_path / "cache"
    logger = Logger(verbose=False)
    stale = cache / "libs" / f"libhello-1.0-{key(recipe(), dict(os.environ), prefix)}.tmp-99999"
    (stale / "tree" / "lib").mkdir(parents=True)
    (stale / "tree" / "lib" / "libhello.so").write_text("half-written")
    result = build_library(
        recipe(),
        prefix=prefix,
        cache_dir=cache,
        mirrors=(),
        jobs=2,
        logger=logger,
        environ=os.environ,
    )
    assert not result.cached
    assert not stale.exists()
    assert (prefix / "lib" / "libhello.so.1.0.0").read_bytes().startswith(b"\x7fELF")
    again = build_library(
        recipe(),
        prefix=prefix,
        cache_dir=cache,
        mirrors=(),
        jobs=2,
        logger=logger,
        environ=os.environ,
    )
    assert again.cached and again.key == result.key


def test_mirror_directory_is_used_before_the_url(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "libhello-1.0.tar.gz").write_bytes(
        (FIXTURES / "tarballs/libhello-1.0.tar.gz").read_bytes()
    )
    offline = recipe(url="https://unreachable.invalid/dist/libhello-1.0.tar.gz")
    result = build_library(
        offline,
        prefix=tmp_path / "prefix",
        cache_dir=tmp_path / "cache",
        mirrors=[mirror],
        jobs=2,
        logger=Logger(),
        environ=os.environ,
    )
    assert not result.cached


@pytest.mark.slow
def test_second_build_uses_the_cache_and_a_changed_recipe_rebuilds(tmp_path: Path) -> None:
    repo = make_repo("hello-c", tmp_path / "repo")
    config = config_copy("hello-c", tmp_path / "config")
    args = build_args(repo, config)

    def libraries(run_output_dir: Path) -> list[dict[str, object]]:
        newest = sorted(run_output_dir.glob("*.json"))[-1]
        libs: list[dict[str, object]] = json.loads(newest.read_text())["builds"][0]["libraries"]
        return libs

    first = run_multibuild(tmp_path, *args)
    assert first.returncode == 0, first.output
    assert libraries(first.wheelhouse)[0]["cached"] is False

    second = run_multibuild(tmp_path, *args)
    assert second.returncode == 0, second.output
    (lib,) = libraries(second.wheelhouse)
    assert lib["cached"] is True
    log = sorted(second.wheelhouse.glob("*.log"))[-1].read_text()
    assert "library libhello 1.0: from cache" in log
    assert "cmake --build" not in log.split("==> python 3.11: pre_build")[1]

    # A changed recipe (a new build flag) is a new cache entry, and the wheel shows it.
    config_copy(
        "hello-c",
        tmp_path / "config",
        edit={
            "a6a05cc6 cmake": "a6a05cc6 cmake -DHELLO_SHOUT=ON",
            'print("greeting:", hello_c.greeting())': (
                'assert hello_c.greeting() == "HELLO FROM LIBHELLO 1.0"'
            ),
        },
    )
    third = run_multibuild(tmp_path, *args)
    assert third.returncode == 0, third.output
    (lib3,) = libraries(third.wheelhouse)
    assert lib3["cached"] is False and lib3["key"] != lib["key"]


@pytest.mark.parametrize(
    ("tarball", "sha256", "system"),
    [
        (
            "libtally-1.0.tar.gz",
            "ba18053328f782332ac380166cc9faa4e29ade8b152a74865ba4464381396834",
            "configure",
        ),
        (
            "libtally-meson-1.0.tar.gz",
            "b7e200f7ae49669aecfa6395ee2b84c1663d8cc31c6a1cb49a6b6d67a03d1c29",
            "meson",
        ),
    ],
)
def test_configure_and_meson_libraries(
    tmp_path: Path, tarball: str, sha256: str, system: str
) -> None:
    """The other build systems, through the same cached path, into the prefix."""
    prefix = tmp_path / "prefix"
    lib = LibraryRecipe(
        name="libtally",
        version="1.0",
        url=str(FIXTURES / "tarballs" / tarball),
        sha256=sha256,
        system=system,
    )
    result = build_library(
        lib,
        prefix=prefix,
        cache_dir=tmp_path / "cache",
        mirrors=(),
        jobs=2,
        logger=Logger(),
        environ=os.environ,
    )
    assert not result.cached
    assert (prefix / "lib" / "libtally.so.1").exists() or (
        prefix / "lib" / "libtally.so.1.0.0"
    ).exists()
    assert (prefix / "include" / "tally.h").is_file()
    if system == "meson":
        pc = (prefix / "lib/pkgconfig/tally.pc").read_text()
        assert f"prefix={prefix}" in pc


def test_unknown_build_system_is_a_clear_error() -> None:
    with pytest.raises(LibraryError, match="unknown build system 'scons'"):
        recipe(system="scons")
    with pytest.raises(LibraryError, match="is not a sha256 hex digest"):
        recipe(sha256="abc")


def build(lib: LibraryRecipe, prefix: Path, cache: Path) -> LibraryResult:
    return build_library(
        lib, prefix=prefix, cache_dir=cache, mirrors=(), jobs=2, logger=Logger(), environ=os.environ
    )


FSTATS = LibraryRecipe(
    name="libfstats",
    version="1.0",
    url=str(FIXTURES / "tarballs/libfstats-1.0.tar.gz"),
    sha256="73e150972322c80a515a2a6205e5105f3770045f5b44f08c25f06ba96d0fbfec",
    system="make",
    args=("FC=gfortran",),
)


def test_a_shared_cache_hits_from_another_work_dir(tmp_path: Path) -> None:
    """The key holds no prefix: another work dir's build is reused, its prefix rewritten in
    the text files (the .pc here); the record says where the library came from."""
    cache = tmp_path / "shared-cache"
    first = build(FSTATS, tmp_path / "one" / "prefix", cache)
    second = build(FSTATS, tmp_path / "two" / "prefix", cache)
    assert not first.cached and second.cached and second.key == first.key
    assert second.relocated_from == str(tmp_path / "one" / "prefix")
    pc = (tmp_path / "two" / "prefix" / "lib" / "pkgconfig" / "fstats.pc").read_text()
    assert f"prefix={tmp_path / 'two' / 'prefix'}" in pc and "/one/" not in pc
    assert (first.source, first.sha256, first.system) == (FSTATS.url, FSTATS.sha256, "make")


def test_a_binary_holding_the_prefix_gets_its_own_build(tmp_path: Path) -> None:
    """A library whose binary holds its prefix (libhello built with HELLO_EMBED_PREFIX: the
    prefix compiled into it) is not relocated: a build for the other prefix is made, and
    cached too."""
    embeds = recipe(args=("-DHELLO_EMBED_PREFIX=ON",))
    cache = tmp_path / "cache"
    one = build(embeds, tmp_path / "one" / "prefix", cache)
    two = build(embeds, tmp_path / "two" / "prefix", cache)
    again = build(embeds, tmp_path / "two" / "prefix", cache)
    assert (one.cached, two.cached, again.cached) == (False, False, True)
    assert one.key == two.key and not two.relocated_from
    library = (tmp_path / "two" / "prefix" / "lib" / "libhello.so.1.0.0").read_bytes()
    assert str(tmp_path / "two" / "prefix").encode() in library
    assert str(tmp_path / "one" / "prefix").encode() not in library


def test_directory_source_patch_pre_configure_and_subdir(tmp_path: Path) -> None:
    """A library vendored in a project's tree (a directory, keyed by its content), patched,
    its configure made by a pre-configure step, in a subdirectory of the source."""
    vendored = tmp_path / "project" / "vendor"
    shutil.copytree(FIXTURES / "libsrc" / "libtally-1.0", vendored / "tally")
    configure = vendored / "tally" / "configure"
    configure.rename(vendored / "tally" / "configure.orig")  # a git archive has no configure
    patch = tmp_path / "greeting.patch"
    patch.write_text(
        "--- a/tally/tally.h\n+++ b/tally/tally.h\n@@ -1 +1,2 @@\n "
        + (vendored / "tally" / "tally.h").read_text().splitlines()[0]
        + "\n+#define TALLY_PATCHED 1\n"
    )
    lib = LibraryRecipe(
        name="libtally",
        version="1.0",
        url=str(vendored),
        sha256="-",
        system="configure",
        patches=(patch,),
        pre_configure="cp configure.orig configure && chmod +x configure",
        subdir="tally",
    )
    prefix = tmp_path / "prefix"
    result = build(lib, prefix, tmp_path / "cache")
    assert not result.cached
    assert "TALLY_PATCHED" in (prefix / "include" / "tally.h").read_text()
    assert (prefix / "lib" / "libtally.so.1").exists()
    assert result.patches == {"greeting.patch": sha256_file(patch)}
    assert len(result.sha256) == 64  # the directory's content
    assert build(lib, prefix, tmp_path / "cache").cached
    (vendored / "tally" / "tally.c").write_text(
        (vendored / "tally" / "tally.c").read_text() + "\n/* changed */\n"
    )
    changed = build(lib, prefix, tmp_path / "cache")
    assert not changed.cached and changed.sha256 != result.sha256
    with pytest.raises(LibraryError, match="is for a directory source"):
        LibraryRecipe(name="x", version="1", url=str(patch), sha256="-", system="make")


def test_a_makefile_ignoring_destdir_is_refused_with_the_way_out(tmp_path: Path) -> None:
    """A hand-written Makefile whose install writes to $(PREFIX) directly (bzip2, lua): the
    files it put into the shared prefix are removed, the error names DESTDIR and the fix, and
    that fix (the sed it suggests, as --pre-configure) builds it."""
    source = tmp_path / "libtiny"
    source.mkdir()
    (source / "tiny.c").write_text("int tiny(void) { return 7; }\n")
    (source / "Makefile").write_text(
        "PREFIX ?= /usr/local\n"
        "libtiny.a: tiny.o\n\tar rcs $@ tiny.o\n"
        "install: libtiny.a\n\tmkdir -p $(PREFIX)/lib\n\tcp libtiny.a $(PREFIX)/lib/\n"
    )
    prefix = tmp_path / "prefix"
    (prefix / "lib").mkdir(parents=True)
    (prefix / "lib" / "other.a").write_text("another library's file")
    lib = LibraryRecipe(name="libtiny", version="1", url=str(source), sha256="-", system="make")
    with pytest.raises(LibraryError) as failed:
        build(lib, prefix, tmp_path / "cache")
    message = str(failed.value)
    assert "ignored DESTDIR" in message and "lib/libtiny.a" in message
    assert "--pre-configure" in message
    assert sorted(p.name for p in (prefix / "lib").iterdir()) == ["other.a"]
    fixed = dataclasses.replace(
        lib, pre_configure="sed -i 's|$(PREFIX)|$(DESTDIR)$(PREFIX)|g' Makefile"
    )
    result = build(fixed, prefix, tmp_path / "cache")
    assert not result.cached and (prefix / "lib" / "libtiny.a").is_file()


def test_two_debian_patches_through_one_patch_option_in_series_order(tmp_path: Path) -> None:
    """`build_library --patch "$DEBIAN_PATCHES"` as config.sh writes it: two patches of a
    Debian-style series (the second applies only on top of the first), PATH-style in one value,
    applied in order."""
    import io
    import subprocess
    import sys
    import tarfile

    from multibuild.debian.source import extract_patches
    from tests.helpers import REPO_ROOT

    first_line = (FIXTURES / "libsrc" / "libtally-1.0" / "tally.h").read_text().splitlines()[0]
    patches = {
        "01-first.patch": "--- a/tally.h\n+++ b/tally.h\n@@ -1 +1,2 @@\n "
        + first_line
        + "\n+#define TALLY_FIRST 1\n",
        "02-second.patch": "--- a/tally.h\n+++ b/tally.h\n@@ -1,2 +1,3 @@\n "
        + first_line
        + "\n #define TALLY_FIRST 1\n+#define TALLY_SECOND 2\n",
    }
    debian = tmp_path / "libtally_1.0-1.debian.tar.xz"
    with tarfile.open(debian, "w:xz") as tar:
        for name, text in (("series", "".join(f"{n}\n" for n in patches)), *patches.items()):
            data = text.encode()
            info = tarfile.TarInfo(f"debian/patches/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    found = extract_patches(debian, list(patches), tmp_path / "work dir" / "patches")
    env = {
        **os.environ,
        "PYTHONPATH": str(REPO_ROOT),
        "BUILD_PREFIX": str(tmp_path / "prefix"),
        "MB_CACHE_DIR": str(tmp_path / "cache"),
        "MB_LIBRARY_RESULTS": str(tmp_path / "results.jsonl"),
        "DEBIAN_PATCHES": os.pathsep.join(str(p) for p in found),  # as fetch_debian_source
    }
    command = (
        f'"{sys.executable}" -m multibuild.engine.libraries --patch "$DEBIAN_PATCHES" '
        f"libtally 1.0 {FIXTURES / 'tarballs/libtally-1.0.tar.gz'} "
        "ba18053328f782332ac380166cc9faa4e29ade8b152a74865ba4464381396834 configure"
    )
    done = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    header = (tmp_path / "prefix" / "include" / "tally.h").read_text()
    assert header.index("TALLY_FIRST") < header.index("TALLY_SECOND")
    [result] = [json.loads(line) for line in (tmp_path / "results.jsonl").read_text().splitlines()]
    assert list(result["patches"]) == list(patches)
    # In the other order the second patch does not apply: the order is the series'.
    env["DEBIAN_PATCHES"] = os.pathsep.join(str(p) for p in reversed(found))
    env["BUILD_PREFIX"] = str(tmp_path / "other-prefix")
    reversed_run = subprocess.run(
        ["bash", "-c", command], env=env, capture_output=True, text=True, check=False
    )
    assert reversed_run.returncode != 0
    assert "patch 02-second.patch does not apply" in reversed_run.stdout + reversed_run.stderr
