"""Build the wheels of a commit (or sdist) for each requested CPython, repair them, test them
in a clean venv and put them in the wheelhouse with a build record and log. Every default
comes from settings.toml.

--builder host (the default) runs the engine's pipeline on this machine; --builder
cibuildwheel runs cibuildwheel with the same hooks, Linux wheels in a container (--image:
`local`, made here from Debian packages, the default outside CI; `official`; or a reference).
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping
from dataclasses import replace

from multibuild import console, platforms
from multibuild.ci import channels, providers
from multibuild.cibuildwheel.container import choose_container
from multibuild.cibuildwheel.route import CibuildwheelRun, run_cibuildwheel
from multibuild.engine.pipeline import Pipeline
from multibuild.engine.record import BuildRecord
from multibuild.engine.source import reachable, released_version
from multibuild.errors import ConfigurationError
from multibuild.images.oci import ENGINES
from multibuild.images.recipe import host_arch, image_arch, image_pythons, unavailable
from multibuild.log import Logger
from multibuild.matrix import Cell
from multibuild.options import (
    TEST_LEVELS,
    BuildArguments,
    EnvironmentOptions,
    resolve_build_options,
)
from multibuild.settings import BUILDERS, CISettings, Settings, project_settings
from multibuild.util.isolation import isolated_children
from multibuild.util.pythons import pythons_for
from multibuild.util.secrets import Redactor, withheld
from multibuild.util.urls import hide_userinfo, local_path


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
    parser.add_argument(
        "--wheelhouse", help="where tested wheels, records and logs go (default ./wheelhouse)"
    )
    parser.add_argument("--work-dir", help="build tree, prefix, venvs (default ./.multibuild)")
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
    route = parser.add_argument_group("route")
    route.add_argument(
        "--builder",
        choices=BUILDERS,
        default="host",
        help="host (the engine on this machine; default) or cibuildwheel (as CI builds: Linux "
        "wheels in a manylinux container, with the same hooks, record and log)",
    )
    route.add_argument(
        "--arch",
        help="with --builder cibuildwheel: the Linux architecture to build for, as "
        "cibuildwheel's --archs (x86_64, aarch64); default this machine's, another one runs "
        "under QEMU emulation",
    )
    route.add_argument(
        "--container-engine",
        choices=ENGINES,
        help="cibuildwheel's engine (default: the one answering)",
    )
    route.add_argument(
        "--image",
        help="cibuildwheel's Linux container: `local` (made here from Debian packages, built "
        "or found by its content key; the default outside CI), `official` (settings' "
        "manylinux image; the default on CI) or an image reference",
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true", help="show every line of output (CI always does)"
    )


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    environ = os.environ
    arguments = BuildArguments.from_namespace(args)
    settings = project_settings(arguments.settings, arguments.config)
    info = providers.detect(environ, git_branch=lambda: None)
    # Scheduled (nightly) runs build DAILY_COMMIT, every other run BUILD_COMMIT.
    commit, nightly = channels.build_target(info, settings)
    platform = platforms.current()
    arguments = released_sdist_instead(
        arguments, settings, info=info, commit=commit, nightly=nightly, environ=environ
    )
    if arguments.builder == "cibuildwheel":
        return _run_cibuildwheel(
            arguments,
            settings,
            info=info,
            commit=commit,
            nightly=nightly,
            environ=environ,
            redact=redactor,
            arch=args.arch,
        )
    if args.arch is not None and image_arch(args.arch) != host_arch():
        raise ConfigurationError(
            f"--arch {args.arch}: the host route builds for this machine ({host_arch()}); "
            "`--builder cibuildwheel --arch` builds another architecture in its container"
        )
    options = resolve_build_options(
        arguments,
        settings=settings,
        env_options=EnvironmentOptions.from_environ(environ),
        platform=platform,
        environ=withheld(environ),  # the build runs the project's code: no credentials
        commit=commit,
        nightly=nightly,
    )
    logger = Logger(verbose=options.verbose, ci=providers.fold_style(info), redact=redactor)
    with isolated_children(environ):  # no command of the build reaches a credential
        Pipeline(options, platform, logger).run()
    return 0


def released_sdist_instead(
    arguments: BuildArguments,
    settings: Settings | None,
    *,
    info: providers.CIInfo,
    commit: str | None,
    nightly: bool,
    environ: Mapping[str, str],
) -> BuildArguments:
    """By hand, where the pinned repository cannot be reached and BUILD_COMMIT names a
    release: that release's sdist from the package index instead, said loudly (the record
    names the source kind and sha256). Never on CI, never for --repo/--commit/--sdist, never
    for a nightly or a local repository."""
    if (
        settings is None
        or info.on_ci
        or arguments.repo
        or arguments.commit
        or arguments.sdist
        or nightly
        or not commit
        or not settings.project.name
        or local_path(settings.project.repo) is not None
    ):
        return arguments
    version = released_version(commit)
    if version is None or reachable(settings.project.repo, withheld(environ)):
        return arguments
    spec = f"{settings.project.name}=={version}"
    console.warning(
        f"\n{'!' * 78}\nmultibuild: {hide_userinfo(settings.project.repo)} cannot be reached "
        f"from here: building {spec}, the released sdist from the package index, instead of "
        f"git {commit} (the build record names the sdist and its sha256; `--repo PATH` "
        f"builds from a local clone or mirror)\n{'!' * 78}\n"
    )
    return replace(arguments, sdist=spec)


def _run_cibuildwheel(
    arguments: BuildArguments,
    settings: Settings | None,
    *,
    info: providers.CIInfo,
    commit: str | None,
    nightly: bool,
    environ: Mapping[str, str],
    redact: Redactor,
    arch: str | None = None,
) -> int:
    """The container route for any project: one cibuildwheel run per CPython, recorded."""
    platform = platforms.current()
    if arch is not None and platform.name != "linux":
        raise ConfigurationError("--arch picks a Linux container's architecture")
    plat = image_arch(arch) if arch is not None else platform.machine()
    on_ci = info.on_ci
    official = (settings.ci if settings else CISettings()).manylinux_image
    container = choose_container(
        arguments.image, arguments.container_engine, on_ci=on_ci, official=official
    )
    if arguments.plat:
        raise ConfigurationError(
            "--plat is the host route's repair policy; in a container the image's policy "
            "decides (the local image: manylinux_2_31)"
        )
    local = platform.name == "linux" and container.origin == "local"
    matrix = settings.matrix.python if settings else ()
    # The CPythons the container has (not this machine's): the local image holds those
    # Debian's sources give, an official image every one.
    pythons, notes = pythons_for(
        arguments.python,
        matrix,
        unavailable if local else lambda version: None,
    )
    arguments = replace(arguments, python=tuple(str(v) for v in pythons))
    options = resolve_build_options(
        arguments,
        settings=settings,
        env_options=EnvironmentOptions.from_environ(environ),
        platform=platform,
        environ=withheld(environ),
        commit=commit,
        nightly=nightly,
    )
    options = replace(options, notes=(*options.notes, *notes))
    jobs = tuple(Cell(platform.name, plat, str(v)) for v in options.pythons)
    run = CibuildwheelRun(
        jobs=jobs,
        container=container,
        image_pythons=image_pythons((), matrix)[0] if local else (),
        passed=EnvironmentOptions.from_environ(environ).container_env,
        plan=options.summary(),
    )
    records: list[BuildRecord] = []
    logger = Logger(verbose=options.verbose, ci=providers.fold_style(info), redact=redact)
    with isolated_children(environ):
        run_cibuildwheel(run, options, platform, records, environ=withheld(environ), logger=logger)
    return 0
