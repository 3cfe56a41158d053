"""Rebuilds as nightlies make them: the build dir is kept between builds of a project and
Python (meson and ninja decide what is stale), emptied when the configuration changes; a
meson-python project without any settings gets a fixed build dir, so ccache answers a clean
rebuild; another work dir shares the library cache; and the same sources give the same wheel,
byte for byte."""

from __future__ import annotations

import zipfile
from pathlib import Path

import pytest

from tests.helpers import build_args, config_copy, git, make_repo, run_multibuild


def compiled(run: object) -> list[str]:
    """The objects a build compiled (ninja's `Compiling ... object NAME` lines)."""
    from tests.helpers import Run

    assert isinstance(run, Run)
    log = (run.wheelhouse / f"{run.record()['build_id']}.log").read_text()
    return [line.split()[-1] for line in log.splitlines() if "] Compiling " in line]


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
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    libraries = []
    for work in ("work-a", "work-b"):
        run = run_multibuild(
            tmp_path,
            *build_args(repo, config, "--cache-dir", str(tmp_path / work / "cache")),
            work_dir=tmp_path / work,
            wheelhouse=tmp_path / f"{work}-wheels",
            env={"TMPDIR": str(tmp)},
        )
        assert run.returncode == 0, run.output
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
    # A temp dir of the test's own: the prefix links numbered there are this test's alone.
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    wheels = []
    for work in ("work-a", "work-b"):
        run = run_multibuild(
            tmp_path,
            *build_args(repo, config, "--cache-dir", str(tmp_path / work / "cache")),
            work_dir=tmp_path / work,
            wheelhouse=tmp_path / f"{work}-wheels",
            env={"TMPDIR": str(tmp)},
        )
        assert run.returncode == 0, run.output
        [wheel] = run.wheels()
        wheels.append(wheel.read_bytes())
        inputs = run.record()["inputs"]
        assert inputs["source_date_epoch"] == int(git("log", "-1", "--format=%ct", cwd=repo))
        # Both work dirs' prefixes seen at one path: the first numbered link, free again.
        assert inputs["prefix"] == str(tmp / "mb-prefix-0")
    assert wheels[0] == wheels[1]
    source = repo / "src" / "hello_c" / "__init__.py"
    source.write_text(source.read_text() + "# changed\n")
    git("commit", "-qam", "a change", cwd=repo)
    git("tag", "-f", "v1.0", cwd=repo)
    changed = run_multibuild(tmp_path, *build_args(repo, config), work_dir=tmp_path / "work-a")
    assert changed.returncode == 0, changed.output
    assert changed.wheels()[0].read_bytes() != wheels[0]
