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
import yaml

from multibuild import ciconfig
from multibuild.release import matrix, set_build_commit, trigger_build
from multibuild.settings import load_settings
from tests.conftest import REPO_ROOT, git


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "wheels"
    for path in ciconfig.ALL_FILES:
        (root / path).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(REPO_ROOT / path, root / path)
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


def test_this_repository_agrees() -> None:
    assert ciconfig.check(REPO_ROOT) == []
    settings = load_settings(REPO_ROOT / "settings.toml")
    for path, render in ciconfig.RENDERERS.items():
        assert (REPO_ROOT / path).read_text() == render(settings), f"{path}: regenerate"
    workflow = yaml.safe_load((REPO_ROOT / ciconfig.GITHUB).read_text())
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request", "schedule", "workflow_dispatch"}
    steps = workflow["jobs"]["build"]["steps"]
    upload = next(s for s in steps if s.get("run", "").startswith("python -m multibuild upload"))
    assert "github.event_name != 'pull_request'" in upload["if"] and "ST_KEY" in upload["env"]
    assert not any("secrets." in str(s) for s in steps if s is not upload)
    assert any("multibuild build" in s.get("run", "") for s in steps)


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
    assert "BUILD_COMMIT differs" in capsys.readouterr().err
    cli = subprocess.run(
        [sys.executable, "-m", "multibuild", "check-config", "--settings",
         str(repo / "settings.toml")],
        capture_output=True, text=True, check=False, cwd=repo,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip
    assert cli.returncode == 2 and "BUILD_COMMIT differs" in cli.stdout
    # ... and set-build-commit repairs it.
    assert set_build_commit.main(["--root", str(repo), "v9.9.9"]) == 0
    # Two BUILD_COMMIT lines: which one? Refused, nothing written.
    appveyor = repo / ciconfig.APPVEYOR
    text = appveyor.read_text()
    appveyor.write_text(text + '# BUILD_COMMIT: "x"\n    BUILD_COMMIT: "y"\n')
    snapshot = {p: (repo / p).read_text() for p in ciconfig.ALL_FILES}
    assert set_build_commit.main(["--root", str(repo), "v2.0.0"]) == 2
    assert "expected exactly one BUILD_COMMIT line" in capsys.readouterr().err
    assert {p: (repo / p).read_text() for p in ciconfig.ALL_FILES} == snapshot
    assert before  # (the original texts were valid; kept for the failure message)


def test_matrix_from_settings_and_ci_configs(repo: Path) -> None:
    settings = load_settings(repo / "settings.toml")
    cells = matrix.cells(settings.matrix)
    assert {c.label for c in cells} == {
        f"cp{v}-cp{v}-{p}"
        for v in ("311", "312")
        for p in ("manylinux_*_x86_64", "macosx_*_x86_64", "macosx_*_arm64", "win_amd64")
    }
    # A job removed from a CI config is a mismatch with settings.toml.
    workflow = repo / ciconfig.GITHUB
    text = workflow.read_text()
    line = next(x for x in text.splitlines() if "platform: windows" in x and '"3.12"' in x)
    workflow.write_text(text.replace(line + "\n", ""))
    [problem] = ciconfig.check(repo)
    assert "wheels.yml: matrix differs" in problem and "('windows', 'AMD64', '3.12')" in problem
    ciconfig.write_configs(repo)
    assert ciconfig.check(repo) == []


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
