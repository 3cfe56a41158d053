"""`python -m multibuild prune`: retention for the pre-release container.

Keeps the newest `keep_nightlies` builds per platform and Python and every build younger than
`keep_days` days ([upload] in settings.toml); --dry-run shows what would go. The release
container is never pruned.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from multibuild.commands.upload import same_container, settings_for
from multibuild.containers import open_container
from multibuild.containers.credentials import redact, secret_values
from multibuild.errors import FatalError, UploadError
from multibuild.retention import prune

NAME = "prune"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="delete old nightly builds from the pre-release container",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--container", metavar="URL", help="default: the pre-release container")
    parser.add_argument("--keep", type=int, help="builds to keep per platform and Python")
    parser.add_argument("--keep-days", type=float, help="keep every build younger than this")
    parser.add_argument("--dry-run", action="store_true", help="show what would go")
    parser.add_argument("--settings", type=Path, help="settings.toml (default: found)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    secrets = secret_values(os.environ)
    try:
        return _run(args)
    except FatalError as error:
        raise type(error)(redact(str(error), secrets)) from None


def _run(args: argparse.Namespace) -> int:
    upload_settings, settings, base = settings_for(args.settings)
    url = args.container or upload_settings.pre_release
    if upload_settings.release and same_container(url, upload_settings.release, base):
        raise UploadError(f"REFUSED: {url} is the release container; released files stay")
    keep = upload_settings.keep_nightlies if args.keep is None else args.keep
    keep_days = upload_settings.keep_days if args.keep_days is None else args.keep_days
    if keep < 1 or keep_days < 0:
        raise UploadError("--keep must be at least 1 and --keep-days not negative")
    container = open_container(url, base_dir=base)
    project = settings.project.name if settings else "wheels"
    print(f"multibuild prune: {url}: keep {keep} per platform and Python, and {keep_days:g} days")
    try:
        prune(
            container,
            keep=keep,
            keep_days=keep_days,
            title=f"{project} pre-release",
            dry_run=args.dry_run,
        )
    finally:
        container.close()
    return 0
