"""Rebuilds as nightlies make them: the build dir is kept between builds of a project and
Python (meson and ninja decide what is stale), emptied when the configuration changes; a
meson-python project without any settings gets a fixed build dir, so ccache answers a clean
rebuild; another work dir shares the library cache; and the same sources give the same wheel,
byte for byte."""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import pytest

from tests.helpers import Run, build_args, compiled, config_copy, git, make_repo, run_multibuild


def build_in_work_dir(tmp_path: Path, repo: Path, config: Path, work: str) -> Run:
    """A build in a work dir, cache and wheelhouse of its own, which must succeed. TMPDIR is
    the test's own: the prefix links numbered there are this test's alone."""
    tmp = tmp_path / "tmp"
    tmp.mkdir(exist_ok=True)
    run = run_multibuild(
        tmp_path,
        *build_args(repo, config, "--cache-dir", str(tmp_path / work / "cache")),
        work_dir=tmp_path / work,
        wheelhouse=tmp_path / f"{work}-wheels",
        env={"TMPDIR": str(tmp)},
    )
    assert run.returncode == 0, run.output
    return run


@pytest.mark.slow
def test_a_rebuild_of_an_unchanged_commit_rebuilds_nothing(tmp_path: Path) -> None:
    repo = make_repo("fstats", tmp_path / "fstats")
    config = config_copy("fstats", tmp_path / "config")
    args = build_args(repo, config, test_requires="pytest")
    first = run_multibuild(tmp_path, *args)
    assert first.returncode == 0, first.output
    assert len(compiled(first)) == 2
    second = run_multibuild(tmp_path, *args)
    assert second.returncode == 0, second.output
    assert compiled(second) == []
    # One changed source file: only it is compiled again.
    kernel = repo / "src" / "kernel.f90"
    kernel.write_text(kernel.read_text() + "\n! changed\n")
    git("commit", "-qam", "a change", cwd=repo)
    git("tag", "-f", "v1.0", cwd=repo)
    third = run_multibuild(tmp_path, *args)
    assert third.returncode == 0, third.output
    assert [name.rsplit("/", 1)[-1] for name in compiled(third)] == ["src_kernel.f90.o"]
    # Another configuration (a config setting): a clean build dir, whose compiles ccache
    # answers (the same paths as before: the work dir's own).
    fourth = run_multibuild(tmp_path, *args, "-C", "setup-args=-Dbuildtype=release")
    assert fourth.returncode == 0, fourth.output
    assert len(compiled(fourth)) == 2
    ccache = fourth.record()["builds"][0]["ccache"]
    assert ccache["hits"] >= 1 and ccache["misses"] == 0, ccache


@pytest.mark.slow
def test_another_work_dir_shares_the_library_cache_and_makes_the_same_wheel(
    tmp_path: Path,
) -> None:
    repo = make_repo("fstats", tmp_path / "fstats")
    config = config_copy("fstats", tmp_path / "config")
    cache = tmp_path / "shared-cache"
    # A temp dir of its own: no other build holds the first prefix link (TMPDIR/mb-prefix-0).
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    runs = []
    for work in ("work-a", "work-b"):
        args = build_args(repo, config, "--cache-dir", str(cache), test_requires="pytest")
        runs.append(
            run_multibuild(tmp_path, *args, work_dir=tmp_path / work, env={"TMPDIR": str(tmp)})
        )
        assert runs[-1].returncode == 0, runs[-1].output
    [build] = runs[1].record()["builds"]
    [library] = build["libraries"]
    # Built once; the second work dir takes it from the shared cache, at the same prefix
    # path (the link), so nothing needs relocating.
    assert library["cached"] and not library["relocated_from"]
    # Two work dirs, the same wheel, byte for byte (reproducible: SOURCE_DATE_EPOCH from the
    # commit, the zip normalised, the prefix seen at one path).
    [first], [second] = (run.wheels() for run in runs)
    assert first.read_bytes() == second.read_bytes()


