"""Make an empty commit that names the commit being built, pushed if asked, so CI builds
BUILD_COMMIT again (after set-build-commit, or to retry).

    trigger-build [-m MESSAGE] [--push] [--remote NAME] [--dry-run]

Refuses with a dirty tree (commit set-build-commit's change first) or with CI configs that
disagree with settings.toml.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from multibuild import console
from multibuild.ci import configs
from multibuild.commands import COMMANDS
from multibuild.errors import ConfigurationError, ReleaseError
from multibuild.release.trigger import git, message
from multibuild.settings import SETTINGS_FILE, load_settings
from multibuild.util.secrets import Redactor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-m", "--message", help="first line (default: 'Build NAME COMMIT')")
    parser.add_argument("--push", action="store_true", help="push the commit")
    parser.add_argument("--remote", default="origin", help="where to push (default origin)")
    parser.add_argument(
        "-C", "--directory", type=Path, default=Path.cwd(), help="the repository (default: here)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show the commit message; commit and push nothing"
    )


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    if not args.directory.is_dir():
        raise ConfigurationError(f"-C {args.directory}: no such directory")
    if args.remote.startswith("-"):
        raise ConfigurationError(f"--remote {args.remote!r}: a remote name, not an option")
    root = Path(git(args.directory, "rev-parse", "--show-toplevel"))
    if not (root / SETTINGS_FILE).is_file():
        raise ConfigurationError(f"{root} has no settings.toml: not a wheels repository")
    dirty = git(root, "status", "--porcelain", "--untracked-files=no")
    if dirty:
        # A usage error (README "Exit codes": 2), not an unfit release.
        raise ConfigurationError(
            "the work tree has uncommitted changes; commit them first (after "
            f"set-build-commit: git commit -a -m 'Build ...'):\n{dirty}"
        )
    problems = configs.check_configs(root, command_names=COMMANDS, environ=os.environ)
    if problems:
        raise ConfigurationError("the CI configs disagree:\n" + "\n".join(map(str, problems)))
    settings = load_settings(root / SETTINGS_FILE)
    build, daily = settings.project.build_commit, settings.project.daily_commit
    text = message(settings.project.name, build, daily, args.message)
    if args.dry_run:
        where = f"; then push to {args.remote}" if args.push else ""
        console.info(f"would commit (empty){where}:\n{text}")
        return 0
    git(root, "commit", "--allow-empty", "-q", "-m", text)
    head = git(root, "rev-parse", "HEAD")
    console.info(f"committed {head[:12]}: {text.splitlines()[0]}")
    if args.push:
        branch = git(root, "rev-parse", "--abbrev-ref", "HEAD")
        if branch == "HEAD":
            raise ReleaseError("detached HEAD: check out a branch to push")
        git(root, "push", "-q", "--", args.remote, f"HEAD:refs/heads/{branch}")
        console.info(f"pushed {branch} to {args.remote}: CI builds {build}")
    else:
        console.info("not pushed (--push pushes it)")
    return 0
