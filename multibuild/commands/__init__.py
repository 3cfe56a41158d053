"""One module per subcommand (as twine does), each with `add_arguments(parser)` and
`run(args, redactor) -> int` (and, where argparse cannot check everything, `check_arguments`).
The table below is all `python -m multibuild --help` needs: a command's module is imported only
when it runs."""

from __future__ import annotations

import argparse

# name: (module, one line of help)
COMMANDS: dict[str, tuple[str, str]] = {
    "build": ("multibuild.commands.build", "build, repair and test wheels"),
    "ci": ("multibuild.commands.ci", "run one CI job: build, repair, test, upload (as CI does)"),
    "sdist": ("multibuild.commands.sdist", "build the sdist of BUILD_COMMIT (pre_build first)"),
    "image": (
        "multibuild.commands.image",
        "the local build image: a manylinux-style image made from Debian packages",
    ),
    "upload": ("multibuild.commands.upload", "upload wheels, records and logs to a container"),
    "prune": ("multibuild.commands.prune", "delete old nightly builds (pre-release container)"),
    "check-config": (
        "multibuild.commands.check_config",
        "check the CI configs against settings.toml (--write: regenerate them)",
    ),
    "init": (
        "multibuild.commands.init",
        "a new wheels repository for another project (settings, hooks, CI, the engine)",
    ),
    "wheel-uploader": (
        "multibuild.commands.wheel_uploader",
        "fetch a release's wheels from a container, check, sign and upload them with twine",
    ),
    "release-status": (
        "multibuild.commands.release_status",
        "the matrix against a container: exit 0 when every wheel is there",
    ),
    "set-build-commit": (
        "multibuild.commands.set_build_commit",
        "set BUILD_COMMIT (or DAILY_COMMIT) and regenerate every CI config",
    ),
    "trigger-build": (
        "multibuild.commands.trigger_build",
        "an empty commit naming what CI builds (--push: push it)",
    ),
}


def add_type_option(parser: argparse.ArgumentParser) -> None:
    """`-t/--type`: the wheels of one kind (release-status and wheel-uploader)."""
    from multibuild import matrix  # here: the table above is all `--help` imports

    parser.add_argument(
        "-t",
        "--type",
        choices=matrix.TYPES,
        default="all",
        dest="kind",
        help="the wheels of one kind: macosx, win, manylinux, musllinux or linux (both Linux "
        "kinds); default all",
    )