@pytest.mark.slow
def test_a_cmake_library_with_debug_info_is_the_same_from_two_work_dirs(tmp_path: Path) -> None:
    """libhello built RelWithDebInfo (-g): its DWARF names its source and build paths, which
    differ between the work dirs unless CMake sees CPPFLAGS' -ffile-prefix-map."""
    repo = make_repo("hello-c", tmp_path / "hello")
    config = config_copy(
        "hello-c", tmp_path / "config", {" cmake\n": " cmake -DCMAKE_BUILD_TYPE=RelWithDebInfo\n"}
    )
    libraries = []
    for work in ("work-a", "work-b"):
        run = build_in_work_dir(tmp_path, repo, config, work)
        [wheel] = run.wheels()
        with zipfile.ZipFile(wheel) as archive:
            [name] = [n for n in archive.namelist() if "libhello" in n]
            libraries.append(archive.read(name))
    assert b".debug_info" in libraries[0]  # built with -g
    assert str(tmp_path).encode() not in libraries[0]
    assert libraries[0] == libraries[1]


@pytest.mark.slow
def test_the_same_sources_give_the_same_wheel(tmp_path: Path) -> None:
    """The C fixture (setuptools, a CMake library) built in two work dirs with their own caches
    gives one sha256; one changed source file gives another."""
    repo = make_repo("hello-c", tmp_path / "hello")
    config = config_copy("hello-c", tmp_path / "config")
    wheels = []
    for work in ("work-a", "work-b"):
        run = build_in_work_dir(tmp_path, repo, config, work)
        [wheel] = run.wheels()
        wheels.append(wheel.read_bytes())
        inputs = run.record()["inputs"]
        assert inputs["source_date_epoch"] == int(git("log", "-1", "--format=%ct", cwd=repo))
        # Both work dirs' prefixes seen at one path: the mount namespace's (root), else the
        # first numbered link, free again.
        slot = "mb-prefix" if os.geteuid() == 0 else "mb-prefix-0"
        assert inputs["prefix"] == str(tmp_path / "tmp" / slot)
    assert wheels[0] == wheels[1]
    source = repo / "src" / "hello_c" / "__init__.py"
    source.write_text(source.read_text() + "# changed\n")
    git("commit", "-qam", "a change", cwd=repo)
    git("tag", "-f", "v1.0", cwd=repo)
    changed = run_multibuild(tmp_path, *build_args(repo, config), work_dir=tmp_path / "work-a")
    assert changed.returncode == 0, changed.output
    assert changed.wheels()[0].read_bytes() != wheels[0]


