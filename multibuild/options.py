"""Build options, resolved once from the command line and the pinned settings."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from pathlib import Path

from multibuild.ci import commit_to_build
from multibuild.errors import ConfigurationError
from multibuild.platforms import Platform
from multibuild.settings import settings_from
from multibuild.source import GitSource, SdistSource
from multibuild.util.pythons import check_version_string, is_installed
from multibuild.util.urls import redact

TEST_LEVELS = ("fast", "full")


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    project: str
    source: GitSource | SdistSource
    config: Path
    pythons: tuple[str, ...]
    wheelhouse: Path
    work_dir: Path
    cache_dir: Path
    mirrors: tuple[Path, ...]
    plat: str | None
    config_settings: tuple[str, ...]
    test_requires: tuple[str, ...]
    system_tools: tuple[str, ...]
    isolation: bool
    ccache: bool
    install_system_deps: bool
    jobs: int
    test_level: str
    verbose: bool
    nightly: bool = False
    # settings' [libraries]: exported to hooks as NAME_VERSION (multibuild's convention)
    library_versions: tuple[tuple[str, str], ...] = ()
    # settings' [hook_env]: exported to hooks as they are
    hook_env: tuple[tuple[str, str], ...] = ()

    def summary(self) -> str:
        source = (
            f"git {redact(self.source.url)} @ {self.source.ref}"
            if isinstance(self.source, GitSource)
            else f"sdist {self.source.spec}"
        )
        return "\n".join(
            [
                f"project      {self.project}",
                f"source       {source}",
                f"config       {self.config}",
                f"python       {', '.join(self.pythons)}",
                f"wheelhouse   {self.wheelhouse}",
                f"work dir     {self.work_dir}",
                f"cache dir    {self.cache_dir}",
                f"isolation    {'yes' if self.isolation else 'no (fixed build env)'}",
                f"ccache       {'yes' if self.ccache else 'no'}",
                f"test level   {self.test_level}",
            ]
        )


def resolve_build_options(args: argparse.Namespace, platform: Platform) -> BuildOptions:
    settings = settings_from(args.settings)
    root = settings.root if settings else Path.cwd()

    if args.sdist and (args.repo or args.commit):
        raise ConfigurationError("--sdist builds from an sdist: it excludes --repo/--commit")
    source: GitSource | SdistSource
    nightly = False
    if args.sdist:
        source = SdistSource(spec=args.sdist)
        project = (
            args.sdist.partition("==")[0]
            if "==" in args.sdist
            else Path(args.sdist).name.rsplit("-", 1)[0]
        )
    else:
        repo = args.repo or (settings.project.repo if settings else None)
        commit = args.commit
        if commit is None and settings is not None:
            # Cron (nightly) builds build DAILY_COMMIT, every other build BUILD_COMMIT.
            commit, nightly = commit_to_build(os.environ, settings.upload, settings.project)
        if not repo or not commit:
            raise ConfigurationError(
                "no source: give --repo and --commit (or --sdist), or run where a "
                "settings.toml pins them"
            )
        source = GitSource(url=repo, ref=commit)
        project = (
            settings.project.name
            if settings and not args.repo
            else Path(repo.rstrip("/")).name.removesuffix(".git")
        )

    config = (
        Path(args.config).resolve()
        if args.config
        else (settings.project.config if settings else None)
    )
    if config is None:
        raise ConfigurationError("no config.sh: give --config")
    if not config.is_file():
        raise ConfigurationError(f"config file {config} does not exist")

    if args.python:
        pythons = tuple(check_version_string(v) for v in args.python)
    elif settings and settings.matrix.python:
        # The matrix's Pythons that this machine has.
        available = [
            version
            for version in settings.matrix.python
            if is_installed(version, platform.python_candidates(version))
        ]
        if not available:
            raise ConfigurationError(
                f"none of the matrix's Pythons ({', '.join(settings.matrix.python)}) is "
                "installed here; install one or pass --python"
            )
        pythons = tuple(available)
    else:
        raise ConfigurationError("no Python to build for: give --python X.Y")

    work_dir = Path(args.work_dir or root / ".multibuild").resolve()
    cache_dir = Path(args.cache_dir or os.environ.get("MB_CACHE_DIR") or work_dir / "cache")
    mirrors = [
        *(args.mirror or []),
        *(p for p in os.environ.get("MB_MIRROR_DIRS", "").split(os.pathsep) if p),
    ]
    if args.test_level not in TEST_LEVELS:
        raise ConfigurationError(f"--test-level is one of {', '.join(TEST_LEVELS)}")
    build = settings.build if settings else None
    return BuildOptions(
        project=project,
        source=source,
        config=config,
        pythons=pythons,
        wheelhouse=Path(args.wheelhouse or root / "wheelhouse").resolve(),
        work_dir=work_dir,
        cache_dir=cache_dir.resolve(),
        mirrors=tuple(Path(m).resolve() for m in mirrors),
        plat=args.plat,
        config_settings=tuple(args.config_setting or (build.config_settings if build else ())),
        test_requires=tuple(args.test_requires.split())
        if args.test_requires is not None
        else (build.test_requires if build else ()),
        system_tools=build.system_tools if build else ("git",),
        isolation=args.isolation
        if args.isolation is not None
        else (build.isolation if build else True),
        ccache=args.ccache if args.ccache is not None else (build.ccache if build else True),
        install_system_deps=args.install_system_deps,
        jobs=args.jobs or os.cpu_count() or 1,
        test_level=args.test_level,
        verbose=args.verbose,
        nightly=nightly,
        library_versions=tuple(sorted(settings.libraries.items())) if settings else (),
        hook_env=tuple(sorted(settings.hook_env.items())) if settings else (),
    )
