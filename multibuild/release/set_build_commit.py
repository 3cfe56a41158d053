"""set-build-commit: point every CI config (and settings.toml) at a new commit at once.

    set-build-commit REF            BUILD_COMMIT = REF
    set-build-commit --daily REF    DAILY_COMMIT = REF (what nightly builds build)
    set-build-commit --check        only check that the four files agree

Line edits keep comments and layout; every file is parsed afterwards and all must agree
(with settings.toml's matrix too), else nothing is written.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from pathlib import Path

from multibuild import ciconfig
from multibuild.errors import ConfigurationError
from multibuild.release.common import REPO_ROOT, run
from multibuild.settings import settings_from

PROG = "set-build-commit"


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Set BUILD_COMMIT (and/or DAILY_COMMIT) in settings.toml, .travis.yml, "
        "appveyor.yml and .github/workflows/wheels.yml together.",
    )
    parser.add_argument("ref", metavar="REF", nargs="?", help="the commit to build")
    parser.add_argument("--daily", metavar="REF", help="the commit nightly builds build")
    parser.add_argument("--check", action="store_true", help="only check the files agree")
    parser.add_argument("--root", type=Path, help="the repository (default: found)")
    parser.add_argument("--debug-traceback", action="store_true")
    return parser


def _root(given: Path | None) -> Path:
    if given is not None:
        return given.resolve()
    found = settings_from(None, fallback=REPO_ROOT)
    if found is None:
        raise ConfigurationError("no settings.toml found; --root DIR")
    return found.root


def _main(args: argparse.Namespace) -> int:
    root = _root(args.root)
    if not args.check:
        changes = {}
        if args.ref:
            changes["BUILD_COMMIT"] = ciconfig.check_ref(args.ref)
        if args.daily:
            changes["DAILY_COMMIT"] = ciconfig.check_ref(args.daily)
        problems = ciconfig.check(root)
        if problems:  # fix the layout first: a rewrite must start from agreeing files' shape
            only_commits = all(p.kind == "commit" for p in problems)
            if not only_commits:
                raise ConfigurationError("the CI configs disagree already:\n" + "\n".join(problems))
        changed = ciconfig.rewrite_commits(root, changes)
        for path in changed:
            print(f"updated {path}")
        if not changed:
            print("already set; nothing changed")
    problems = ciconfig.check(root)
    if problems:
        raise ConfigurationError("\n".join(problems))
    commits = ciconfig.read_commits(root)["settings.toml"]
    print(
        f"all {len(ciconfig.ALL_FILES)} files agree: BUILD_COMMIT={commits['BUILD_COMMIT']} "
        f"DAILY_COMMIT={commits['DAILY_COMMIT']}"
    )
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if not (args.ref or args.daily or args.check):
        parser.error("give REF, --daily REF or --check")
    return run(PROG, lambda: _main(args), args.debug_traceback)
