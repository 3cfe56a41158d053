"""Check the CI configs (.travis.yml, appveyor.yml, .github/workflows/wheels.yml) and
cibuildwheel.toml against settings.toml: the same BUILD_COMMIT and DAILY_COMMIT everywhere, the
same jobs, every path they name present, each file as settings.toml generates it, and
cibuildwheel's own selection (`--print-build-identifiers` per platform) equal to the matrix.
`--write` regenerates the files from settings.toml.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from multibuild import console
from multibuild.ci import configs
from multibuild.commands import COMMANDS
from multibuild.errors import ConfigurationError
from multibuild.settings import settings_from
from multibuild.util.secrets import Redactor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--write", action="store_true", help="regenerate the CI configs")
    parser.add_argument("--settings", type=Path, help="settings.toml (default: found)")
    parser.add_argument(
        "--no-cibuildwheel",
        action="store_true",
        help="skip asking cibuildwheel (--print-build-identifiers) what cibuildwheel.toml selects",
    )


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    settings = settings_from(args.settings)
    if settings is None:
        raise ConfigurationError("no settings.toml here or above; --settings PATH")
    root = settings.root
    if args.write:
        for written in configs.write_configs(root):
            console.info(f"{'wrote' if written.changed else 'unchanged'}: {written.path}")
    problems = configs.check_configs(
        root,
        command_names=COMMANDS,
        with_cibuildwheel=not args.no_cibuildwheel,
        environ=os.environ,
    )
    for problem in problems:
        console.result(f"MISMATCH: {problem}")
    if problems:
        raise ConfigurationError(f"{len(problems)} CI config problem(s); see above")
    commits = configs.read_commits(root)
    pinned = (
        f"SDIST={settings.project.sdist}"
        if settings.project.sdist
        else f"BUILD_COMMIT={commits['BUILD_COMMIT']} DAILY_COMMIT={commits['DAILY_COMMIT']}"
    )
    console.result(
        f"OK: {len(configs.ALL_FILES)} files agree: {pinned}; "
        f"{', '.join(configs.GENERATED)} are as settings.toml generates them"
        + ("" if args.no_cibuildwheel else "; cibuildwheel selects exactly the matrix's jobs")
    )
    return 0
