"""Download the wheels NAME-VERSION-* from a container, check the release against the CI
matrix, sign them and upload them with twine.

    wheel-uploader -u URL [-s] [-v] [-w WHEELHOUSE] [-t all|macosx|win|manylinux|musllinux|linux] \\
                   [-c] [-n] [-r REPOSITORY] NAME VERSION

The interface of terryfy's wheel-uploader, kept; docs/release.md has everything added since.
PyPI has ignored PGP signatures since 2023: `-s` signs the wheelhouse (each wheel's `.asc` and
a signed SHA256SUMS) for the release manager's own records.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from multibuild.commands import add_type_option
from multibuild.errors import ConfigurationError
from multibuild.options import EnvironmentOptions
from multibuild.publish.anaconda import index_environ
from multibuild.release.fetch import DEFAULT_JOBS
from multibuild.release.uploader import ReleaseRequest, release_wheels
from multibuild.settings import PACKAGE_REPOSITORY, settings_from
from multibuild.util.durations import parse_duration
from multibuild.util.secrets import Redactor

POLL_S = 30.0


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("name", metavar="NAME", help="project name (normalised as pip does)")
    parser.add_argument("version", metavar="VERSION", help="release version (PEP 440)")
    parser.add_argument(
        "-u",
        "--url",
        required=True,
        help="the container's URL (a path: relative to the current directory)",
    )
    parser.add_argument(
        "-s", "--sign", action="store_true", help="sign the wheelhouse with GPG (.asc, SHA256SUMS)"
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show every file fetched and checked"
    )
    parser.add_argument(
        "-w",
        "--wheelhouse",
        default=str(Path("~") / "wheelhouse"),
        help="download directory (default ~/wheelhouse)",
    )
    add_type_option(parser)
    parser.add_argument("-c", "--clobber", action="store_true", help="download again")
    parser.add_argument("-n", "--no-upload", action="store_true", help="download only")
    parser.add_argument("-r", "--repository", default="pypi", help="name in ~/.pypirc")
    parser.add_argument("--repository-url", help="upload URL (overrides -r)")
    parser.add_argument("--config-file", help="the .pypirc to use (default ~/.pypirc)")
    parser.add_argument("--index-url", help="the index's PEP 503 simple URL (default: found)")
    parser.add_argument("--identity", help="GPG key to sign with (default: gpg's default key)")
    parser.add_argument(
        "--allow-incomplete", action="store_true", help="upload even with wheels missing"
    )
    parser.add_argument("--wait", metavar="DURATION", help="poll until complete (e.g. 15m)")
    parser.add_argument(
        "--poll-interval", type=float, default=POLL_S, metavar="SECONDS", help="with --wait"
    )
    parser.add_argument("--dry-run", action="store_true", help="show what would be uploaded")
    parser.add_argument("-j", "--jobs", type=int, default=DEFAULT_JOBS, help="parallel downloads")
    parser.add_argument("--settings", help="settings.toml with the matrix (default: found)")


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """Flag errors argparse itself cannot see (exit 2 with the usage, as argparse does)."""
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.wait:
        try:
            parse_duration(args.wait)
        except Exception as error:
            parser.error(str(error))


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    env_options = EnvironmentOptions.from_environ(os.environ)
    settings = settings_from(args.settings, fallback=PACKAGE_REPOSITORY)
    wheelhouse = Path(args.wheelhouse).expanduser()
    if wheelhouse.exists() and not wheelhouse.is_dir():
        raise ConfigurationError(f"-w {wheelhouse} is a file, not a directory")
    request = ReleaseRequest(
        name=args.name,
        version=args.version,
        url=args.url,
        wheelhouse=wheelhouse,
        kind=args.kind,
        sign=args.sign,
        identity=args.identity,
        gpg=env_options.gpg,
        clobber=args.clobber,
        no_upload=args.no_upload,
        repository=args.repository,
        repository_url=args.repository_url,
        config_file=args.config_file,
        index_url=args.index_url,
        allow_incomplete=args.allow_incomplete,
        wait_s=parse_duration(args.wait) if args.wait else 0.0,
        poll_interval=args.poll_interval,
        dry_run=args.dry_run,
        jobs=args.jobs,
        verbose=args.verbose,
        environ=index_environ(os.environ, settings.upload.anaconda_index if settings else ""),
    )
    return release_wheels(request, settings)
