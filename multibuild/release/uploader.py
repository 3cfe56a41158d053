"""wheel-uploader's domain: find a release's wheels in a container, check the release is
complete against the matrix, download and verify them, sign them, and upload them with twine
(only what the index does not already have)."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from multibuild import console, matrix
from multibuild.errors import ReleaseError
from multibuild.release import pypi, sign
from multibuild.release.fetch import DEFAULT_JOBS, Fetcher
from multibuild.release.listing import Entry, Listing, read_container_listing
from multibuild.settings import Settings
from multibuild.util.files import sha256_file
from multibuild.util.http import Http
from multibuild.util.sizes import format_size
from multibuild.util.urls import hide_userinfo


@dataclass(frozen=True, kw_only=True)
class ReleaseRequest:
    """What wheel-uploader is asked to do (its flags, typed)."""

    name: str
    version: str
    url: str
    wheelhouse: Path
    kind: str = "all"
    sign: bool = False
    identity: str | None = None
    gpg: str = "gpg"
    clobber: bool = False
    no_upload: bool = False
    repository: str = "pypi"
    repository_url: str | None = None
    config_file: str | None = None
    index_url: str | None = None
    allow_incomplete: bool = False
    wait_s: float = 0.0
    poll_interval: float = 30.0
    dry_run: bool = False
    jobs: int = DEFAULT_JOBS
    attempts: int = 5
    verbose: bool = False
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)


def _poll(
    args: ReleaseRequest, http: Http, cells: list[matrix.Cell], base_dir: Path
) -> tuple[Listing, list[matrix.WheelName], matrix.Completeness]:
    deadline = time.monotonic() + args.wait_s
    while True:
        listing = read_container_listing(
            args.url, http, project=args.name, base_dir=base_dir, environ=args.environ
        )
        # The release is the container's top level (a PEP 503 page: its files); wheels in
        # sub-directories (`old/...`, a `%2F` link) are something else.
        names = [n for n in listing.by_basename() if n.endswith(".whl")]
        wheels = matrix.select(names, args.name, args.version, args.kind)
        done = matrix.completeness(cells, wheels, args.kind)
        remaining = deadline - time.monotonic()
        if (wheels and (done.complete or not cells)) or remaining <= 0:
            return listing, wheels, done
        console.wait(
            f"waiting for {len(done.missing) if wheels else 'all'} wheel(s) "
            f"({remaining / 60:.1f} min left)",
            min(args.poll_interval, max(remaining, 0.1)),
        )


def release_wheels(args: ReleaseRequest, config: Settings | None) -> int:
    """Find, check, download, sign and upload the release's wheels (wheel-uploader)."""
    cells = matrix.cells(config.matrix) if config else []
    base_dir = Path.cwd()  # what a relative container path is relative to
    http = Http(attempts=args.attempts)
    try:
        return _release(args, http, cells, base_dir, has_matrix=config is not None)
    finally:
        http.close()


def _release(
    args: ReleaseRequest, http: Http, cells: list[matrix.Cell], base_dir: Path, has_matrix: bool
) -> int:
    listing, wheels, done = _poll(args, http, cells, base_dir)
    top = listing.by_basename()
    _check_listed(args, listing, wheels, done)
    _check_complete(args, done, has_matrix)
    entries: list[Entry] = [top[w.filename] for w in wheels]
    paths = _download_and_sign(args, http, entries)
    if args.no_upload:
        return 0
    _upload_to_index(args, http, entries, paths)
    return 0


