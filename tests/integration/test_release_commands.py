"""set-build-commit and trigger-build on copies of this repository's settings and CI configs
(in temporary git repos): settings.toml edited on one line, every CI config regenerated, the
files agreeing; an empty commit naming the commit built, pushed to a local remote."""

from __future__ import annotations

import difflib
import subprocess
import sys
from pathlib import Path

import pytest

from multibuild.ci import configs as ciconfig
from multibuild.cli import main
from multibuild.settings import load_settings
from tests.helpers import copy_wheels_repo, engine_environ, git, shown_commits


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
    assert main(tool="set-build-commit", argv=["--root", str(repo), "1.10"]) == 0
    assert (
        main(tool="set-build-commit", argv=["--root", str(repo), "--daily", "maintenance/1.17.x"])
        == 0
    )
    assert "all 4 files agree: BUILD_COMMIT=1.10 DAILY_COMMIT=maintenance/1.17.x" in (
        capsys.readouterr().out
    )
    for path in ciconfig.ALL_FILES:
        after = (repo / path).read_text()
        lines = changed_lines(before[path], after)
        assert len(lines) == 4, (path, lines)  # two lines out, two in: comments all kept
        assert shown_commits(after) == {
            "BUILD_COMMIT": "1.10",
            "DAILY_COMMIT": "maintenance/1.17.x",
        }
    assert load_settings(repo / "settings.toml").project.build_commit == "1.10"  # a string


def test_set_build_commit_refusals(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    before = {p: (repo / p).read_text() for p in ciconfig.ALL_FILES}
    assert main(tool="set-build-commit", argv=["--root", str(repo), "v1.0 # x"]) == 2
    assert "is not a commit these files can name" in capsys.readouterr().err
    # A hand edit that makes the files disagree is found by --check and check-config.
    travis = repo / ".travis.yml"
    travis.write_text(travis.read_text().replace("BUILD_COMMIT=v", "BUILD_COMMIT=x"))
    assert main(tool="set-build-commit", argv=["--root", str(repo), "--check"]) == 2
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
        env=engine_environ(),
    )  # fmt: skip
    assert cli.returncode == 2 and message in cli.stdout, cli.stdout + cli.stderr
    assert "`scripts/set-build-commit v1.17.1` sets it everywhere" in cli.stdout
    # ... and set-build-commit repairs it: the CI configs are regenerated from settings.toml.
    assert main(tool="set-build-commit", argv=["--root", str(repo), "v9.9.9"]) == 0
    assert ".travis.yml" in capsys.readouterr().out
    assert shown_commits(travis.read_text())["BUILD_COMMIT"] == "v9.9.9"
    # settings.toml naming BUILD_COMMIT twice: which one? Refused, nothing written.
    settings = repo / "settings.toml"
    settings.write_text(settings.read_text() + '\n[hook_env]\nBUILD_COMMIT = "x"\n')
    snapshot = {p: (repo / p).read_text() for p in ciconfig.ALL_FILES}
    assert main(tool="set-build-commit", argv=["--root", str(repo), "v2.0.0"]) == 2
    assert "expected exactly one BUILD_COMMIT line in [project], found 2" in capsys.readouterr().err
    assert {p: (repo / p).read_text() for p in ciconfig.ALL_FILES} == snapshot
    assert before  # (the original texts were valid; kept for the failure message)


def test_trigger_build(repo: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    remote = tmp_path / "remote.git"
    git("init", "-q", "--bare", str(remote), cwd=tmp_path)
    git("remote", "add", "origin", str(remote), cwd=repo)
    # Dirty: set-build-commit's change not committed yet.
    # --dry-run: the lines that would change, nothing written.
    before = {p: (repo / p).read_text() for p in ciconfig.ALL_FILES}
    argv = ["--root", str(repo), "v1.17.2", "--dry-run"]
    assert main(tool="set-build-commit", argv=argv) == 0
    out = capsys.readouterr().out
    assert 'BUILD_COMMIT = "v1.17.1" -> BUILD_COMMIT = "v1.17.2"' in out
    assert "BUILD_COMMIT=v1.17.1 -> - BUILD_COMMIT=v1.17.2" in out and "nothing written" in out
    assert {p: (repo / p).read_text() for p in ciconfig.ALL_FILES} == before
    assert main(tool="set-build-commit", argv=["--root", str(repo), "v1.17.2"]) == 0
    assert main(tool="trigger-build", argv=["-C", str(repo), "--push"]) == 2
    assert "uncommitted changes" in capsys.readouterr().err
    head = git("rev-parse", "HEAD", cwd=repo)
    git("commit", "-q", "-a", "-m", "Build v1.17.2", cwd=repo)
    assert main(tool="trigger-build", argv=["-C", str(repo), "--push", "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "would commit (empty); then push to origin" in out and "Build scipy v1.17.2" in out
    assert git("rev-parse", "HEAD~1", cwd=repo) == head  # nothing committed by the dry run
    head = git("rev-parse", "HEAD", cwd=repo)
    assert (
        main(tool="trigger-build", argv=["-C", str(repo), "-m", "Retry the macOS jobs", "--push"])
        == 0
    )
    log = git("log", "-1", "--format=%B", cwd=repo)
    assert log.splitlines()[0] == "Retry the macOS jobs"
    assert "BUILD_COMMIT=v1.17.2 DAILY_COMMIT=main" in log
    assert git("rev-parse", "HEAD~1", cwd=repo) == head
    assert git("diff", "--stat", "HEAD~1", "HEAD", cwd=repo) == ""  # empty commit
    assert git("rev-parse", "main", cwd=remote) == git("rev-parse", "HEAD", cwd=repo)
    assert main(tool="trigger-build", argv=["-C", str(repo)]) == 0
    assert "not pushed" in capsys.readouterr().out
