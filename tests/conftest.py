"""Shared helpers: fixture projects as real local git repos, and the engine run as users run it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

# Real servers on 127.0.0.1 (Swift, SeaweedFS, a fault-injecting proxy) as fixtures.
pytest_plugins = ["tests.servers.fixtures"]

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).parent.parent


def git(*args: str, cwd: Path) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
    )
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def make_repo(fixture: str, dest: Path, tag: str = "v1.0") -> Path:
    """Copy tests/fixtures/<fixture>/project into a fresh git repo with one tagged commit."""
    shutil.copytree(FIXTURES / fixture / "project", dest)
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "fixture", cwd=dest)
    git("tag", tag, cwd=dest)
    return dest


def config_copy(fixture: str, dest_dir: Path, edit: dict[str, str] | None = None) -> Path:
    """A copy of the fixture's config.sh beside a link to the tarballs, optionally edited."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    text = (FIXTURES / fixture / "config.sh").read_text()
    for old, new in (edit or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    config = dest_dir / "config.sh"
    config.write_text(text)
    tarballs = dest_dir.parent / "tarballs"
    if not tarballs.exists():
        tarballs.symlink_to(FIXTURES / "tarballs")
    return config


@dataclass
class Run:
    returncode: int
    output: str
    wheelhouse: Path
    work_dir: Path

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.wheelhouse.glob("*.json"))]

    def record(self) -> dict[str, Any]:
        records = self.records()
        assert records, f"no record in {self.wheelhouse}\n{self.output}"
        return records[-1]

    def wheels(self) -> list[Path]:
        return sorted(self.wheelhouse.glob("*.whl"))


def build_args(
    repo: Path | str,
    config: Path,
    *extra: str,
    commit: str = "v1.0",
    pythons: tuple[str, ...] = ("3.11",),
    test_requires: str = "",
) -> list[str]:
    """`build` arguments for a fixture project."""
    args = ["build", "--repo", str(repo), "--commit", commit, "--config", str(config)]
    for version in pythons:
        args += ["--python", version]
    return [*args, "--test-requires", test_requires, *extra]


def run_multibuild(
    tmp: Path,
    *args: str,
    env: dict[str, str] | None = None,
    wheelhouse: Path | None = None,
    work_dir: Path | None = None,
) -> Run:
    """`python -m multibuild build ...` in a directory with no settings.toml above it."""
    wheelhouse = wheelhouse or tmp / "wheelhouse"
    work_dir = work_dir or tmp / "work"
    run_env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TRAVIS", "APPVEYOR", "MB_"))
    }
    run_env.pop("CI", None)
    # The engine under test is this tree's, whatever else is installed.
    run_env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    run_env.update(env or {})
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "multibuild",
            *args,
            "--wheelhouse",
            str(wheelhouse),
            "--work-dir",
            str(work_dir),
        ],
        cwd=tmp,
        env=run_env,
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    return Run(done.returncode, done.stdout + done.stderr, wheelhouse, work_dir)


@pytest.fixture
def hello_repo(tmp_path: Path) -> Path:
    return make_repo("hello-c", tmp_path / "hello-repo")


@pytest.fixture
def hello_config(tmp_path: Path) -> Path:
    return config_copy("hello-c", tmp_path / "hello-config")
