"""Everything a run is told, resolved once into frozen objects: the build command's arguments
(typed), settings.toml, and the environment. Every MB_* variable is read here, by
`EnvironmentOptions.from_environ` (what a user sets) or `HookContext.from_environ` (what the
engine gives the hook helpers it starts); nothing below reads os.environ for them.
"""

from __future__ import annotations

import argparse
import os
import shutil
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from multibuild.errors import ConfigurationError
from multibuild.platforms import Platform
from multibuild.settings import Settings
from multibuild.util.pythons import PythonVersion, is_installed, pythons_for
from multibuild.util.system import can_install_with_apt
from multibuild.util.urls import hide_userinfo

TEST_LEVELS = ("fast", "full")
# The work dir, relative to the current directory, unless --work-dir says otherwise.
WORK_DIR = ".multibuild"


def _paths(value: str) -> tuple[Path, ...]:
    return tuple(Path(p) for p in value.split(os.pathsep) if p)


def _number(environ: Mapping[str, str], name: str, kind: type[int] | type[float]) -> float | None:
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = kind(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number, not {text!r}") from None
    if not (0 < value < 1e9):  # also refuses nan and inf
        raise ConfigurationError(f"{name} must be a positive number, not {text!r}")
    return value


def _seconds(environ: Mapping[str, str], name: str) -> float | None:
    """A duration in seconds that may be 0."""
    text = environ.get(name, "").strip()
    if not text:
        return None
    try:
        value = float(text)
    except ValueError:
        raise ConfigurationError(f"{name} must be a number of seconds, not {text!r}") from None
    if not (0 <= value < 1e9):  # also refuses nan and inf
        raise ConfigurationError(f"{name} must be 0 or more seconds, not {text!r}")
    return value


def _flag(environ: Mapping[str, str], name: str) -> bool:
    return environ.get(name, "").strip().lower() not in ("", "0", "false", "no")


def _names(environ: Mapping[str, str], name: str) -> tuple[str, ...]:
    names = tuple(environ.get(name, "").replace(",", " ").split())
    for item in names:
        if not item.replace("_", "").isalnum() or item[0].isdigit():
            raise ConfigurationError(f"{name}: {item!r} is not a variable name")
    return names


def debug_traceback(environ: Mapping[str, str]) -> bool:
    """MB_DEBUG_TRACEBACK: show the Python traceback of a failure."""
    return _flag(environ, "MB_DEBUG_TRACEBACK")


@dataclass(frozen=True, kw_only=True)
class UploadTuning:
    """How uploads and their retries behave (None: the backend's default)."""

    attempts: int | None = None
    backoff_s: float | None = None
    deadline_s: float | None = None
    timeout_s: float | None = None
    threads: int | None = None
    segment_size: int | None = None
    orphan_grace_s: float | None = None  # leftovers of killed uploads older than this go


@dataclass(frozen=True, kw_only=True)
class EnvironmentOptions:
    """The MB_* variables a user may set (README.rst lists them)."""

    job: str | None = None  # MB_JOB: the CI job `ci` runs
    cache_dir: Path | None = None  # MB_CACHE_DIR
    mirror_dirs: tuple[Path, ...] = ()  # MB_MIRROR_DIRS
    debug_traceback: bool = False  # MB_DEBUG_TRACEBACK
    gpg: str = "gpg"  # MB_GPG
    test_level: str | None = None  # MB_TEST_LEVEL (cibuildwheel's test-command)
    # MB_LOCAL_CONTAINER_ON_CI: a local container directory is accepted on a CI provider (a
    # self-hosted runner whose disk outlives the job); refused otherwise (docs/upload.md).
    local_container_on_ci: bool = False
    # MB_CONTAINER_ENV: variables the container route passes into the build container for
    # the hooks (cibuildwheel's environment-pass), e.g. "SCIPY_TEST_MODULES"
    container_env: tuple[str, ...] = ()
    # MB_PREFIX_NAMESPACE=0: the prefix through a numbered link even where a mount namespace
    # would give every build one path (multibuild.engine.prefix)
    prefix_namespace: bool = True
    upload: UploadTuning = field(default_factory=UploadTuning)

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> EnvironmentOptions:
        def whole(name: str) -> int | None:
            value = _number(environ, name, float)
            if value is not None and value != int(value):
                raise ConfigurationError(f"{name} must be a whole number, not {value}")
            return None if value is None else int(value)

        level = environ.get("MB_TEST_LEVEL") or None
        if level is not None and level not in TEST_LEVELS:
            raise ConfigurationError(f"MB_TEST_LEVEL is one of {', '.join(TEST_LEVELS)}")
        return cls(
            job=environ.get("MB_JOB") or None,
            cache_dir=Path(environ["MB_CACHE_DIR"]) if environ.get("MB_CACHE_DIR") else None,
            mirror_dirs=_paths(environ.get("MB_MIRROR_DIRS", "")),
            debug_traceback=debug_traceback(environ),
            gpg=environ.get("MB_GPG") or "gpg",
            test_level=level,
            local_container_on_ci=_flag(environ, "MB_LOCAL_CONTAINER_ON_CI"),
            container_env=_names(environ, "MB_CONTAINER_ENV"),
            prefix_namespace=environ.get("MB_PREFIX_NAMESPACE", "1").strip() != "0",
            upload=UploadTuning(
                attempts=whole("MB_UPLOAD_ATTEMPTS"),
                backoff_s=_number(environ, "MB_UPLOAD_BACKOFF", float),
                deadline_s=_number(environ, "MB_UPLOAD_DEADLINE", float),
                timeout_s=_number(environ, "MB_UPLOAD_TIMEOUT", float),
                threads=whole("MB_UPLOAD_THREADS"),
                segment_size=whole("MB_SEGMENT_SIZE"),
                orphan_grace_s=_seconds(environ, "MB_ORPHAN_GRACE"),
            ),
        )


@dataclass(frozen=True, kw_only=True)
class HookContext:
    """What the engine tells the helpers a hook runs (build_library, the Debian source
    helper, cibuildwheel's steps) through the hook's environment (multibuild.engine.hooks)."""

    prefix: Path | None
    cache_dir: Path | None
    mirrors: tuple[Path, ...]
    jobs: int
    library_results: Path | None  # where build_library appends what it did (the record)
    config: str | None  # MB_CONFIG: config.sh relative to the repository (cibuildwheel)
    plat: str | None
    test_level: str
    # MB_BUILD_REQUIRES=1: cibuildwheel builds without isolation (its random build-env path
    # on every compile line would defeat ccache); pre_build installs [build-system] requires
    # into the build Python, a fixed path
    build_requires: bool = False

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> HookContext:
        def path(name: str) -> Path | None:
            return Path(environ[name]) if environ.get(name) else None

        jobs = _number(environ, "MB_JOBS", int)
        return cls(
            prefix=path("BUILD_PREFIX") or path("MB_PREFIX"),
            cache_dir=path("MB_CACHE_DIR"),
            mirrors=_paths(environ.get("MB_MIRROR_DIRS", "")),
            jobs=int(jobs) if jobs else os.cpu_count() or 1,
            library_results=path("MB_LIBRARY_RESULTS"),
            config=environ.get("MB_CONFIG") or None,
            plat=environ.get("PLAT") or None,
            test_level=environ.get("MB_TEST_LEVEL") or "fast",
            build_requires=_flag(environ, "MB_BUILD_REQUIRES"),
        )


@dataclass(frozen=True, kw_only=True)
class GitSource:
    url: str
    ref: str


@dataclass(frozen=True, kw_only=True)
class SdistSource:
    spec: str  # a path to an sdist, or name==version


@dataclass(frozen=True, kw_only=True)
class BuildArguments:
    """The build command's flags (None: not given, the settings decide)."""

    repo: str | None = None
    commit: str | None = None
    sdist: str | None = None
    config: str | None = None
    settings: str | None = None
    python: tuple[str, ...] = ()
    wheelhouse: str | None = None
    work_dir: str | None = None
    cache_dir: str | None = None
    mirror: tuple[str, ...] = ()
    plat: str | None = None
    config_setting: tuple[str, ...] = ()
    test_requires: str | None = None
    test_level: str = "fast"
    isolation: bool | None = None
    ccache: bool | None = None
    install_system_deps: bool = False
    jobs: int | None = None
    verbose: bool = False
    # The route: "host" (the engine's pipeline here) or "cibuildwheel" (Linux: in a container
    # of `image`: official, local or a reference, run by `container_engine`).
    builder: str = "host"
    container_engine: str | None = None
    image: str | None = None

    @classmethod
    def from_namespace(cls, args: argparse.Namespace) -> BuildArguments:
        return cls(
            repo=args.repo,
            commit=args.commit,
            sdist=args.sdist,
            config=args.config,
            settings=args.settings,
            python=tuple(args.python or ()),
            wheelhouse=args.wheelhouse,
            work_dir=args.work_dir,
            cache_dir=args.cache_dir,
            mirror=tuple(args.mirror or ()),
            plat=args.plat,
            config_setting=tuple(args.config_setting or ()),
            test_requires=args.test_requires,
            test_level=args.test_level,
            isolation=args.isolation,
            ccache=args.ccache,
            install_system_deps=args.install_system_deps,
            jobs=args.jobs,
            verbose=args.verbose,
            builder=args.builder,
            container_engine=args.container_engine,
            image=args.image,
        )


@dataclass(frozen=True, kw_only=True)
class BuildOptions:
    project: str
    source: GitSource | SdistSource
    config: Path
    pythons: tuple[PythonVersion, ...]
    wheelhouse: Path
    work_dir: Path
    cache_dir: Path
    mirrors: tuple[Path, ...]
    plat: str | None
    config_settings: tuple[str, ...]
    test_requires: tuple[str, ...]
    test_sources: tuple[str, ...] = ()
    system_tools: tuple[str, ...]
    isolation: bool
    ccache: bool
    install_system_deps: bool
    jobs: int
    test_level: str
    verbose: bool
    # The environment the build's processes start from (upload credentials already out).
    environ: Mapping[str, str] = field(default_factory=dict, repr=False)
    nightly: bool = False
    prefix_namespace: bool = True  # EnvironmentOptions.prefix_namespace
    # settings' [libraries]: exported to hooks as NAME_VERSION (multibuild's convention)
    library_versions: tuple[tuple[str, str], ...] = ()
    # settings' [hook_env]: exported to hooks as they are
    hook_env: tuple[tuple[str, str], ...] = ()
    # What the resolution left out, and why (shown before the build and kept in its record).
    notes: tuple[str, ...] = ()

    def ccache_state(self) -> str:
        """What the build header says of ccache: on only where it is (or will be) there."""
        if not self.ccache:
            return "no"
        if shutil.which("ccache") is not None:
            return "yes"
        if self.install_system_deps and can_install_with_apt():
            return "yes (installed with the system tools)"
        return "no (not installed)"

    def summary(self) -> str:
        source = (
            f"git {hide_userinfo(self.source.url)} @ {self.source.ref}"
            if isinstance(self.source, GitSource)
            else f"sdist {self.source.spec}"
        )
        return "\n".join(
            [
                f"project      {self.project}",
                f"source       {source}",
                f"config       {self.config}",
                f"python       {', '.join(map(str, self.pythons))}",
                f"wheelhouse   {self.wheelhouse}",
                f"work dir     {self.work_dir}",
                f"cache dir    {self.cache_dir}",
                f"isolation    {'yes' if self.isolation else 'no (fixed build env)'}",
                f"ccache       {self.ccache_state()}",
                f"test level   {self.test_level}",
                *(f"note         {note}" for note in self.notes),
            ]
        )


def _not_installed(platform: Platform) -> Callable[[PythonVersion], str | None]:
    """Why the host route cannot build a CPython here: it is not installed."""

    def why_not(version: PythonVersion) -> str | None:
        installed = is_installed(version, platform.python_candidates(version))
        return None if installed else "not installed here"

    return why_not


def _sdist_project(spec: str) -> str:
    """The project an --sdist names: NAME==VERSION's name, or an sdist file's (or URL's)."""
    if "==" in spec:
        return spec.partition("==")[0]
    # Here, not at the top: scripts/cibw-step imports this module in cibuildwheel's test venv,
    # which has no packaging.
    from packaging.utils import InvalidSdistFilename, parse_sdist_filename

    filename = Path(spec).name
    try:
        return str(parse_sdist_filename(filename)[0])
    except InvalidSdistFilename:
        return filename.rsplit("-", 1)[0]  # not NAME-VERSION.tar.gz: the engine says so later


def resolve_build_options(
    arguments: BuildArguments,
    *,
    settings: Settings | None,
    env_options: EnvironmentOptions,
    platform: Platform,
    environ: Mapping[str, str],
    commit: str | None = None,
    nightly: bool = False,
    cwd: Path | None = None,
) -> BuildOptions:
    """The options of one build. `commit` is what the caller decided to build when no
    --commit is given (multibuild.ci.channels: DAILY_COMMIT on nightlies, else BUILD_COMMIT)."""
    if arguments.sdist and (arguments.repo or arguments.commit):
        raise ConfigurationError("--sdist builds from an sdist: it excludes --repo/--commit")
    source: GitSource | SdistSource
    # settings.toml's [project] sdist where no option names another source.
    pinned_sdist = settings.project.sdist if settings else ""
    sdist = arguments.sdist or (None if arguments.repo or arguments.commit else pinned_sdist)
    if sdist:
        source = SdistSource(spec=sdist)
        spec = sdist
        project = _sdist_project(spec)
        nightly = False
    else:
        repo = arguments.repo or (settings.project.repo if settings else None)
        ref = arguments.commit or commit
        if not repo or not ref:
            raise ConfigurationError(
                "no source: give --repo and --commit (or --sdist), or run where a "
                "settings.toml pins them"
            )
        if arguments.commit:
            nightly = False
        source = GitSource(url=repo, ref=ref)
        # settings.toml's name even for another --repo (a mirror or clone of the project);
        # the directory's name only where no settings name it.
        project = (
            settings.project.name
            if settings and settings.project.name
            else Path(repo.rstrip("/")).name.removesuffix(".git")
        )

    config = (
        Path(arguments.config).resolve()
        if arguments.config
        else (settings.project.config if settings else None)
    )
    if config is None:
        raise ConfigurationError("no config.sh: give --config")
    if not config.is_file():
        raise ConfigurationError(f"config file {config} does not exist")
    pythons, notes = pythons_for(
        arguments.python, settings.matrix.python if settings else (), _not_installed(platform)
    )

    # As cibuildwheel's ./wheelhouse: relative to the current directory, wherever settings.toml
    # or --config are (then `nox -s build -- --config other/config.sh` uploads ./wheelhouse).
    here = cwd or Path.cwd()
    work_dir = Path(arguments.work_dir or here / WORK_DIR).resolve()
    cache_dir = Path(arguments.cache_dir or env_options.cache_dir or work_dir / "cache")
    wheelhouse = Path(arguments.wheelhouse or here / "wheelhouse").resolve()
    for flag, directory in (
        ("--wheelhouse", wheelhouse),
        ("--work-dir", work_dir),
        ("--cache-dir", cache_dir),
    ):
        if directory.exists() and not directory.is_dir():
            raise ConfigurationError(f"{flag} {directory} is a file, not a directory")
    if arguments.test_level not in TEST_LEVELS:
        raise ConfigurationError(f"--test-level is one of {', '.join(TEST_LEVELS)}")
    if arguments.jobs is not None and arguments.jobs < 1:
        raise ConfigurationError("--jobs must be at least 1")
    build = settings.build if settings else None
    return BuildOptions(
        project=project,
        source=source,
        config=config,
        pythons=pythons,
        wheelhouse=wheelhouse,
        work_dir=work_dir,
        cache_dir=cache_dir.resolve(),
        mirrors=tuple(
            Path(m).resolve() for m in (*map(Path, arguments.mirror), *env_options.mirror_dirs)
        ),
        plat=arguments.plat,
        config_settings=arguments.config_setting or (build.config_settings if build else ()),
        test_requires=tuple(arguments.test_requires.split())
        if arguments.test_requires is not None
        else (build.test_requires if build else ()),
        test_sources=build.test_sources if build else (),
        system_tools=build.system_tools if build else (),
        isolation=arguments.isolation
        if arguments.isolation is not None
        else (build.isolation if build else True),
        ccache=arguments.ccache
        if arguments.ccache is not None
        else (build.ccache if build else True),
        install_system_deps=arguments.install_system_deps,
        jobs=arguments.jobs or os.cpu_count() or 1,
        test_level=arguments.test_level,
        verbose=arguments.verbose,
        environ=dict(environ),
        nightly=nightly,
        prefix_namespace=env_options.prefix_namespace,
        library_versions=tuple(sorted(settings.libraries.items())) if settings else (),
        hook_env=tuple(sorted(settings.hook_env.items())) if settings else (),
        notes=notes,
    )
