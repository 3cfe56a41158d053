"""The cibuildwheel route, for `python -m multibuild ci` (a CI job) and `python -m multibuild
build --builder cibuildwheel` (any project): the source step, cibuildwheel for each build
identifier (Linux wheels in a container: multibuild.cibuildwheel.container), recorded as the
engine's pipeline records a build, with the same hooks (before-build -> config.sh's pre_build,
test-command -> run_tests, through scripts/cibw-step) and a record and log in the wheelhouse
whatever happens.

cibuildwheel copies its working directory into the container, so it runs in a staged copy of
the project: for a CI job, the repository's files as a CI checkout holds them (git's tracked
and unignored files) with its cibuildwheel.toml; for any other project, the engine, the
directory of its config.sh and a cibuildwheel.toml rendered from the build's options. The
source goes to .multibuild/src in it, where a CI job's checkout has it.
"""

from __future__ import annotations

import json
import shlex
import shutil
import sys
import time
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from importlib import metadata
from pathlib import Path, PurePosixPath
from typing import Any

from packaging.utils import canonicalize_name, parse_wheel_filename

from multibuild import __version__
from multibuild.cibuildwheel import config as cibuildwheel
from multibuild.cibuildwheel.container import (
    ContainerChoice,
    PreparedContainer,
    container_tools,
    prepare_container,
)
from multibuild.cibuildwheel.step import RESULT_MARKER
from multibuild.engine.ccache import ccache_variables
from multibuild.engine.frontend import build_backend
from multibuild.engine.hooks import ENGINE_ROOT
from multibuild.engine.kept_build_dir import KeptBuildDir
from multibuild.engine.pipeline import recipe_of, recorded_build
from multibuild.engine.record import BuildRecord, PythonBuild, WheelInfo
from multibuild.engine.repair import best_policy
from multibuild.engine.source import prepare_source, requested
from multibuild.errors import (
    BuildError,
    ConfigurationError,
    ContainerError,
    FatalError,
    HookError,
    LibraryError,
    RepairError,
    TestFailure,
)
from multibuild.images.oci import engine_failure
from multibuild.log import Logger
from multibuild.matrix import Job
from multibuild.options import BuildOptions
from multibuild.platforms import Platform, by_name
from multibuild.settings import (
    BuildSettings,
    CISettings,
    MatrixSettings,
    ProjectSettings,
    Settings,
)
from multibuild.util.cmd import excerpt, stream
from multibuild.util.files import copy_into_by_rename, remove_tree
from multibuild.util.git import run_git
from multibuild.util.pythons import PythonVersion
from multibuild.util.system import check_engine_modules, ensure_tools
from multibuild.util.wheelzip import WheelZipError, normalize_wheel

SOURCE_IN_STAGE = Path(".multibuild") / "src"
# A hook's failure inside cibuildwheel keeps its exit code: the same error as on the host route.
HOOK_ERRORS: dict[int, type[FatalError]] = {
    HookError.return_code: HookError,
    LibraryError.return_code: LibraryError,
    TestFailure.return_code: TestFailure,
}


@dataclass(frozen=True, kw_only=True)
class CibuildwheelRun:
    """What to build with cibuildwheel, and from which project."""

    jobs: tuple[Job, ...]
    container: ContainerChoice
    # A CI job: the repository CI checks out (its files and cibuildwheel.toml are staged).
    # None: any project (the engine, config.sh's directory, a rendered cibuildwheel.toml).
    repository: Path | None = None
    # The CPythons of the local image besides the jobs' (the matrix's: one image for all).
    image_pythons: tuple[PythonVersion, ...] = ()
    # Variables the container passes to the hooks besides MB_TEST_LEVEL (MB_CONTAINER_ENV).
    passed: tuple[str, ...] = ()
    plan: str = ""  # what the log shows first
    # CIBW_* variables by job id, for jobs whose variant the config file cannot select
    # (cibuildwheel.job_environ).
    job_environ: Mapping[str, Mapping[str, str]] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)  # the record's


