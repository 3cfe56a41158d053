"""`python -m multibuild check-config`: the CI configs (.travis.yml, appveyor.yml,
.github/workflows/wheels.yml) and cibuildwheel.toml against settings.toml: the same
BUILD_COMMIT and DAILY_COMMIT everywhere, the same jobs, every path they name present, each file
as settings.toml generates it, and cibuildwheel's own selection (`--print-build-identifiers`
per platform) equal to the matrix. `--write` regenerates the files from settings.toml.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from multibuild import ciconfig
from multibuild.errors import ConfigurationError
from multibuild.settings import settings_from

NAME = "check-config"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="check the CI configs against settings.toml (--write: regenerate them)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--write", action="store_true", help="regenerate the CI configs")
    parser.add_argument("--settings", type=Path, help="settings.toml (default: found)")
    parser.add_argument(
        "--no-cibuildwheel",
        action="store_true",
        help="skip asking cibuildwheel (--print-build-identifiers) what cibuildwheel.toml selects",
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args.settings)
    if settings is None:
        raise ConfigurationError("no settings.toml here or above; --settings PATH")
    root = settings.root
    if args.write:
        for written in ciconfig.write_configs(root):
            print(f"{'wrote' if written.changed else 'unchanged'}: {written.path}")
    problems = ciconfig.check(root, with_cibuildwheel=not args.no_cibuildwheel)
    for problem in problems:
        print(f"MISMATCH: {problem}")
    if problems:
        raise ConfigurationError(f"{len(problems)} CI config problem(s); see above")
    commits = ciconfig.read_commits(root)["settings.toml"]
    print(
        f"OK: {len(ciconfig.ALL_FILES)} files agree: BUILD_COMMIT={commits['BUILD_COMMIT']} "
        f"DAILY_COMMIT={commits['DAILY_COMMIT']}; {', '.join(ciconfig.GENERATED)} are as "
        "settings.toml generates them"
        + ("" if args.no_cibuildwheel else "; cibuildwheel selects exactly the matrix's jobs")
    )
    return 0
