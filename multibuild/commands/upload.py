"""`python -m multibuild upload`: wheels, build records and logs to the channel's container.

Without --container/--channel the CI environment decides (multibuild.ci): the development
branch and cron builds go to the pre-release container, release branches to the release
container, pull requests and forks nowhere. Outside Travis, Appveyor and GitHub Actions (a run
by hand, `nox -s build`), wheels whose branch decides nothing go to the pre-release container
when it is a local directory.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

from multibuild import ci
from multibuild.containers import open_container, split_url
from multibuild.containers.credentials import redact, secret_values
from multibuild.errors import ConfigurationError, FatalError, UploadError
from multibuild.settings import Settings, UploadSettings, settings_from
from multibuild.upload import collect, upload

NAME = "upload"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="upload wheels with their build records and logs to a container",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="WHEELHOUSE_OR_WHEELS",
        help="wheelhouse directories (wheels, <build-id>.json records and logs) or files",
    )
    parser.add_argument(
        "--container",
        metavar="URL",
        help="a path, file:///path, swift://CONTAINER[/prefix] or s3://BUCKET[/prefix] "
        "(default: the channel's container in settings.toml)",
    )
    parser.add_argument(
        "--channel",
        choices=ci.CHANNELS,
        help="pre-release or release (default: decided from the CI environment)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be uploaded; write nothing"
    )
    parser.add_argument(
        "--settings", type=Path, help="settings.toml (default: found from the working directory)"
    )
    parser.set_defaults(func=run)


def settings_for(path: Path | None) -> tuple[UploadSettings, Settings | None, Path]:
    settings = settings_from(path)
    if settings is None:
        return UploadSettings(), None, Path.cwd()
    return settings.upload, settings, settings.root


def is_local(url: str) -> bool:
    return split_url(url)[0] == "file"


def same_container(a: str, b: str, base: Path) -> bool:
    sa, sb = split_url(a), split_url(b)
    if sa[0] == sb[0] == "file":
        pa, pb = Path(sa[1]), Path(sb[1])
        return (base / pa).resolve() == (base / pb).resolve()
    return sa == sb


def run(args: argparse.Namespace) -> int:
    return upload_wheelhouse(
        args.paths,
        settings_path=args.settings,
        container_url=args.container,
        channel=args.channel,
        dry_run=args.dry_run,
    )


def decide(
    info: ci.CIInfo,
    upload_settings: UploadSettings,
    settings: Settings | None,
    *,
    channel: str | None = None,
    container_url: str | None = None,
) -> tuple[ci.Decision, str | None]:
    """Where this run's wheels go: the decision (channel or none, and why) and the container."""
    decision = ci.decide(info, upload_settings, settings.project if settings else None)
    decision = ci.resolve_channel(info, decision, channel, upload_settings)
    if (
        decision.channel is None
        and not decision.forbidden
        and info.provider in ("local", "unknown")
        and (container_url or upload_settings.pre_release)
        and is_local(container_url or upload_settings.pre_release)
    ):
        decision = ci.Decision(
            "pre-release",
            f"{decision.reason}; run outside CI: the local pre-release container",
            commit=decision.commit,
        )
    if decision.channel is None:
        return decision, None
    url = container_url or (
        upload_settings.release if decision.channel == "release" else upload_settings.pre_release
    )
    return decision, url or None


def upload_wheelhouse(
    paths: list[Path],
    *,
    settings_path: Path | None = None,
    container_url: str | None = None,
    channel: str | None = None,
    dry_run: bool = False,
) -> int:
    """Upload wheelhouses to the container the CI environment (or `channel`) decides."""
    secrets = secret_values(os.environ)
    try:
        return _upload(
            paths,
            settings_path=settings_path,
            container_url=container_url,
            requested=channel,
            dry_run=dry_run,
            secrets=secrets,
        )
    except FatalError as error:
        # Whatever an error says, it never shows a credential.
        raise type(error)(redact(str(error), secrets)) from None


def _upload(
    paths: list[Path],
    *,
    settings_path: Path | None,
    container_url: str | None,
    requested: str | None,
    dry_run: bool,
    secrets: list[str],
) -> int:
    upload_settings, settings, base = settings_for(settings_path)
    info = ci.detect(os.environ, git_branch=lambda: ci.local_git_branch(base))
    decision, url = decide(
        info, upload_settings, settings, channel=requested, container_url=container_url
    )
    what = "run by hand" if info.provider == "local" else f"{info.provider} {info.event}"
    where = what + (f" on {info.branch}" if info.branch else "")
    if decision.channel is None:
        print(f"multibuild upload: not uploading ({where}): {decision.reason}")
        return 0
    channel = decision.channel
    if not url:
        raise ConfigurationError(f"no container for channel {channel} ([upload] in settings.toml)")
    if (
        channel != "release"
        and upload_settings.release
        and same_container(url, upload_settings.release, base)
    ):
        raise UploadError(
            f"REFUSED: {url} is the release container; only a release upload may write to it"
        )
    wheelhouse = collect(paths)
    if channel == "release":
        _warn_moving_refs(settings, wheelhouse.records)
    print(f"multibuild upload: {where} -> {channel} ({decision.reason}) -> {url}")
    container = open_container(url, base_dir=base)
    project = settings.project.name if settings else ""
    if wheelhouse.records:
        project = str(wheelhouse.records[0][1].get("project") or project)
    ci_record: dict[str, Any] = {**info.as_record(), "nightly": decision.nightly}
    try:
        report = upload(
            container,
            wheelhouse,
            channel=channel,
            ci=ci_record,
            title=f"{project or 'wheels'} {channel}".strip(),
            secrets=secrets,
            dry_run=dry_run,
        )
    finally:
        container.close()
    if report.dry_run:
        print("multibuild upload: dry run, nothing written")
        return 0
    print(
        f"multibuild upload: {len(report.uploaded)} uploaded, {len(report.replaced)} replaced, "
        f"{len(report.skipped)} already there, {len(report.build_files)} record/log file(s); "
        f"{report.bytes_sent} bytes in {report.seconds:.1f} s, {report.retries} retries\n"
        f"  index:   {report.index_url}\n  history: {report.history_url}"
    )
    return 0


def _warn_moving_refs(settings: Settings | None, records: Any) -> None:
    refs = set()
    if settings is not None:
        refs.add(settings.project.build_commit)
    for _, record in records:
        source = record.get("source") or {}
        if source.get("kind") == "git" and source.get("ref"):
            refs.add(str(source["ref"]))
    for ref in sorted(refs):
        if not ci.is_full_hash(ref):
            print(
                f"multibuild upload: WARNING: BUILD_COMMIT {ref!r} is a moving name, not a "
                "full commit hash; for a release, push the commit, build that hash, and tag "
                "only after all wheels exist",
                file=sys.stderr,
            )
