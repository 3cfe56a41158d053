"""Point the builds at a new commit: BUILD_COMMIT (or DAILY_COMMIT, what nightly builds
build) in settings.toml, then every CI config regenerated from it.

    set-build-commit REF            BUILD_COMMIT = REF
    set-build-commit --daily REF    DAILY_COMMIT = REF
    set-build-commit --check        only check that the files agree
"""

from __future__ import annotations

import argparse
import os
import shutil
import tempfile
from pathlib import Path

from multibuild import console
from multibuild.ci import configs
from multibuild.commands import COMMANDS
from multibuild.errors import ConfigurationError
from multibuild.settings import PACKAGE_REPOSITORY, SETTINGS_FILE, load_settings, settings_from
from multibuild.util.secrets import Redactor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("ref", metavar="REF", nargs="?", help="the commit to build")
    parser.add_argument("--daily", metavar="REF", help="the commit nightly builds build")
    parser.add_argument("--check", action="store_true", help="only check the files agree")
    parser.add_argument("--root", type=Path, help="the repository (default: found)")
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="show the lines that would change (settings.toml, the CI configs); write nothing",
    )


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not (args.ref or args.daily or args.check):
        parser.error("give REF, --daily REF or --check")


def _root(given: Path | None) -> Path:
    if given is not None:
        return given.resolve()
    found = settings_from(None, fallback=PACKAGE_REPOSITORY)
    if found is None:
        raise ConfigurationError("no settings.toml found; --root DIR")
    return found.root


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    root = _root(args.root)
    try:
        sdist = load_settings(root / SETTINGS_FILE).project.sdist
    except ConfigurationError:
        sdist = ""  # set_commits below names what is wrong with the file
    if sdist and not args.check and (args.ref or args.daily):
        raise ConfigurationError(
            f"settings.toml builds a release's sdist ([project] sdist = {sdist!r}), no commit: "
            "edit that line for another release, then `check-config --write`"
        )
    if args.dry_run and not args.check:
        return _dry_run(root, args)
    if not args.check:
        changes = {}
        if args.ref:
            changes["BUILD_COMMIT"] = configs.check_ref(args.ref)
        if args.daily:
            changes["DAILY_COMMIT"] = configs.check_ref(args.daily)
        changed = configs.set_commits(root, changes)
        for path in changed:
            console.info(f"updated {path}")
        if not changed:
            console.info("already set; nothing changed")
    problems = configs.check_configs(root, command_names=COMMANDS, environ=os.environ)
    if problems:
        raise ConfigurationError("\n".join(map(str, problems)))
    commits = configs.read_commits(root)
    console.info(
        f"all {len(configs.ALL_FILES)} files agree: BUILD_COMMIT={commits['BUILD_COMMIT']} "
        f"DAILY_COMMIT={commits['DAILY_COMMIT']}"
    )
    return 0


def _dry_run(root: Path, args: argparse.Namespace) -> int:
    """The change made on a copy of the files: each changed line, old and new."""
    changes = {}
    if args.ref:
        changes["BUILD_COMMIT"] = configs.check_ref(args.ref)
    if args.daily:
        changes["DAILY_COMMIT"] = configs.check_ref(args.daily)
    with tempfile.TemporaryDirectory(prefix="mb-set-build-commit-") as tmp:
        copy = Path(tmp)
        for path in {*configs.ALL_FILES, *configs.GENERATED}:
            if (root / path).is_file():
                (copy / path).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(root / path, copy / path)
        changed = configs.set_commits(copy, changes)
        for path in changed:
            old = (root / path).read_text(encoding="utf-8").splitlines()
            new = (copy / path).read_text(encoding="utf-8").splitlines()
            for number, (before, after) in enumerate(zip(old, new, strict=False), start=1):
                if before != after:
                    console.result(f"{path}:{number}: {before.strip()} -> {after.strip()}")
    console.info("dry run: nothing written" if changed else "already set; nothing would change")
    return 0
