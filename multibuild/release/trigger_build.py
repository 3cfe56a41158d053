"""trigger-build: an empty commit that names the commit being built, pushed if asked, so CI
builds BUILD_COMMIT again (after set-build-commit, or to retry).

    trigger-build [-m MESSAGE] [--push] [--remote NAME]

Refuses with a dirty tree (commit set-build-commit's change first) or with CI configs that
disagree with settings.toml.
"""

from __future__ import annotations

import argparse
import subprocess
from collections.abc import Sequence
from pathlib import Path

from multibuild import ciconfig
from multibuild.errors import ConfigurationError, ReleaseError
from multibuild.release.common import run
from multibuild.settings import load_settings

PROG = "trigger-build"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Make an empty commit naming BUILD_COMMIT (and push it)."
    )
    parser.add_argument("-m", "--message", help="first line (default: 'Build NAME COMMIT')")
    parser.add_argument("--push", action="store_true", help="push the commit")
    parser.add_argument("--remote", default="origin", help="where to push (default origin)")
    parser.add_argument("-C", "--directory", type=Path, default=Path.cwd(), help="the repository")
    parser.add_argument("--debug-traceback", action="store_true")
    return parser


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise ReleaseError(f"git {' '.join(args)} failed: {done.stderr.strip() or done.stdout}")
    return done.stdout.strip()


def message(name: str, build: str, daily: str, first: str | None) -> str:
    head = first or f"Build {name} {build}"
    return f"{head}\n\n[build] BUILD_COMMIT={build} DAILY_COMMIT={daily}\n"


def _main(args: argparse.Namespace) -> int:
    root = Path(git(args.directory, "rev-parse", "--show-toplevel"))
    if not (root / "settings.toml").is_file():
        raise ConfigurationError(f"{root} has no settings.toml: not a wheels repository")
    dirty = git(root, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        raise ReleaseError(
            "the work tree has uncommitted changes; commit them first (after "
            f"set-build-commit: git commit -a -m 'Build ...'):\n{dirty}"
        )
    problems = ciconfig.check(root)
    if problems:
        raise ConfigurationError("the CI configs disagree:\n" + "\n".join(problems))
    settings = load_settings(root / "settings.toml")
    build, daily = settings.project.build_commit, settings.project.daily_commit
    text = message(settings.project.name, build, daily, args.message)
    git(root, "commit", "--allow-empty", "-q", "-m", text)
    head = git(root, "rev-parse", "HEAD")
    print(f"committed {head[:12]}: {text.splitlines()[0]}")
    if args.push:
        branch = git(root, "rev-parse", "--abbrev-ref", "HEAD")
        if branch == "HEAD":
            raise ReleaseError("detached HEAD: check out a branch to push")
        git(root, "push", "-q", args.remote, f"HEAD:refs/heads/{branch}")
        print(f"pushed {branch} to {args.remote}: CI builds {build}")
    else:
        print("not pushed (--push pushes it)")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    return run(PROG, lambda: _main(args), args.debug_traceback)
