"""wheel-uploader: download a release's wheels from a container, check the release is complete,
sign them, and upload them with twine.

    wheel-uploader -u URL [-s] [-v] [-w WHEELHOUSE] [-t all|macosx|win|manylinux|linux] \\
                   [-c] [-n] [-r REPOSITORY] NAME VERSION

The interface of the old script, kept; see docs/release.md for everything added since.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from multibuild.errors import ConfigurationError, ReleaseError
from multibuild.release import matrix, pypi, sign
from multibuild.release.common import parse_duration, read_listing, run, settings
from multibuild.release.fetch import DEFAULT_JOBS, Fetcher, Progress
from multibuild.release.http import Http
from multibuild.release.listing import Entry, Listing
from multibuild.util.files import sha256_file

PROG = "wheel-uploader"
POLL_S = 30.0


class Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # type: ignore[override]
        self.print_usage(sys.stderr)
        self.exit(2, f"{self.prog}: error: {message}\n")


def make_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog=PROG,
        description="Download the wheels NAME-VERSION-* from a container, check the release "
        "against the CI matrix, sign them and upload them to PyPI with twine.",
    )
    parser.add_argument("name", metavar="NAME", help="project name (normalised as pip does)")
    parser.add_argument("version", metavar="VERSION", help="release version (PEP 440)")
    parser.add_argument("-u", "--url", required=True, help="the container's URL")
    parser.add_argument("-s", "--sign", action="store_true", help="sign with GPG (.asc)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument(
        "-w",
        "--wheelhouse",
        default=str(Path("~") / "wheelhouse"),
        help="download directory (default ~/wheelhouse)",
    )
    parser.add_argument("-t", "--type", choices=matrix.TYPES, default="all", dest="kind")
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
    parser.add_argument("--debug-traceback", action="store_true")
    return parser


def say(message: str) -> None:
    print(message, flush=True)


def _poll(
    args: argparse.Namespace, http: Http, cells: list[matrix.Cell], base_dir: Path
) -> tuple[Listing, list[matrix.WheelName], matrix.Completeness]:
    deadline = time.monotonic() + (parse_duration(args.wait) if args.wait else 0.0)
    while True:
        listing = read_listing(
            args.url, http, project=args.name, base_dir=base_dir, verbose=args.verbose
        )
        names = [e.basename for e in listing.entries.values() if e.name.endswith(".whl")]
        wheels = matrix.select(names, args.name, args.version, args.kind)
        done = matrix.check(cells, wheels, args.kind)
        remaining = deadline - time.monotonic()
        if (wheels and (done.complete or not cells)) or remaining <= 0:
            return listing, wheels, done
        say(
            f"waiting for {len(done.missing) if wheels else 'all'} wheel(s) "
            f"({remaining / 60:.1f} min left)"
        )
        time.sleep(min(args.poll_interval, max(remaining, 0.1)))


def _main(args: argparse.Namespace) -> int:
    config = settings(args.settings)
    cells = matrix.cells(config.matrix) if config else []
    base_dir = config.root if config else Path.cwd()
    http = Http()
    try:
        return _release(args, http, cells, base_dir, has_matrix=config is not None)
    finally:
        http.close()


def _release(
    args: argparse.Namespace, http: Http, cells: list[matrix.Cell], base_dir: Path, has_matrix: bool
) -> int:
    listing, wheels, done = _poll(args, http, cells, base_dir)
    for href in listing.ignored:
        if args.verbose:
            say(f"ignored a link that leaves the container: {href}")
    if not wheels:
        raise ReleaseError(
            f"no wheel of {args.name} {args.version} (type {args.kind}) in {args.url} "
            f"({len(listing.entries)} objects listed)"
        )
    say(f"{len(wheels)} wheel(s) of {args.name} {args.version} in {listing.url} ({listing.kind})")
    if done.conflicts:
        lines = [
            f"  {cell.label}: {', '.join(w.filename for w in found)}"
            for cell, found in done.conflicts.items()
        ]
        raise ReleaseError(
            "more than one wheel for the same Python and platform (a rebuild with a build tag "
            "beside the first build?); delete the one not to release:\n" + "\n".join(lines)
        )
    if not has_matrix:
        say("warning: no settings.toml found: the release cannot be checked for completeness")
    if done.missing:
        say(f"missing: {matrix.describe_missing(done.missing, args.name, args.version)}")
        if not (args.allow_incomplete or args.no_upload):
            raise ReleaseError(
                f"{len(done.missing)} of {len(done.cells)} wheels of the matrix are missing; "
                "nothing was downloaded or uploaded (--wait DURATION to wait for them, "
                "--allow-incomplete to release without them)"
            )
    entries: list[Entry] = [listing.by_basename()[w.filename] for w in wheels]
    wheelhouse = Path(args.wheelhouse).expanduser()
    total = sum(e.size or 0 for e in entries)
    progress = Progress(len(entries), total, verbose=args.verbose)
    report = Fetcher(
        http, wheelhouse, clobber=args.clobber, jobs=args.jobs, progress=progress
    ).fetch(entries)
    resumed = f", {len(report.resumed)} resumed" if report.resumed else ""
    say(
        f"{len(report.downloaded)} downloaded ({report.nbytes / (1 << 20):.1f} MiB in "
        f"{report.seconds:.1f} s{resumed}), {len(report.kept)} already there, into {wheelhouse}"
    )
    for name in report.unverified:
        say(f"warning: {name}: no checksum in the container or a record; checked by size only")
    paths = report.paths
    sums = sign.write_sums(paths, wheelhouse)
    if args.sign:
        signed = sign.sign_release(paths, wheelhouse, args.identity)
        say(f"signed {len(paths)} wheel(s) and {sums.name}: {len(signed) - 1} signature(s)")
    if args.no_upload:
        return 0
    pypi.twine_check(paths)
    target = pypi.Target(
        repository=args.repository,
        repository_url=args.repository_url,
        config_file=args.config_file,
        index_url=args.index_url,
    )
    sha256s = {e.basename: e.sha256 for e in entries}
    for path in paths:  # files verified only by size: hash what we have
        if not sha256s.get(path.name):
            sha256s[path.name] = sha256_file(path)
    plan = pypi.plan(http, target, args.name, paths, sha256s)
    where = target.repository_url or target.repository
    for path in plan.skip:
        say(f"already on the index (same sha256), skipped: {path.name}")
    if args.dry_run:
        for path in plan.upload:
            extra = " (+ .asc)" if path.with_name(path.name + ".asc").exists() else ""
            say(f"would upload to {where}: {path.name}{extra}")
        return 0
    if not plan.upload:
        say("nothing to upload: every wheel is already on the index")
        return 0
    output = pypi.upload(target, plan.upload, verbose=args.verbose)
    if args.verbose:
        say(output)
    present = pypi.existing_files(http, plan.index_url, args.name) or {}
    wrong = [p.name for p in plan.upload if present.get(p.name) not in (sha256s[p.name], "")]
    if wrong:
        raise ReleaseError(f"uploaded, but the index does not show them as sent: {wrong}")
    say(f"uploaded {len(plan.upload)} wheel(s) to {where}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    if args.jobs < 1:
        parser.error("--jobs must be at least 1")
    if args.wait:
        try:
            parse_duration(args.wait)
        except ConfigurationError as error:
            parser.error(str(error))
    return run(PROG, lambda: _main(args), args.debug_traceback)