@pytest.mark.slow
@pytest.mark.parametrize("route", ["namespace", "link"])
def test_a_rebuild_while_another_build_holds_the_first_slot_stays_warm(
    tmp_path: Path, route: str
) -> None:
    """Another build holding the first numbered link changes nothing for a rebuild: its
    compile lines are the same, meson's build dir is kept (not reconfigured from scratch) and
    ccache answers the recompiled C file. `namespace` (Linux as root, what CI runs): every
    build sees its prefix at TMPDIR/mb-prefix. `link` (MB_PREFIX_NAMESPACE=0, as where no mount
    namespace is allowed): the work dir takes its last number again while it is free."""
    import fcntl

    if route == "namespace" and os.geteuid() != 0:
        pytest.skip("a mount namespace needs root (CI runs as root)")
    repo = make_repo("fstats", tmp_path / "fstats")
    config = config_copy("fstats", tmp_path / "config")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {"TMPDIR": str(tmp), **({"MB_PREFIX_NAMESPACE": "0"} if route == "link" else {})}
    args = build_args(repo, config, test_requires="pytest")
    work = tmp_path / "work"

    def hold_first_slot() -> object:
        lock = (tmp / "mb-prefix-0.lock").open("a")
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return lock

    # link: the cold build runs while another build holds the first number (it gets -1);
    # the rebuild runs when that one is free again (before, it took -0: a cold rebuild).
    # namespace: the other build holds the first number during the rebuild.
    other = hold_first_slot() if route == "link" else None
    cold = run_multibuild(tmp_path, *args, env=env, work_dir=work)
    assert cold.returncode == 0, cold.output
    expected = tmp / ("mb-prefix" if route == "namespace" else "mb-prefix-1")
    assert cold.record()["inputs"]["prefix"] == str(expected)
    if other is not None:
        other.close()  # type: ignore[attr-defined]
    else:
        other = hold_first_slot()
    [build_dir] = (work / "build-dir").iterdir()
    sentinel = build_dir / "kept-by-the-rebuild"
    sentinel.write_text("a build dir emptied for a new configuration loses this")
    source = repo / "src" / "_fstats.c"
    source.write_text(source.read_text() + "\n/* a comment: the preprocessed text is the same */\n")
    git("commit", "-qam", "a comment", cwd=repo)
    git("tag", "-f", "v1.0", cwd=repo)
    warm = run_multibuild(tmp_path, *args, env=env, work_dir=work)
    other.close()  # type: ignore[attr-defined]
    assert warm.returncode == 0, warm.output
    assert warm.record()["inputs"]["prefix"] == str(expected)
    assert sentinel.exists(), "the rebuild emptied meson's build dir"
    assert [name.rsplit("/", 1)[-1] for name in compiled(warm)] == ["src__fstats.c.o"]
    ccache = warm.record()["builds"][0]["ccache"]
    assert ccache["hits"] == 1 and ccache["misses"] == 0, ccache


@pytest.mark.slow
def test_a_restored_cache_hits_and_another_compilers_cache_is_not_used(tmp_path: Path) -> None:
    """A CI nightly: a fresh work dir with the compiler cache restored (a copy of another work
    dir's) hits for every C compile; the same cache under another compiler version (a stub
    `gcc` of other bytes on a temp PATH) misses: it costs a cold build, never answers for it."""
    import shutil

    repo = make_repo("fstats", tmp_path / "fstats")
    config = config_copy("fstats", tmp_path / "config")
    compilers = {}
    for version in ("12", "13"):
        stub = tmp_path / f"gcc-{version}" / "gcc"
        stub.parent.mkdir()
        stub.write_text(f'#!/bin/sh\n# gcc {version} (a stand-in)\nexec /usr/bin/gcc "$@"\n')
        stub.chmod(0o755)
        compilers[version] = stub
    args = build_args(repo, config, test_requires="pytest")

    def build(work: str, version: str) -> dict[str, object]:
        cache = tmp_path / work / "cache"
        run = run_multibuild(
            tmp_path,
            *args,
            "--cache-dir",
            str(cache),
            env={"CC": f"ccache {compilers[version]}"},
            work_dir=tmp_path / work,
            wheelhouse=tmp_path / f"{work}-wheels",
        )
        assert run.returncode == 0, run.output
        [record] = run.record()["builds"]
        assert isinstance(record, dict)
        return record

    first = build("work-a", "12")
    assert first["ccache"]["misses"] >= 1, first  # type: ignore[index]
    assert "empty" in str(first["ccache_note"])
    for work in ("work-b", "work-c"):  # restored: a copy of the first work dir's cache
        shutil.copytree(
            tmp_path / "work-a" / "cache" / "ccache", tmp_path / work / "cache" / "ccache"
        )
    restored = build("work-b", "12")
    assert restored["ccache"]["hits"] >= 1 and restored["ccache"]["misses"] == 0, restored  # type: ignore[index]
    assert "held" in str(restored["ccache_note"])
    other = build("work-c", "13")
    assert other["ccache"]["hits"] == 0 and other["ccache"]["misses"] >= 1, other  # type: ignore[index]
