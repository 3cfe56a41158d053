"""Rebuilds as nightlies make them: the build dir is kept between builds of a project and
Python (meson and ninja decide what is stale), emptied when the configuration changes; a
meson-python project without any settings gets a fixed build dir, so a build in another work
dir sharing the cache hits ccache."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.helpers import build_args, config_copy, git, make_repo, run_multibuild


@pytest.mark.slow
def compiled(run: object) -> list[str]:
    """The objects a build compiled (ninja's `Compiling ... object NAME` lines)."""
    from tests.helpers import Run

    assert isinstance(run, Run)
    log = (run.wheelhouse / f"{run.record()['build_id']}.log").read_text()
    return [line.split()[-1] for line in log.splitlines() if "] Compiling " in line]


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
    # Another configuration (a config setting): a clean build dir.
    fourth = run_multibuild(tmp_path, *args, "-C", "setup-args=-Dbuildtype=release")
    assert fourth.returncode == 0, fourth.output
    assert len(compiled(fourth)) == 2


@pytest.mark.slow
def test_a_meson_project_hits_ccache_from_another_work_dir(tmp_path: Path) -> None:
    repo = make_repo("fstats", tmp_path / "fstats")
    config = config_copy("fstats", tmp_path / "config")
    cache = tmp_path / "shared-cache"
    runs = []
    for work in ("work-a", "work-b"):
        args = build_args(repo, config, "--cache-dir", str(cache), test_requires="pytest")
        runs.append(run_multibuild(tmp_path, *args, work_dir=tmp_path / work))
        assert runs[-1].returncode == 0, runs[-1].output
    [build] = runs[1].record()["builds"]
    assert build["ccache"]["hits"] >= 1 and build["ccache"]["misses"] == 0, build["ccache"]
    [library] = build["libraries"]
    assert library["cached"] and library["relocated_from"].endswith("work-a/prefix")
