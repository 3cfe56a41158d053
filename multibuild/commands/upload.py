"""Upload wheels, build records and logs to the channel's container.

Without --container/--channel the CI environment decides (multibuild.ci.channels): the
development branch and scheduled builds go to the pre-release container, release branches to
the release container, pull requests and forks nowhere. Outside Travis, Appveyor and GitHub
Actions (a run by hand, `nox -s build`), wheels whose branch decides nothing go to the
pre-release container when it is a local directory.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from multibuild import console
from multibuild.ci import channels, providers
from multibuild.engine.record import BuildRecord
from multibuild.errors import ConfigurationError
from multibuild.options import EnvironmentOptions
from multibuild.publish.upload import Destination, check_credentials, publish_run
from multibuild.publish.wheelhouse import collect
from multibuild.settings import Settings, UploadSettings, settings_from
from multibuild.util.secrets import Redactor
from multibuild.util.urls import hide_userinfo


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        metavar="WHEELHOUSE_OR_WHEELS",
        help="wheelhouse directories (wheels, <build-id>.json records and logs) or files",
    )
    parser.add_argument(
        "--container",
        metavar="URL",
        help="a path, file:///path, swift://CONTAINER[/prefix] or s3://BUCKET[/prefix] "
        "(a path: relative to the current directory; default: the channel's container in "
        "settings.toml, by hand [upload] local's pre-release/ or release/ if set)",
    )
    parser.add_argument(
        "--channel",
        choices=channels.CHANNELS,
        help="pre-release or release (default: decided from the CI environment)",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="show what would be uploaded; write nothing"
    )
    parser.add_argument(
        "--check-secrets",
        action="store_true",
        help="only check that the secrets this run's upload needs are set (CI, before the "
        "builds): exit 11 naming a missing one, 0 otherwise; contacts nothing",
    )
    parser.add_argument(
        "--settings", type=Path, help="settings.toml (default: found from the working directory)"
    )


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    environ = os.environ
    settings = settings_from(args.settings)
    # A relative container path is relative to the current directory, as ./wheelhouse.
    base = Path.cwd()
    root = settings.root if settings else base
    info = providers.detect(environ, git_branch=lambda: providers.local_git_branch(root))
    env_options = EnvironmentOptions.from_environ(environ)
    decision = channels.decide(
        info,
        settings,
        requested=args.channel,
        container_url=args.container,
        base_dir=base,
        local_on_ci=env_options.local_container_on_ci,
    )
    what = "run by hand" if info.by_hand else f"{info.provider} {info.event}"
    where = what + (f" on {info.branch}" if info.branch else "")
    if args.check_secrets:
        if decision.channel is None:
            console.info(
                f"multibuild upload: no upload ({where}): {decision.reason}; no secret needed"
            )
            return 0
        check_credentials(decision.container, decision.indexes, environ)
        targets = ", ".join(filter(None, [decision.container, *decision.indexes]))
        console.info(f"multibuild upload: the secrets for {targets} are set ({where})")
        return 0
    if not args.paths:
        raise ConfigurationError("give the wheelhouse (or wheels) to upload")
    if decision.channel is None or (decision.container is None and not decision.indexes):
        if args.container:
            # Asked for by name: saying "not uploading" with exit 0 would hide that it was not.
            raise ConfigurationError(
                f"--container {hide_userinfo(args.container)} given, but this run uploads "
                f"nothing ({where}): {decision.reason}"
                + ("" if decision.forbidden else "; give --channel pre-release or release")
            )
        console.info(f"multibuild upload: not uploading ({where}): {decision.reason}")
        return 0
    wheelhouse = collect(args.paths)
    if decision.channel == "release":
        _warn_moving_refs(settings, [record for _, record in wheelhouse.records])
    destination = None
    if decision.container is None:
        console.info(f"multibuild upload: {where}: {decision.reason}")
    else:
        destination = Destination(
            channel=decision.channel,
            url=decision.container,
            base_dir=base,
            why=f"{where}: {decision.reason}",
            ci={**info.as_record(), "nightly": decision.nightly},
        )
    keep_nightlies = settings.upload.keep_nightlies if settings else UploadSettings().keep_nightlies
    publish_run(
        wheelhouse,
        destination,
        indexes=decision.indexes,
        keep=keep_nightlies if decision.nightly else None,
        project=settings.project.name if settings else "",
        environ=environ,
        redact=redactor,
        tuning=env_options.upload,
        dry_run=args.dry_run,
    )
    return 0


def _warn_moving_refs(settings: Settings | None, records: list[BuildRecord]) -> None:
    refs = set()
    if settings is not None:
        refs.add(settings.project.build_commit)
    for record in records:
        if record.source.get("kind") == "git" and record.source.get("ref"):
            refs.add(record.source["ref"])
    for ref in sorted(refs):
        if not providers.is_full_hash(ref):
            console.warning(
                f"multibuild upload: WARNING: BUILD_COMMIT {ref!r} is a moving name, not a "
                "full commit hash; for a release, push the commit, build that hash, and tag "
                "only after all wheels exist"
            )
