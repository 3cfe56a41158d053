"""The library cache: hits skip the build, a changed recipe rebuilds, a killed build leaves
nothing that passes for a good entry."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from multibuild.engine.libraries import LibraryRecipe, build_library, cache_key
from multibuild.errors import LibraryError
from multibuild.log import Logger
from tests.helpers import FIXTURES, build_args, config_copy, make_repo, run_multibuild

HELLO_SHA = "f96326b154d6916c85b216a14a39350fc3f05db5b88cbe7ef4ce389daadc3d5e"


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


def test_cache_key_follows_what_determines_the_output(tmp_path: Path) -> None:
    env = {"CFLAGS": "-O2"}
    base = cache_key(recipe(), tmp_path, env)
    assert cache_key(recipe(), tmp_path, env) == base
    assert (
        cache_key(recipe(url="https://mirror.invalid/libhello-1.0.tar.gz"), tmp_path, env) == base
    )  # where it came from does not change what it is
    assert cache_key(recipe(args=("-DHELLO_SHOUT=ON",)), tmp_path, env) != base
    assert cache_key(recipe(version="1.1"), tmp_path, env) != base
    assert cache_key(recipe(system="meson"), tmp_path, env) != base
    assert cache_key(recipe(), tmp_path, {"CFLAGS": "-O3"}) != base
    assert cache_key(recipe(), tmp_path / "other-prefix", env) != base


def test_killed_build_leftovers_are_not_used(tmp_path: Path) -> None:
    prefix, cache = tmp_path / "prefix", tmp_path / "cache"
    logger = Logger(verbose=False)
    key = cache_key(recipe(), prefix, dict(os.environ))
    stale = cache / "libs" / f"libhello-1.0-{key}.tmp-99999"
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
            "c3d5e cmake": "c3d5e cmake -DHELLO_SHOUT=ON",
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
            "1cf9d35ed8117e663dbb9739582bb9a7618936b8ff6e9eeba5e6494f04f49fca",
            "configure",
        ),
        (
            "libtally-meson-1.0.tar.gz",
            "871f0b950a40f25d9c735f3cb427ff27d73aea936fc9558ea37b24ad75d0ba28",
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
