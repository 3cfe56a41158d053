"""One CI job, planned from the CI environment and run: `python -m multibuild ci`.

Every CI config (.travis.yml, appveyor.yml, the GitHub workflow) runs this one entry point with
MB_JOB naming the job. The plan says what the job builds (BUILD_COMMIT, or DAILY_COMMIT on a
cron), how (cibuildwheel on CI; the engine's own pipeline on this machine, `--builder host`),
and where the wheels go (multibuild.ci's channel decision, as `upload` makes it). Running it
builds, repairs and tests, keeps a build record and log in the wheelhouse whatever happens,
and uploads them with the wheels. Upload credentials are kept from the build's processes.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import shutil
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from multibuild import ci, cibw, platforms
from multibuild.commands import build as build_command
from multibuild.commands.upload import decide, upload_wheelhouse
from multibuild.containers.credentials import SECRET_VARIABLES, UPLOAD_CREDENTIALS
from multibuild.errors import BuildError, ConfigurationError, FatalError
from multibuild.jobs import Job, Runnable, find_job, runnable_here
from multibuild.log import Logger
from multibuild.options import BuildOptions, resolve_build_options
from multibuild.pipeline import Pipeline, save_record, tool_versions
from multibuild.platforms import Platform
from multibuild.record import BuildRecord, PythonBuild, WheelInfo
from multibuild.settings import BUILDERS, Settings
from multibuild.source import GitSource, prepare_git, prepare_sdist
from multibuild.util.cmd import excerpt, run
from multibuild.util.files import copy_into_by_rename
from multibuild.util.pythons import is_installed

CI_PROVIDERS = ("travis", "appveyor", "github")
# Variables the build never sees (given back for the upload step).
WITHHELD_FROM_BUILD = frozenset(SECRET_VARIABLES) | frozenset(UPLOAD_CREDENTIALS)
_REPAIR = {
    "linux": "auditwheel repair (grafts what is outside the manylinux policy)",
    "macos": "delocate-wheel --require-archs (grafts the dylibs)",
    "windows": "delvewheel repair (grafts the DLLs, prefix on its path)",
}


@dataclass(frozen=True)
class JobPlan:
    job: Job
    info: ci.CIInfo
    decision: ci.Decision
    container: str | None
    commit: str
    nightly: bool
    builder: str
    source: str
    runnable: Runnable
    steps: tuple[tuple[str, str], ...]
    notes: tuple[str, ...] = ()

    def describe(self) -> str:
        who = "run by hand" if self.info.provider == "local" else self.info.provider
        branch = f" on {self.info.branch}" if self.info.branch else ""
        lines = [
            f"job      {self.job.id} (CPython {self.job.python}, {self.job.os} {self.job.plat})",
            f"trigger  {who}: {self.info.event}{branch}",
            f"commit   (none: {self.source})"
            if self.source.startswith("sdist ")
            else f"commit   {self.commit}"
            + (" (DAILY_COMMIT: a nightly build)" if self.nightly else " (BUILD_COMMIT)"),
            f"builder  {self.builder}",
            "steps:",
            *(f"  {i}. {name:<9} {what}" for i, (name, what) in enumerate(self.steps, 1)),
            *(f"note: {note}" for note in self.notes),
        ]
        if not self.runnable.ok:
            lines.append(f"cannot run here: {self.runnable.reason}")
        elif self.info.provider == "local":
            lines.append(f"runs here: {self.runnable.reason}")
        return "\n".join(lines)

    def to_json(self) -> dict[str, Any]:
        return {
            "job": self.job.id,
            "os": self.job.os,
            "plat": self.job.plat,
            "python": self.job.python,
            "ci": self.info.as_record(),
            "commit": self.commit,
            "nightly": self.nightly,
            "builder": self.builder,
            "source": self.source,
            "channel": self.decision.channel,
            "container": self.container,
            "reason": self.decision.reason,
            "steps": [name for name, _ in self.steps],
            "notes": list(self.notes),
            "runnable": {"ok": self.runnable.ok, "reason": self.runnable.reason},
        }


def job_id_from(environ: Mapping[str, str], given: str | None) -> str:
    job_id = given or environ.get("MB_JOB")
    if not job_id:
        raise ConfigurationError(
            "which job? give --job ID or set MB_JOB (the CI configs do); "
            "`python -m multibuild ci --list` lists them"
        )
    return job_id


def make_plan(
    settings: Settings,
    job: Job,
    environ: Mapping[str, str],
    *,
    builder: str | None = None,
    nightly: bool = False,
    repo: str | None = None,
    sdist: str | None = None,
    runnable: Runnable | None = None,
) -> JobPlan:
    info = ci.detect(environ, git_branch=lambda: ci.local_git_branch(settings.root))
    if nightly and info.provider in ("local", "unknown"):
        info = dataclasses.replace(info, event=ci.CRON)  # reproduce a nightly by hand
    decision, container = decide(info, settings.upload, settings)
    is_nightly = decision.nightly
    commit = settings.project.daily_commit if is_nightly else settings.project.build_commit
    chosen = builder or (settings.ci.builder if info.provider in CI_PROVIDERS else "host")
    if chosen not in BUILDERS:
        raise ConfigurationError(f"--builder is one of {', '.join(BUILDERS)}")
    source = f"sdist {sdist}" if sdist else f"git {repo or settings.project.repo} @ {commit}"
    if runnable is None:
        runnable = runnable_here(job, chosen, has_python=_has_python)
    if chosen == "cibuildwheel":
        where = (
            f"in a {settings.ci.manylinux_image} container"
            if job.os == "linux"
            else "on the runner"
        )
        steps = [
            ("source", f"{source}, into .multibuild/src"),
            ("libraries", f"config.sh pre_build into {cibw.PREFIX[job.os]} (before-build)"),
            ("build", f"cibuildwheel --only {job.id} {where}"),
            ("repair", _REPAIR[job.os]),
            ("test", "config.sh run_tests in cibuildwheel's clean test venv (test-command)"),
        ]
    else:
        steps = [
            ("source", f"{source}, into .multibuild/src"),
            ("libraries", "config.sh pre_build into .multibuild/prefix"),
            ("build", f"pypa/build with CPython {job.python} on this machine"),
            ("repair", _REPAIR[job.os]),
            ("test", "config.sh run_tests in a fresh venv, prefix out of sight"),
        ]
    steps.append(("record", "wheelhouse/<build-id>.json and .log, failed or not"))
    if decision.channel:
        steps.append(("upload", f"{decision.channel} -> {container} ({decision.reason})"))
    notes = [f"no upload: {decision.reason}"] if decision.channel is None else []
    if info.provider == "travis" and job.travis_notes():
        notes.append(str(job.travis_notes()))
    return JobPlan(
        job=job,
        info=info,
        decision=decision,
        container=container,
        commit=commit,
        nightly=is_nightly,
        builder=chosen,
        source=source,
        runnable=runnable,
        steps=tuple(steps),
        notes=tuple(notes),
    )


def _has_python(version: str) -> bool:
    return is_installed(version, platforms.current().python_candidates(version))


@contextmanager
def credentials_withheld(environ: os._Environ[str]) -> Iterator[dict[str, str]]:
    """Take the upload credentials out of the environment (the build and its hooks run the
    project's code, which has no need of them); put them back afterwards."""
    held = {}
    for name in list(environ):
        base = name.removesuffix("_FILE")
        if base in WITHHELD_FROM_BUILD:
            held[name] = environ.pop(name)
    try:
        yield held
    finally:
        environ.update(held)


def run_job(plan: JobPlan, settings: Settings, args: argparse.Namespace) -> int:
    """Build, repair and test per the plan; then upload wheels, record and log (a failed
    build's record and log too). The build's error, if any, is the job's outcome."""
    if not plan.runnable.ok:
        raise ConfigurationError(f"job {plan.job.id} cannot run here: {plan.runnable.reason}")
    wheelhouse = Path(args.wheelhouse or settings.root / "wheelhouse").resolve()
    failure: FatalError | None = None
    records: list[BuildRecord] = []
    with credentials_withheld(os.environ):
        try:
            platform = platforms.current()
            arguments = _build_arguments(plan, settings, args, wheelhouse)
            options = dataclasses.replace(
                resolve_build_options(arguments, platform), nightly=plan.nightly
            )
            if plan.builder == "host":
                _run_host(plan, options, platform, records)
            else:
                _run_cibuildwheel(plan, settings.root, options, platform, records)
        except FatalError as error:
            failure = error
    products = [p for record in records for p in products_of(record, wheelhouse)]
    if args.no_upload:
        print(f"multibuild ci: --no-upload: {len(products)} file(s) stay in {wheelhouse}")
    elif products:
        # This job's files only: a wheelhouse may hold older builds' products.
        upload_wheelhouse(products, settings_path=settings.path)
    if failure is not None:
        raise failure
    return 0


def products_of(record: BuildRecord, wheelhouse: Path) -> list[Path]:
    """The files a build left in the wheelhouse: its wheels, record and log."""
    names = [f"{record.build_id}.json", f"{record.build_id}.log"]
    names += [wheel.name for build in record.builds for wheel in build.wheels]
    return [wheelhouse / name for name in names if (wheelhouse / name).is_file()]


def _build_arguments(
    plan: JobPlan, settings: Settings, args: argparse.Namespace, wheelhouse: Path
) -> argparse.Namespace:
    return build_command.default_arguments(
        settings=str(settings.path),
        repo=args.repo,
        sdist=args.sdist,
        commit=None if args.sdist else plan.commit,
        python=[plan.job.python],
        wheelhouse=str(wheelhouse),
        work_dir=args.work_dir,
        mirror=args.mirror,
        test_level=args.test_level,
        install_system_deps=args.install_system_deps,
        verbose=args.verbose,
    )


def _run_host(
    plan: JobPlan, options: BuildOptions, platform: Platform, records: list[BuildRecord]
) -> None:
    pipeline = Pipeline(options, platform, Logger(verbose=options.verbose))
    pipeline.record.settings["job"] = plan.job.id
    records.append(pipeline.record)
    pipeline.run()


def _run_cibuildwheel(
    plan: JobPlan,
    root: Path,
    options: BuildOptions,
    platform: Platform,
    records: list[BuildRecord],
) -> None:
    """The source step, then cibuildwheel for this job, with a record and log like the
    pipeline's. cibuildwheel copies the working directory into its Linux containers, so
    the source must lie under the repository (the default work dir does)."""
    wheelhouse = options.wheelhouse
    if not options.work_dir.is_relative_to(root):
        raise ConfigurationError(
            f"cibuildwheel needs the source under {root}; --work-dir {options.work_dir} is not"
        )
    logger = Logger(verbose=options.verbose)
    record = BuildRecord(project=options.project, platform=plan.job.os, plat=plan.job.plat)
    record.settings = {"builder": "cibuildwheel", "job": plan.job.id, "nightly": plan.nightly}
    build = PythonBuild(python=plan.job.python)
    record.builds.append(build)
    records.append(record)
    log_path = options.work_dir / "logs" / f"{record.stamp}-{plan.job.id}.log"
    logger.open_file(log_path)
    logger.info(plan.describe())
    try:
        with logger.group("source"):
            if isinstance(options.source, GitSource):
                source = prepare_git(options.source, options.work_dir / "src", logger)
            else:
                source = prepare_sdist(options.source, options.work_dir, logger)
        record.source = source.record
        output = options.work_dir / "cibuildwheel" / plan.job.id
        shutil.rmtree(output, ignore_errors=True)
        start = time.monotonic()
        with logger.group(f"cibuildwheel {plan.job.id}"):
            done = run(
                cibw.command(plan.job, source.path, output, root / cibw.CONFIG_FILE),
                logger,
                cwd=root,
                env={**cibw.clean_environ(), "MB_TEST_LEVEL": options.test_level},
                label="cibuildwheel",
            )
        build.steps["cibuildwheel"] = round(time.monotonic() - start, 3)
        if done.returncode != 0:
            raise BuildError(
                f"cibuildwheel failed for {plan.job.id} (exit status {done.returncode}):\n"
                f"{excerpt(done.tail, 15)}"
            )
        wheels = sorted(output.glob("*.whl"))
        if not wheels:
            raise BuildError(f"cibuildwheel made no wheel for {plan.job.id}")
        for wheel in wheels:
            final = copy_into_by_rename(wheel, wheelhouse)
            build.wheels.append(WheelInfo.of(final))
            record.version = wheel.name.split("-")[1]
        build.status = "success"
        record.finish("success")
    except FatalError as error:
        build.status, build.error = "failed", str(error).splitlines()[0]
        record.error, record.exit_code = str(error), error.return_code
        record.finish("failed")
        raise
    finally:
        record.tools = tool_versions(platform)
        save_record(record, logger, log_path, wheelhouse)


def plan_from_args(settings: Settings, args: argparse.Namespace) -> JobPlan:
    job = find_job(settings, job_id_from(os.environ, args.job))
    return make_plan(
        settings,
        job,
        os.environ,
        builder=args.builder,
        nightly=args.nightly,
        repo=args.repo,
        sdist=args.sdist,
    )
