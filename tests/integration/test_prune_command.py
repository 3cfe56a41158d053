"""`python -m multibuild prune` as a user runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import REPO_ROOT

REPO = REPO_ROOT


def test_prune_command_refuses_the_release_container(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        '[project]\nname = "pkg"\nrepo = "x"\nBUILD_COMMIT = "v1"\n'
        '[upload]\npre_release = "pre"\nrelease = "rel"\n'
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "multibuild", "prune", "--settings", str(settings)]
    done = subprocess.run(
        [*base, "--container", "rel"],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 10
    assert "REFUSED" in done.stderr
    (
        tmp_path / "pre"
    ).mkdir()  # (a missing container is an error: tests/integration/test_bad_input.py)
    done = subprocess.run(
        [*base, "--dry-run"], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "keep 5 per platform and Python, and 30 days" in done.stdout
