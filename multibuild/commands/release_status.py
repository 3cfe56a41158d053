"""The build matrix against the container, as a table (present or missing, size, sha256); exit
status 0 only when every wheel of the matrix is there (and no cell has two), else 12. When it
passes, the release is complete: the moment to push the release tag.

    release-status VERSION [-u URL] [--name NAME] [-t TYPE] [--wait DURATION]
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path

from multibuild import console, matrix
from multibuild.commands import add_type_option
from multibuild.errors import ConfigurationError, ReleaseError
from multibuild.publish.anaconda import index_environ
from multibuild.release.status import release_status, status_rows, table
from multibuild.settings import PACKAGE_REPOSITORY, settings_from
from multibuild.util.durations import parse_duration
from multibuild.util.secrets import Redactor
from multibuild.util.urls import hide_userinfo

# README "Exit codes": 12, a release tool found the release unfit (wheels missing).
INCOMPLETE = ReleaseError.return_code


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("version", metavar="VERSION", help="the release version (PEP 440)")
    parser.add_argument(
        "-u",
        "--url",
        help="container URL, a path relative to the current directory "
        "(default: the release container of settings.toml)",
    )
    parser.add_argument("--name", help="project name (default: settings.toml's)")
    add_type_option(parser)
    parser.add_argument("--wait", metavar="DURATION", help="poll until complete (e.g. 15m)")
    parser.add_argument("--json", action="store_true", help="the table as JSON")
    parser.add_argument("--settings", help="settings.toml (default: found)")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="accepted, as by terryfy's tools: the table always lists every wheel",
    )


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    config = settings_from(args.settings, fallback=PACKAGE_REPOSITORY)
    if config is None:
        raise ConfigurationError("no settings.toml found (the matrix lives there); --settings")
    name = args.name or config.project.name
    url = args.url or config.upload.release_channel
    status = release_status(
        url=url,
        name=name,
        version=args.version,
        kind=args.kind,
        cells=matrix.cells(config.matrix),
        base_dir=Path.cwd(),
        environ=index_environ(os.environ, config.upload.anaconda_index),
        wait_s=parse_duration(args.wait) if args.wait else 0.0,
    )
    done = status.done
    rows = status_rows(done, status.entries, name, args.version)
    shown = hide_userinfo(url)
    if args.json:
        console.result(
            json.dumps({"complete": done.complete, "url": shown, "wheels": rows}, indent=2)
        )
    else:
        console.result(f"{name} {args.version} in {shown} ({status.listing.kind})")
        console.result(table(rows))
        present = len(done.cells) - len(done.missing)
        verdict = "COMPLETE" if done.complete else "INCOMPLETE"
        extra = f", {len(done.conflicts)} with two wheels" if done.conflicts else ""
        console.result(f"{verdict}: {present}/{len(done.cells)} wheels of the matrix{extra}")
    return 0 if done.complete else INCOMPLETE
