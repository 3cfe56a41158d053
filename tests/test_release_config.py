"""set-build-commit, check-config and trigger-build on copies of this repository's real CI
configs (in temporary git repos): line edits that keep everything else, the four files
agreeing, the matrix, an empty commit naming the commit built, pushed to a local remote."""

from __future__ import annotations

import difflib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from multibuild import ciconfig
from multibuild.release import matrix, set_build_commit, trigger_build
from multibuild.settings import load_settings
from tests.conftest import REPO_ROOT, git


def copy_wheels_repo(root: Path) -> Path:
    """settings.toml, the generated files and every path they name, copied to `root`."""
    names = set(ciconfig.ALL_FILES) | set(ciconfig.GENERATED)
    for path in ciconfig.GENERATED:
        names |= ciconfig.referenced_paths((REPO_ROOT / path).read_text())
    for name in sorted(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, root / name, dirs_exist_ok=True)
        else:
            shutil.copyfile(REPO_ROOT / name, root / name)
    return root


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = copy_wheels_repo(tmp_path / "wheels")
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "init", cwd=root)
    return root


def changed_lines(before: str, after: str) -> list[str]:
    return [
        line
        for line in difflib.unified_diff(before.splitlines(), after.splitlines(), lineterm="")
        if line[:1] in "+-" and not line.startswith(("+++", "---"))
    ]


