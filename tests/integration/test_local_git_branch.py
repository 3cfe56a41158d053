"""Outside CI the branch comes from the local git checkout (real git)."""

from __future__ import annotations

from pathlib import Path

from multibuild.ci import providers


def test_real_local_git_branch(tmp_path: Path) -> None:
    import subprocess

    subprocess.run(["git", "init", "-q", "-b", "trunk", str(tmp_path)], check=True)
    subprocess.run(
        [
            "git",
            "-c",
            "user.name=t",
            "-c",
            "user.email=t@e",
            "commit",
            "-q",
            "--allow-empty",
            "-m",
            "x",
        ],
        cwd=tmp_path,
        check=True,
    )
    assert providers.local_git_branch(tmp_path) == "trunk"
    assert providers.local_git_branch(tmp_path / "nonexistent") is None