def _check_listed(
    args: ReleaseRequest,
    listing: Listing,
    wheels: Sequence[matrix.WheelName],
    done: matrix.Completeness,
) -> None:
    """Some wheels listed, and one at most per cell of the matrix."""
    for href in listing.ignored:
        console.detail(f"ignored a link that leaves the container: {href}")
    top = listing.by_basename()
    for entry in listing.entries.values():
        if entry.name.endswith(".whl") and top.get(entry.basename) is not entry:
            console.detail(f"ignored a wheel in a sub-directory: {entry.name}")
    if not wheels:
        raise ReleaseError(
            f"no wheel of {args.name} {args.version} (type {args.kind}) in {args.url} "
            f"({len(listing.entries)} objects listed)"
        )
    console.info(
        f"{len(wheels)} wheel(s) of {args.name} {args.version} in {hide_userinfo(listing.url)} "
        f"({listing.kind})"
    )
    if done.conflicts:
        lines = [
            f"  {cell.label}: {', '.join(w.filename for w in found)}"
            for cell, found in done.conflicts.items()
        ]
        raise ReleaseError(
            "more than one wheel for the same Python and platform (a rebuild with a build tag "
            "beside the first build?); delete the one not to release:\n" + "\n".join(lines)
        )


def _check_complete(args: ReleaseRequest, done: matrix.Completeness, has_matrix: bool) -> None:
    """A missing cell stops the release unless --allow-incomplete or --no-upload."""
    if not has_matrix:
        console.info(
            "warning: no settings.toml found: the release cannot be checked for completeness"
        )
    if done.missing:
        console.info(f"missing: {matrix.describe_missing(done.missing, args.name, args.version)}")
        if not (args.allow_incomplete or args.no_upload):
            raise ReleaseError(
                f"{len(done.missing)} of {len(done.cells)} wheels of the matrix are missing; "
                "nothing was downloaded or uploaded (--wait DURATION to wait for them, "
                "--allow-incomplete to release without them)"
            )


def _download_and_sign(args: ReleaseRequest, http: Http, entries: Sequence[Entry]) -> list[Path]:
    """The wheels, verified, in the wheelhouse, with their SHA256SUMS (and signatures)."""
    wheelhouse = args.wheelhouse
    total = sum(e.size or 0 for e in entries)
    progress = console.Transfer(len(entries), total)
    report = Fetcher(
        http, wheelhouse, clobber=args.clobber, jobs=args.jobs, progress=progress
    ).fetch(entries)
    resumed = f", {len(report.resumed)} resumed" if report.resumed else ""
    console.info(
        f"{len(report.downloaded)} downloaded ({format_size(report.nbytes)} in "
        f"{report.seconds:.1f} s{resumed}), {len(report.kept)} already there, into {wheelhouse}"
    )
    for name in report.unverified:
        console.info(
            f"warning: {name}: no checksum in the container or a record; checked by size only"
        )
    paths = report.paths
    sums = sign.write_sums(paths, wheelhouse)
    if args.sign:
        signed = sign.sign_release(paths, wheelhouse, args.identity, gpg=args.gpg)
        console.info(
            f"signed {len(paths)} wheel(s) and {sums.name}: {len(signed) - 1} signature(s)"
        )
    return paths


def _upload_to_index(
    args: ReleaseRequest, http: Http, entries: Sequence[Entry], paths: Sequence[Path]
) -> None:
    """twine-checked, then uploaded unless already there, then read back from the index."""
    pypi.twine_check(paths, args.environ)
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
    plan = pypi.upload_plan(http, target, args.name, paths, sha256s, environ=args.environ)
    where = hide_userinfo(target.repository_url) if target.repository_url else target.repository
    for path in plan.skip:
        console.info(f"already on the index (same sha256), skipped: {path.name}")
    if args.dry_run:
        for path in plan.upload:
            extra = " (+ .asc)" if path.with_name(path.name + ".asc").exists() else ""
            console.info(f"would upload to {where}: {path.name}{extra}")
        return
    if not plan.upload:
        console.info("nothing to upload: every wheel is already on the index")
        return
    output = pypi.twine_upload(target, plan.upload, args.environ, verbose=args.verbose)
    console.detail(output)
    present = pypi.existing_files(http, plan.index_url, args.name) or {}
    wrong = [p.name for p in plan.upload if present.get(p.name) not in (sha256s[p.name], "")]
    if wrong:
        raise ReleaseError(f"uploaded, but the index does not show them as sent: {wrong}")
    console.info(f"uploaded {len(plan.upload)} wheel(s) to {where}")
