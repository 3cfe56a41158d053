"""Retention for the pre-release container.

Keeps the newest `keep_nightlies` builds per platform and Python (and as many successful
ones) and every build younger than `keep_days` days ([upload] in settings.toml), and deletes
what interrupted uploads left; --dry-run lists every file that would go. The release
container is never pruned.
"""

from __future__ import annotations

import argparse
import math
import os
from pathlib import Path

from multibuild import console
from multibuild.ci import channels, providers
from multibuild.errors import ConfigurationError, UploadError
from multibuild.options import EnvironmentOptions
from multibuild.publish.containers import open_container, same_container
from multibuild.publish.containers.base import ORPHAN_GRACE_S
from multibuild.publish.retention import prune
from multibuild.settings import UploadSettings, settings_from
from multibuild.util.secrets import Redactor


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--container",
        metavar="URL",
        help="a path relative to the current directory or a URL "
        "(default: the pre-release container; by hand, [upload] local's pre-release/)",
    )
    parser.add_argument("--keep", type=int, help="builds to keep per platform and Python")
    parser.add_argument("--keep-days", type=float, help="keep every build younger than this")
    parser.add_argument("--dry-run", action="store_true", help="show what would go")
    parser.add_argument("--settings", type=Path, help="settings.toml (default: found)")


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    settings = settings_from(args.settings)
    upload = settings.upload if settings else UploadSettings()
    base = Path.cwd()  # what a relative container path is relative to
    # By hand (outside Travis, Appveyor, GitHub Actions): [upload] local's directory, as uploads.
    by_hand = not providers.detect(os.environ, git_branch=lambda: None).on_ci
    url = args.container or channels.channel_container(upload, "pre-release", by_hand=by_hand)
    if not url:
        # The nightly indexes' retention runs with their upload (multibuild.publish.anaconda).
        console.info(
            "multibuild prune: no pre-release container ([upload] pre_release): nothing to do"
        )
        return 0
    release = channels.channel_container(upload, "release", by_hand=by_hand)
    if release and same_container(url, release, base):
        raise UploadError(f"REFUSED: {url} is the release container; released files stay")
    keep = upload.keep_nightlies if args.keep is None else args.keep
    keep_days = upload.keep_days if args.keep_days is None else args.keep_days
    if keep < 1 or not (0 <= keep_days <= 36500) or math.isnan(keep_days):
        raise ConfigurationError("--keep must be at least 1 and --keep-days 0 to 36500")
    tuning = EnvironmentOptions.from_environ(os.environ).upload
    container = open_container(
        url, base_dir=base, environ=os.environ, tuning=tuning, purpose="prune"
    )
    project = settings.project.name if settings else "wheels"
    console.info(
        f"multibuild prune: {url}: keep {keep} per platform and Python, and {keep_days:g} days"
    )
    try:
        if not container.exists():
            raise UploadError(f"no container {url} to prune (nothing was deleted)")
        prune(
            container,
            keep=keep,
            keep_days=keep_days,
            title=f"{project} pre-release",
            dry_run=args.dry_run,
            orphan_grace_s=ORPHAN_GRACE_S
            if tuning.orphan_grace_s is None
            else tuning.orphan_grace_s,
        )
    finally:
        container.close()
    return 0
