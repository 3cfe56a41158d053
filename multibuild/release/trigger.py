"""trigger-build's domain: an empty commit naming what CI builds."""

from __future__ import annotations

from pathlib import Path

from multibuild.errors import ReleaseError
from multibuild.util.git import run_git


def git(cwd: Path, *args: str) -> str:
    """git in `cwd` (callers put `--` before arguments that come from the user)."""
    done = run_git(args, cwd)
    if not done.ok:
        raise ReleaseError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout.strip()


def message(name: str, build: str, daily: str, first: str | None) -> str:
    head = first or f"Build {name} {build}"
    return f"{head}\n\n[build] BUILD_COMMIT={build} DAILY_COMMIT={daily}\n"
