"""Build the wheels of a commit (or sdist) for each requested CPython, repair them, test them
in a clean venv and put them in the wheelhouse with a build record and log. Every default
comes from settings.toml."""

from __future__ import annotations

import argparse
import os

from multibuild import platforms
from multibuild.ci import channels, providers
from multibuild.engine.pipeline import Pipeline
from multibuild.log import Logger
from multibuild.options import TEST_LEVELS, BuildArguments, Knobs, resolve_build_options
from multibuild.publish.containers.credentials import withheld
from multibuild.settings import project_settings


def add_arguments(parser: argparse.ArgumentParser) -> None:
    source = parser.add_argument_group("source")
    source.add_argument("--repo", help="git URL, local path or mirror of the project")
    source.add_argument("--commit", help="branch, tag or commit hash to build")
    source.add_argument(
        "--sdist", help="build from an sdist: a path, or NAME==VERSION from the package index"
    )
    parser.add_argument("--config", help="the project's config.sh (pre_build, run_tests)")
    parser.add_argument(
        "--settings",
        help="settings file (default: the one beside --config's config.sh, else none; without "
        "--config, settings.toml found from the working directory upwards; /dev/null: none)",
    )
    parser.add_argument(
        "--python",
        action="append",
        metavar="X.Y",
        help="CPython version to build for, X.Yt for a free-threaded one (repeatable)",
    )
    parser.add_argument("--wheelhouse", help="where tested wheels, records and logs go")
    parser.add_argument("--work-dir", help="build tree, prefix, venvs (default .multibuild)")
    parser.add_argument(
        "--cache-dir", help="library and download cache (default WORK_DIR/cache, or MB_CACHE_DIR)"
    )
    parser.add_argument(
        "--mirror",
        action="append",
        metavar="DIR",
        help="directory holding source tarballs by file name (repeatable; also MB_MIRROR_DIRS)",
    )
    parser.add_argument(
        "--plat",
        help="platform policy for the repair (e.g. "
        "manylinux_2_34_x86_64); default: the best the wheel reaches",
    )
    parser.add_argument(
        "-C",
        "--config-setting",
        action="append",
        metavar="KEY=VALUE",
        help="PEP 517 config setting for the backend (repeatable)",
    )
    parser.add_argument(
        "--test-requires",
        help="space-separated requirements for the test venv (default from settings)",
    )
    parser.add_argument(
        "--test-level",
        choices=TEST_LEVELS,
        default="fast",
        help="passed to run_tests as MB_TEST_LEVEL (default: fast)",
    )
    parser.add_argument(
        "--isolation",
        action=argparse.BooleanOptionalAction,
        help="build in an isolated temporary env (--no-isolation: a kept venv with fixed "
        "paths, so compiler caches hit); default from settings",
    )
    parser.add_argument(
        "--ccache",
        action=argparse.BooleanOptionalAction,
        help="cache C/C++ compiles with ccache when installed (default: yes)",
    )
    parser.add_argument(
        "--install-system-deps",
        action="store_true",
        help="apt-get install missing system tools (root on Debian/Ubuntu)",
    )
    parser.add_argument("-j", "--jobs", type=int, help="parallel jobs (default: all cores)")
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show every line of output (CI always does)"
    )


def run(args: argparse.Namespace) -> int:
    environ = os.environ
    arguments = BuildArguments.from_namespace(args)
    settings = project_settings(arguments.settings, arguments.config)
    info = providers.detect(environ, git_branch=lambda: None)
    # Scheduled (nightly) runs build DAILY_COMMIT, every other run BUILD_COMMIT.
    commit, nightly = channels.build_target(info, settings)
    platform = platforms.current()
    options = resolve_build_options(
        arguments,
        settings=settings,
        knobs=Knobs.from_environ(environ),
        platform=platform,
        environ=withheld(environ),  # the build runs the project's code: no credentials
        commit=commit,
        nightly=nightly,
    )
    logger = Logger(verbose=options.verbose, ci=providers.fold_style(info), redact=args.redactor)
    Pipeline(options, platform, logger).run()
    return 0
