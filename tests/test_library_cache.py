"""The library cache: hits skip the build, a changed recipe rebuilds, a killed build leaves
nothing that passes for a good entry."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from multibuild.libraries import LibraryRecipe, build_library, cache_key
from multibuild.log import Logger
from tests.conftest import FIXTURES, config_copy, make_repo, run_multibuild

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
    key = cache_key(recipe(), prefix, dict(__import__("os").environ))
    stale = cache / "libs" / f"libhello-1.0-{key}.tmp-99999"
    (stale / "tree" / "lib").mkdir(parents=True)
    (stale / "tree" / "lib" / "libhello.so").write_text("half-written")
    result = build_library(
        recipe(), prefix=prefix, cache_dir=cache, mirrors=(), jobs=2, logger=logger
    )
    assert not result.cached
    assert not stale.exists()
    assert (prefix / "lib" / "libhello.so.1.0.0").read_bytes().startswith(b"\x7fELF")
    again = build_library(
        recipe(), prefix=prefix, cache_dir=cache, mirrors=(), jobs=2, logger=logger
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
    )
    assert not result.cached


@pytest.mark.slow
def test_second_build_uses_the_cache_and_a_changed_recipe_rebuilds(tmp_path: Path) -> None:
    repo = make_repo("hello-c", tmp_path / "repo")
    config = config_copy("hello-c", tmp_path / "config")
    args = [
        "build",
        "--repo",
        str(repo),
        "--commit",
        "v1.0",
        "--config",
        str(config),
        "--python",
        "3.11",
        "--test-requires",
        "",
    ]

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