def test_set_build_commit_rewrites_only_the_commit_lines(
    repo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = {p: (repo / p).read_text() for p in ciconfig.ALL_FILES}
    assert set_build_commit.main(["--root", str(repo), "1.10"]) == 0
    assert set_build_commit.main(["--root", str(repo), "--daily", "maintenance/1.17.x"]) == 0
    assert "all 4 files agree: BUILD_COMMIT=1.10 DAILY_COMMIT=maintenance/1.17.x" in (
        capsys.readouterr().out
    )
    for path in ciconfig.ALL_FILES:
        after = (repo / path).read_text()
        lines = changed_lines(before[path], after)
        assert len(lines) == 4, (path, lines)  # two lines out, two in: comments all kept
        commits = ciconfig.read_commits_text(path, after)
        assert commits == {"BUILD_COMMIT": "1.10", "DAILY_COMMIT": "maintenance/1.17.x"}
    assert load_settings(repo / "settings.toml").project.build_commit == "1.10"  # a string


def test_set_build_commit_refusals(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: (repo / p).read_text() for p in ciconfig.ALL_FILES}
    assert set_build_commit.main(["--root", str(repo), "v1.0 # x"]) == 2
    assert "is not a commit these files can name" in capsys.readouterr().err
    # A hand edit that makes the files disagree is found by --check and check-config.
    travis = repo / ciconfig.TRAVIS
    travis.write_text(travis.read_text().replace("BUILD_COMMIT=v", "BUILD_COMMIT=x"))
    assert set_build_commit.main(["--root", str(repo), "--check"]) == 2
    line = travis.read_text().splitlines().index("    - BUILD_COMMIT=x1.17.1") + 1
    pinned = (repo / "settings.toml").read_text().splitlines().index('BUILD_COMMIT = "v1.17.1"') + 1
    message = (
        f".travis.yml:{line}: BUILD_COMMIT is 'x1.17.1' but settings.toml:{pinned} pins 'v1.17.1'"
    )
    assert message in capsys.readouterr().err
    cli = subprocess.run(
        [sys.executable, "-m", "multibuild", "check-config", "--settings",
         str(repo / "settings.toml")],
        capture_output=True, text=True, check=False, cwd=repo,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert cli.returncode == 2 and message in cli.stdout, cli.stdout + cli.stderr
    assert "`scripts/set-build-commit v1.17.1` sets it everywhere" in cli.stdout
    # ... and set-build-commit repairs it.
    assert set_build_commit.main(["--root", str(repo), "v9.9.9"]) == 0
    # Two BUILD_COMMIT lines: which one? Refused, nothing written.
    appveyor = repo / ciconfig.APPVEYOR
    text = appveyor.read_text()
    appveyor.write_text(text + '# BUILD_COMMIT: "x"\n    BUILD_COMMIT: "y"\n')
    snapshot = {p: (repo / p).read_text() for p in ciconfig.ALL_FILES}
    assert set_build_commit.main(["--root", str(repo), "v2.0.0"]) == 2
    err = capsys.readouterr().err
    line = len(text.splitlines()) + 1
    assert (
        f'appveyor.yml:{line}: differs from what settings.toml generates (has \'# BUILD_COMMIT: "x"'
        in err
    )
    assert "`python -m multibuild check-config --write` regenerates it" in err
    assert {p: (repo / p).read_text() for p in ciconfig.ALL_FILES} == snapshot
    assert before  # (the original texts were valid; kept for the failure message)


def test_matrix_from_settings(repo: Path) -> None:
    settings = load_settings(repo / "settings.toml")
    cells = matrix.cells(settings.matrix)
    assert {c.label for c in cells} == {
        f"cp{v}-cp{v}-{p}"
        for v in ("311", "312")
        for p in (
            "manylinux_*_x86_64",
            "manylinux_*_aarch64",
            "macosx_*_x86_64",
            "macosx_*_arm64",
            "win_amd64",
        )
    }


def test_wheel_names_as_pip_reads_them() -> None:
    cell = matrix.Cell(os="linux", plat="x86_64", python="3.11")
    compressed = matrix.parse(
        "SciPy-1.17.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    )
    assert compressed is not None and cell in matrix.check([cell], [compressed]).found
    tagged = matrix.parse("scipy-1.17.1-2-cp311-cp311-macosx_14_0_arm64.whl")
    assert tagged is not None and tagged.build == (2, "")
    assert matrix.select([tagged.filename], "SCIPY", "1.17.1.0") == [tagged]
    assert matrix.select(["scipy-1.17.10-cp311-cp311-win_amd64.whl"], "scipy", "1.17.1") == []
    assert matrix.select(["scipy_extra-1.17.1-cp311-cp311-win_amd64.whl"], "scipy", "1.17.1") == []
    assert matrix.parse("../scipy-1.17.1-cp311-cp311-win_amd64.whl") is None
    assert matrix.parse("scipy-1.17.1.whl") is None
    universal = matrix.parse("scipy-1.0-cp312-cp312-macosx_11_0_universal2.whl")
    assert universal is not None
    arm = matrix.Cell(os="macos", plat="arm64", python="3.12")
    assert arm in matrix.check([arm], [universal]).found
    free = matrix.Cell(os="windows", plat="AMD64", python="3.13t")
    assert free.label == "cp313-cp313t-win_amd64"
    assert matrix.type_wanted("linux", "musllinux_1_2_x86_64")
    assert not matrix.type_wanted("manylinux", "musllinux_1_2_x86_64")


def test_trigger_build(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=repo)
    # Dirty: set-build-commit's change not committed yet.
    assert set_build_commit.main(["--root", str(repo), "v1.17.2"]) == 0
    assert trigger_build.main(["-C", str(repo), "--push"]) == 12
    assert "uncommitted changes" in capsys.readouterr().err
    git("commit", "-q", "-a", "-m", "Build v1.17.2", cwd=repo)
    head = git("rev-parse", "HEAD", cwd=repo)
    assert trigger_build.main(["-C", str(repo), "-m", "Retry the macOS jobs", "--push"]) == 0
    log = git("log", "-1", "--format=%B", cwd=repo)
    assert log.splitlines()[0] == "Retry the macOS jobs"
    assert "BUILD_COMMIT=v1.17.2 DAILY_COMMIT=main" in log
    assert git("rev-parse", "HEAD~1", cwd=repo) == head
    assert git("diff", "--stat", "HEAD~1", "HEAD", cwd=repo) == ""  # empty commit
    assert git("rev-parse", "main", cwd=remote) == git("rev-parse", "HEAD", cwd=repo)
    assert trigger_build.main(["-C", str(repo)]) == 0
    assert "not pushed" in capsys.readouterr().out
