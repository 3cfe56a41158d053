"""Build the project's sdist at BUILD_COMMIT (or --commit) into --outdir, as the release job
of the GitHub workflow publishes it beside the wheels: the source at the commit, config.sh's
pre_build with MB_SDIST=1 (a meson-python sdist configures the project, so the libraries must
be found; the hook leaves out what only wheels bundle), then pypa/build --sdist with the hooks'
environment. Test it with `python -m multibuild build --sdist FILE`.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from multibuild import console, platforms
from multibuild.ci import providers
from multibuild.engine.frontend import build_environment, build_sdist
from multibuild.engine.hooks import run_hook
from multibuild.engine.pipeline import Pipeline
from multibuild.engine.source import prepare_source
from multibuild.log import Logger
from multibuild.options import BuildArguments, EnvironmentOptions, resolve_build_options
from multibuild.settings import settings_from
from multibuild.util.archives import normalize_tar_gz
from multibuild.util.files import sha256_file
from multibuild.util.pythons import find_python, running
from multibuild.util.secrets import Redactor, withheld


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--outdir", default="dist", help="where the sdist goes (default dist)")
    parser.add_argument("--repo", help="git URL, local path or mirror of the project")
    parser.add_argument("--commit", help="branch, tag or hash (default: BUILD_COMMIT)")
    parser.add_argument("--config", help="the project's config.sh (default: settings')")
    parser.add_argument("--settings", help="settings.toml (default: found)")
    parser.add_argument("--work-dir", help="source, prefix, venvs (default ./.multibuild)")
    parser.add_argument("-v", "--verbose", action="store_true", help="show every output line")


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    environ = os.environ
    settings = settings_from(args.settings)
    platform = platforms.current()
    version = running()
    options = resolve_build_options(
        BuildArguments(
            repo=args.repo,
            commit=args.commit,
            config=args.config,
            settings=args.settings,
            python=(str(version),),
            work_dir=args.work_dir,
            verbose=args.verbose,
        ),
        settings=settings,
        env_options=EnvironmentOptions.from_environ(environ),
        platform=platform,
        environ=withheld(environ),  # the hooks run the project's code: no credentials
        commit=settings.project.build_commit if settings else None,
    )
    info = providers.detect(environ, git_branch=lambda: None)
    logger = Logger(verbose=options.verbose, ci=providers.fold_style(info))
    pipeline = Pipeline(options, platform, logger)
    with logger.group("source"):
        source = prepare_source(
            options.source, options.work_dir, logger, options.environ, options.cache_dir
        )
    python = find_python(version, platform.python_candidates(version))
    with logger.group("build env"):
        build_python = build_environment(
            python,
            options.work_dir / "venvs" / f"sdist-{version.abi}",
            platform,
            logger,
            options.environ,
        )
    # The commit's date: the sdist's times, so the same commit gives the same bytes.
    epoch = int(source.record.get("date_epoch") or 0)
    env = {
        **pipeline.hook_env(version, source.path, build_python),
        "MB_SDIST": "1",
        **({"SOURCE_DATE_EPOCH": str(epoch)} if epoch else {}),
    }
    with logger.group("pre_build (MB_SDIST=1)"):
        pipeline.empty_prefix()
        run_hook(options.config, "pre_build", env=env, cwd=source.path, logger=logger)
    with logger.group("sdist"):
        sdist = build_sdist(
            source.path,
            build_python,
            Path(args.outdir).resolve(),
            isolation=options.isolation,
            env=env,
            logger=logger,
        )
        if epoch:
            normalize_tar_gz(sdist, epoch)
    logger.close()
    console.result(
        f"sdist: {sdist} (sha256 {sha256_file(sdist)}), from {source.record.get('commit')}"
    )
    return 0
