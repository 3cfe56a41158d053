"""Run one job of the CI matrix, as every CI config does.

The job comes from --job or MB_JOB (cibuildwheel's identifier: cp311-manylinux_x86_64); the
CI environment (Travis, Appveyor, GitHub Actions, or none) decides the commit (nightly builds
build DAILY_COMMIT) and where the wheels go (pull requests: nowhere). On CI the job builds
with cibuildwheel; on this machine with the engine's own pipeline and the same hooks, which
reproduces a CI job without a container engine. --list shows the jobs and which of them this
machine can run; --dry-run prints the plan and does nothing.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
from collections.abc import Mapping

from multibuild import console, platforms
from multibuild.ci import channels, providers
from multibuild.ci import plan as job_plan
from multibuild.ci.configs.github import github_runner
from multibuild.ci.jobs import container_engine, runnable_here
from multibuild.cibuildwheel.container import choose_container
from multibuild.engine import source
from multibuild.errors import ConfigurationError, SourceError
from multibuild.images.oci import ENGINES
from multibuild.matrix import find_job, jobs, official_image
from multibuild.options import TEST_LEVELS, BuildArguments, EnvironmentOptions
from multibuild.settings import BUILDERS, Settings, settings_from
from multibuild.util.secrets import Redactor, withheld


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--job", help="the job's id (default: MB_JOB); see --list")
    parser.add_argument("--list", action="store_true", help="list the jobs and exit")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the job's plan (steps, commit, container)"
    )
    parser.add_argument("--json", action="store_true", help="--list/--dry-run as JSON")
    parser.add_argument(
        "--builder",
        choices=BUILDERS,
        help="cibuildwheel (CI's default) or host (the engine on this machine; the default "
        "outside CI)",
    )
    parser.add_argument(
        "--container-engine",
        choices=ENGINES,
        help="for Linux jobs with cibuildwheel (default: the one that answers; on CI "
        "cibuildwheel's own)",
    )
    parser.add_argument(
        "--image",
        help="the container of Linux jobs with cibuildwheel: `official` (settings' manylinux "
        "image; the default on CI), `local` (made here from Debian packages, built or found "
        "by its content key; the default elsewhere), or an image reference",
    )
    parser.add_argument(
        "--nightly",
        action="store_true",
        help="by hand: run the job as the nightly (cron) build runs it (DAILY_COMMIT)",
    )
    parser.add_argument("--no-upload", action="store_true", help="build, repair, test only")
    parser.add_argument("--settings", help="settings.toml (default: found)")
    parser.add_argument("--repo", help="git URL, local path or mirror of the project")
    parser.add_argument("--sdist", help="build from an sdist (path or NAME==VERSION)")
    parser.add_argument("--mirror", action="append", metavar="DIR", help="tarball mirror")
    parser.add_argument(
        "--wheelhouse", help="where wheels, records and logs go (default ./wheelhouse)"
    )
    parser.add_argument("--work-dir", help="build tree, prefix, venvs (default ./.multibuild)")
    parser.add_argument(
        "--test-level",
        choices=TEST_LEVELS,
        default="fast",
        help="fast (default) or full: MB_TEST_LEVEL for config.sh's run_tests",
    )
    parser.add_argument(
        "--install-system-deps", action="store_true", help="apt-get install missing tools"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show every output line")


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    environ = os.environ
    settings = settings_from(args.settings)
    if settings is None:
        raise ConfigurationError("no settings.toml here or above; --settings PATH")
    settings = settings.pinned()
    env_options = EnvironmentOptions.from_environ(environ)
    if args.list:
        return _list(settings, args)
    job_id = args.job or env_options.job
    if not job_id:
        raise ConfigurationError(
            "which job? give --job ID or set MB_JOB (the CI configs do); "
            "`python -m multibuild ci --list` lists them"
        )
    info = providers.detect(environ, git_branch=lambda: providers.local_git_branch(settings.root))
    if args.nightly and not info.on_ci:
        info = channels.as_nightly(info)  # reproduce a nightly by hand
    decision = channels.decide(info, settings, local_on_ci=env_options.local_container_on_ci)
    # settings.toml's [project] sdist unless --repo or --sdist names another source.
    args.sdist = args.sdist or (None if args.repo else settings.project.sdist or None)
    requires, source_notes = _requires_python(settings, args, decision.commit, environ)
    chosen = find_job(settings, job_id)
    container = choose_container(
        args.image,
        args.container_engine,
        on_ci=info.on_ci,
        official=official_image(settings, chosen),
    )
    plan = job_plan.make_plan(
        settings,
        chosen,
        info,
        decision,
        builder=job_plan.chosen_builder(settings, info, args.builder),
        repo=args.repo,
        sdist=args.sdist,
        has_python=platforms.python_installed,
        engine=lambda: container_engine(environ, args.container_engine),
        container=container,
        requires_python=requires,
        source_notes=source_notes,
    )
    if args.dry_run:
        console.result(json.dumps(plan.to_json(), indent=2) if args.json else plan.describe())
        return 0
    console.info(plan.describe())
    arguments = BuildArguments(
        repo=args.repo,
        sdist=args.sdist,
        mirror=tuple(args.mirror or ()),
        wheelhouse=args.wheelhouse,
        work_dir=args.work_dir,
        test_level=args.test_level,
        install_system_deps=args.install_system_deps,
        verbose=args.verbose,
    )
    return job_plan.run_job(
        plan,
        settings=settings,
        arguments=arguments,
        env_options=env_options,
        environ=environ,
        upload=not args.no_upload,
        redact=redactor,
    )


def _requires_python(
    settings: Settings, args: argparse.Namespace, commit: str | None, environ: Mapping[str, str]
) -> tuple[str | None, tuple[str, ...]]:
    """The built commit's requires-python, read from its pyproject.toml (one file fetched,
    no checkout), and a note when it could not be read (the build then says why)."""
    if args.sdist or not commit:
        return None, ()
    repo = args.repo or settings.project.repo
    try:
        text = source.read_committed_file(repo, commit, "pyproject.toml", withheld(environ))
        return source.requires_python(text), ()
    except SourceError as error:
        return None, (f"requires-python not checked: {error}",)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    builder = args.builder or "host"
    on_ci = providers.detect(os.environ, git_branch=lambda: None).on_ci
    container = choose_container(
        args.image, args.container_engine, on_ci=on_ci, official=settings.ci.manylinux_image
    )
    engine = functools.cache(lambda: container_engine(os.environ, args.container_engine))
    rows = [
        (
            j,
            runnable_here(
                j,
                builder,
                has_python=platforms.python_installed,
                engine=engine,
                local_image=container.origin == "local",
            ),
        )
        for j in jobs(settings)
    ]
    if args.json:
        console.result(
            json.dumps(
                [
                    {
                        "job": j.id,
                        "os": j.os,
                        "plat": j.plat,
                        "variant": j.variant,
                        "python": j.python,
                        "github_runner": github_runner(j),
                        "runs_here": r.ok,
                        "reason": r.reason,
                    }
                    for j, r in rows
                ],
                indent=2,
            )
        )
        return 0
    width = max(len(j.id) for j, _ in rows)
    console.result(f"{'job':<{width}}  here  (builder {builder}; `nox -s ci -- JOB` runs one)")
    for j, runnable in rows:
        console.result(f"{j.id:<{width}}  {'yes ' if runnable.ok else 'no  '}  {runnable.reason}")
    return 0