class _Results:
    """The build log's sink that also keeps cibw-step's result lines (cibuildwheel.step)."""

    def __init__(self, logger: Logger) -> None:
        self.logger = logger
        self.tail: deque[str] = deque(maxlen=40)
        self.results: list[dict[str, Any]] = []
        self.failure_lines: list[str] = []

    def output(self, line: str) -> None:
        text = line.rstrip("\r\n")
        self.tail.append(text)
        marker = text.find(RESULT_MARKER)
        if marker >= 0:
            try:
                found = json.loads(text[marker + len(RESULT_MARKER) :])
            except ValueError:
                found = None
            if isinstance(found, dict):
                self.results.append(found)
        if engine_failure(text):
            self.failure_lines.append(text.strip())
        self.logger.output(line)

    def progress(self, label: str, elapsed: float) -> None:
        self.logger.progress(label, elapsed)

    def result(self, hook: str) -> dict[str, Any]:
        found = [r for r in self.results if r.get("hook") == hook]
        return found[-1] if found else {}


def repository_files(root: Path, *, leave_out: Sequence[Path]) -> list[Path]:
    """The files of the repository a CI checkout holds: git's tracked and unignored files,
    relative to `root` (without git: every file outside dot-directories)."""
    done = run_git(
        ["ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        root,
        errors="surrogateescape",
    )
    if done.ok:
        names = [Path(n) for n in done.stdout.split("\0") if n]
    else:
        names = [
            p.relative_to(root)
            for p in root.rglob("*")
            if not p.is_dir()
            and not any(part.startswith(".") for part in p.relative_to(root).parts[:-1])
        ]
    outside = [p.resolve() for p in leave_out]
    kept = []
    for name in names:
        path = (root / name).absolute()
        if name.parts[0].startswith(".") and len(name.parts) > 1:
            continue  # .git, .multibuild, .nox, .github: nothing a build reads
        if any(path.is_relative_to(o) for o in outside) or not (path.exists() or path.is_symlink()):
            continue
        kept.append(name)
    return sorted(set(kept))


def _copy(source: Path, target: Path) -> None:
    """A file, or a symlink's target (a link may point outside what is copied)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.is_dir():
        shutil.copytree(
            source,
            target,
            symlinks=False,
            dirs_exist_ok=True,
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
        )
    elif source.exists():
        shutil.copy2(source, target)


def render_settings(
    options: BuildOptions, jobs: Sequence[Job], stage: Path, official: str
) -> Settings:
    """Settings for any project's cibuildwheel.toml, from the build's options: its jobs, its
    config.sh (staged as config/), config settings, test requirements and hook variables."""
    os_name = jobs[0].os
    return Settings(
        path=stage / "settings.toml",
        project=ProjectSettings(
            name=options.project,
            repo=str(stage / SOURCE_IN_STAGE),
            build_commit="staged",
            config=stage / "config" / options.config.name,
        ),
        build=BuildSettings(
            config_settings=options.config_settings,
            test_requires=options.test_requires,
            # The test step copies them into its test directory, as the host route does.
            test_sources=options.test_sources,
        ),
        matrix=MatrixSettings(
            python=tuple(dict.fromkeys(j.python for j in jobs)),
            **{os_name: tuple(dict.fromkeys(j.plat for j in jobs))},
        ),
        ci=CISettings(manylinux_image=official),
        libraries=dict(options.library_versions),
        hook_env=dict(options.hook_env),
    )


def stage_dir(work_dir: Path) -> Path:
    """Where cibuildwheel runs: the staged copy of the project, in the work dir."""
    return work_dir / "cibuildwheel" / "project"


def stage_project(run: CibuildwheelRun, options: BuildOptions, source: Path, stage: Path) -> Path:
    """The directory cibuildwheel runs in (and copies into its container); returns the
    cibuildwheel.toml to use."""
    remove_tree(stage)
    stage.mkdir(parents=True)
    leave_out = [options.work_dir, options.wheelhouse]
    if run.repository is not None:
        for name in repository_files(run.repository, leave_out=leave_out):
            _copy(run.repository / name, stage / name)
        config_file = stage / cibuildwheel.CONFIG_FILE
        if not config_file.is_file():
            raise ConfigurationError(
                f"no {cibuildwheel.CONFIG_FILE} in {run.repository}: "
                "`python -m multibuild check-config --write` generates it"
            )
    else:
        for part in ("multibuild", "scripts/cibw-step"):
            if not (ENGINE_ROOT / part).exists():
                raise ConfigurationError(
                    f"the cibuildwheel route needs the engine's source tree ({ENGINE_ROOT / part} "
                    "is missing): install it from its repository (pip install -e)"
                )
            _copy(ENGINE_ROOT / part, stage / part)
        config_dir = options.config.parent
        for name in repository_files(config_dir, leave_out=leave_out):
            _copy(config_dir / name, stage / "config" / name)
        settings = render_settings(options, run.jobs, stage, run.container.official)
        config_file = stage / cibuildwheel.CONFIG_FILE
        config_file.write_text(cibuildwheel.render(settings))
    _copy(source, stage / SOURCE_IN_STAGE)
    return config_file


def repair_summary(wheel: Path) -> dict[str, Any]:
    """What the repair inside cibuildwheel did, read from the repaired wheel."""
    import zipfile

    with zipfile.ZipFile(wheel) as archive:
        grafted = sorted(n for n in archive.namelist() if ".libs/" in n and not n.endswith("/"))
    return {
        "tool": "auditwheel" if "linux" in wheel.name else "cibuildwheel's repair",
        "policy": best_policy(wheel),
        "grafted": grafted,
        "requested_plat": None,
    }


def run_cibuildwheel(
    run: CibuildwheelRun,
    options: BuildOptions,
    platform: Platform,
    records: list[BuildRecord],
    *,
    environ: Mapping[str, str],
    logger: Logger,
) -> None:
    """Build run.jobs with cibuildwheel; the record (appended to `records` first, so a failed
    build's record is there too) and log go to the wheelhouse whatever happens."""
    first = run.jobs[0]
    record = BuildRecord(
        project=options.project,
        platform=first.os,
        plat=first.plat,
        variant=first.variant,
        job=first.id if len(run.jobs) == 1 else "",
    )
    record.settings = {"builder": "cibuildwheel", **run.settings}
    record.recipe = recipe_of(options.config.parent)
    records.append(record)
    tools = {
        "multibuild": __version__,
        "python": sys.version.split()[0],
        "cibuildwheel": metadata.version("cibuildwheel"),
    }
    log = options.work_dir / "logs" / f"{record.stamp}-cibuildwheel.log"
    work = options.work_dir / "cibuildwheel"
    with recorded_build(
        record,
        logger=logger,
        log=log,
        wheelhouse=options.wheelhouse,
        platform=platform,
        tools=tools,
    ):
        if run.plan:
            logger.info(run.plan)
        check_engine_modules(["cibuildwheel"])
        container: PreparedContainer | None = None
        if any(job.os == "linux" for job in run.jobs):
            with logger.group("container"):
                if options.install_system_deps:  # else a missing engine is exit code 13
                    ensure_tools(
                        container_tools(run.container, environ),
                        logger.info,
                        install=True,
                        environ=options.environ,
                    )
                container = prepare_container(
                    run.container,
                    pythons=tuple(sorted({*run.image_pythons, *(j.version for j in run.jobs)})),
                    mirrors=options.mirrors,
                    # The source's date reaches the build inside (reproducible wheels).
                    passed=(*run.passed, "SOURCE_DATE_EPOCH"),
                    cache_dir=options.cache_dir / "images",
                    logger=logger,
                    environ=environ,
                    arch=first.plat,
                )
                logger.info(container.describe())
            record.settings["container"] = container.as_record()
            tools.update(container.tools())
        cache_env: dict[str, str] = {}
        kept_root: tuple[Path, PurePosixPath] | None = None
        if options.ccache:
            container, cache_env, kept_root = build_cache(container, first, options, logger)
        record.source = requested(options.source)
        with logger.group("source"):
            source = prepare_source(
                options.source, options.work_dir, logger, options.environ, options.cache_dir
            )
        record.source = source.record
        source_date = int(source.record.get("date_epoch") or 0)
        record.inputs = {"source_date_epoch": source_date}
        with logger.group("stage"):
            stage = stage_dir(options.work_dir)
            config_file = stage_project(run, options, source.path, stage)
            logger.info(f"cibuildwheel runs in {stage} (config {config_file.name})")
        env = {
            **cibuildwheel.clean_environ(options.environ),
            "MB_TEST_LEVEL": options.test_level,
            "SOURCE_DATE_EPOCH": str(source_date),
            **cache_env,
            **(container.cibuildwheel_environ(first.plat, musl=first.musl) if container else {}),
        }
        for job in run.jobs:
            kept = None
            job_env = {**env, **run.job_environ.get(job.id, {})}
            if kept_root is not None and build_backend(stage / SOURCE_IN_STAGE) == "mesonpy":
                kept, job_env = kept_build_dir(job, kept_root, options, job_env, container)
            build_one(
                job,
                stage=stage,
                config_file=config_file,
                output=work / "wheels" / job.id,
                env=job_env,
                options=options,
                record=record,
                logger=logger,
                source_date=source_date,
                kept=kept,
            )


def build_cache(
    container: PreparedContainer | None, first: Job, options: BuildOptions, logger: Logger
) -> tuple[PreparedContainer | None, dict[str, str], tuple[Path, PurePosixPath] | None]:
    """ccache (and the library cache) for cibuildwheel's builds, kept from one build to the next:
    inside a Linux container, a host directory of the cache dir (one per platform and libc:
    what CI restores and saves) mounted at the fixed cache path of the generated
    cibuildwheel.toml; elsewhere the host's ccache directory. The variables go to the build
    (environment-pass into a container); cibw-step zeroes and reads the statistics. In a
    container, meson's build dirs are kept there too (the root, on the host and inside)."""
    maxsize = options.environ.get("CCACHE_MAXSIZE", "5G")
    if container is not None:
        libc = "musllinux" if first.musl else "manylinux"
        host = options.cache_dir / "container" / f"{libc}_{first.plat}"
        (host / "ccache").mkdir(parents=True, exist_ok=True)
        inside = by_name("linux").ci_prefix.parent / "cache"
        # cibuildwheel copies the project to /project; the build dirs are under it.
        variables = ccache_variables(inside / "ccache", PurePosixPath("/project"), maxsize)
        # Without isolation: an isolated build's numpy headers come from a new random
        # /tmp/build-env-* each time, on the compile lines of every module that includes them.
        variables["MB_BUILD_REQUIRES"] = "1"
        # Each job's kept build dir (kept_build_dir): pre_build dates the requirements for it.
        variables["MB_KEPT_BUILD_DIR"] = ""
        logger.info(f"build cache: {host} at {inside} in the container")
        container = replace(
            container,
            create_args=(*container.create_args, "--volume", f"{host}:{inside}"),
            passed=(*container.passed, *variables),
        )
        # CIBW_BUILD_FRONTEND: cibuildwheel reads no _LINUX form of this one.
        frontend = {"CIBW_BUILD_FRONTEND": "build; args: --no-isolation"}
        kept_root = (host / "build-dir", inside / "build-dir")
        return container, {**variables, **frontend}, kept_root
    if shutil.which("ccache") is None:
        return None, {}, None
    (options.cache_dir / "ccache").mkdir(parents=True, exist_ok=True)
    return None, ccache_variables(options.cache_dir / "ccache", options.work_dir, maxsize), None


def kept_build_dir(
    job: Job,
    root: tuple[Path, PurePosixPath],
    options: BuildOptions,
    env: Mapping[str, str],
    container: PreparedContainer | None,
) -> tuple[KeptBuildDir, dict[str, str]]:
    """A meson-python build's build dir in the container's build cache (a fresh copy of the
    source each run: multibuild.engine.kept_build_dir), with the config settings that name it:
    settings.toml's, the engine's placeholders filled in as the host route fills them."""
    name = f"{canonicalize_name(options.project)}-{job.build_id}"
    path = str(root[1] / name)
    values = {"build_dir": path, "python": job.version.abi, "jobs": options.jobs}
    settings = [
        s.format(**values)
        for s in options.config_settings
        if "{work_dir}" not in s  # the host's work dir means nothing in the container
    ]
    if not any(s.startswith("build-dir=") for s in settings):
        settings.append(f"build-dir={path}")
    configuration = {
        "image": container.reference if container else "",
        "build": job.build_id,
        "config_settings": settings,
        "cibuildwheel": metadata.version("cibuildwheel"),
    }
    variable = f"CIBW_CONFIG_SETTINGS_{job.os.upper()}"
    kept = KeptBuildDir(host=root[0] / name, path=path, configuration=configuration)
    setting = " ".join(shlex.quote(s) for s in settings)
    return kept, {**env, variable: setting, "MB_KEPT_BUILD_DIR": path}


def build_one(
    job: Job,
    *,
    stage: Path,
    config_file: Path,
    output: Path,
    env: Mapping[str, str],
    options: BuildOptions,
    record: BuildRecord,
    logger: Logger,
    source_date: int,
    kept: KeptBuildDir | None = None,
) -> None:
    build = PythonBuild(python=job.python)
    record.builds.append(build)
    remove_tree(output)
    start = time.monotonic()
    sink = _Results(logger)
    if kept is not None:
        build.build_dir = kept.prepare(stage / SOURCE_IN_STAGE)
        logger.info(f"build dir {kept.path}: {build.build_dir}")
    # The step's line says FAILED when cibuildwheel did (the check is inside the group).
    with logger.group(f"cibuildwheel {job.id}"):
        done = stream(
            cibuildwheel.command(job, stage / SOURCE_IN_STAGE, output, config_file),
            sink,
            cwd=stage,
            env=env,
            label="cibuildwheel",
        )
        build.steps["cibuildwheel"] = round(time.monotonic() - start, 3)
        build.libraries = list(sink.result("pre_build").get("libraries", []))
        # cibw-step zeroed ccache's statistics after pre_build and read them in run_tests.
        stats = sink.result("run_tests").get("ccache")
        if isinstance(stats, dict):
            build.ccache = {k: float(v) for k, v in stats.items() if isinstance(v, (int, float))}
        emptied = sink.result("pre_build").get("build_dir_note")
        if emptied:
            build.build_dir = str(emptied)
        build.ccache_note = str(
            sink.result("run_tests").get("ccache_note")
            or sink.result("pre_build").get("ccache_note")
            or ("" if "CCACHE_DIR" in env else "not used (--no-ccache, or no ccache here)")
        )
        tests = sink.result("run_tests")
        if tests:
            build.tests = {
                k: v for k, v in tests.items() if k not in ("hook", "ccache", "ccache_note")
            }
        _raise_failure(job, done.returncode, done.tail, sink)
        if kept is not None:
            kept.save(stage / SOURCE_IN_STAGE)
    wheels = sorted(output.glob("*.whl"))
    if not wheels:
        raise BuildError(f"cibuildwheel made no wheel for {job.id}")
    for wheel in wheels:
        # cibuildwheel's repair rewrote the zip: the normal form again (contents untouched,
        # so the tests cibuildwheel ran still hold), as the host route does after its repair.
        try:
            normalize_wheel(wheel, source_date)
        except WheelZipError as error:
            raise RepairError(str(error)) from None
        final = copy_into_by_rename(wheel, options.wheelhouse)
        build.wheels.append(WheelInfo.of(final))
        name, version, _, _ = parse_wheel_filename(wheel.name)
        record.project, record.version = str(name), str(version)
        build.repair = repair_summary(final)
    build.status = "success"
    build.duration_s = round(time.monotonic() - start, 3)


def _raise_failure(job: Job, returncode: int, output_tail: str, sink: _Results) -> None:
    """The error of a failed cibuildwheel run: a hook's own exit code where a hook failed."""
    if returncode == 0:
        return
    failed = next((r for r in reversed(sink.results) if r.get("failed")), None)
    tail = excerpt(output_tail, 15)
    if failed is not None and failed.get("exit_code") in HOOK_ERRORS:
        error = HOOK_ERRORS[int(failed["exit_code"])]
        what = "run_tests" if failed.get("hook") == "run_tests" else f"hook {failed.get('hook')}"
        raise error(f"{what} failed in cibuildwheel for {job.id}:\n{tail}")
    if sink.failure_lines:
        raise ContainerError(
            f"the container engine failed for {job.id}: {sink.failure_lines[-1]}\n{tail}"
        )
    raise BuildError(f"cibuildwheel failed for {job.id} (exit status {returncode}):\n{tail}")
