"""One CI job, planned from the CI run and run: `python -m multibuild ci`.

Every CI config (.travis.yml, appveyor.yml, the GitHub workflow) runs this one entry point with
MB_JOB naming the job. The plan holds the run's one Decision (multibuild.ci.channels): what
the job builds (BUILD_COMMIT, or DAILY_COMMIT on a nightly), where the wheels go; and how it
builds (cibuildwheel on CI; the engine's own pipeline on this machine, `--builder host`).
Running it builds, repairs and tests, keeps a build record and log in the wheelhouse whatever
happens, and uploads them with the wheels to the plan's container. The build's processes
never see the upload credentials.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from multibuild import platforms
from multibuild.ci import cibuildwheel
from multibuild.ci.channels import Decision
from multibuild.ci.jobs import Job, Runnable, runnable_here
from multibuild.ci.providers import CIInfo
from multibuild.engine.pipeline import Pipeline, recipe_of, recorded_build
from multibuild.engine.record import BuildRecord, PythonBuild, WheelInfo
from multibuild.engine.source import prepare_source, requested
from multibuild.errors import BuildError, ConfigurationError, FatalError
from multibuild.log import Logger
from multibuild.options import BuildArguments, BuildOptions, Knobs, resolve_build_options
from multibuild.platforms import Platform
from multibuild.publish.anaconda import publish_indexes
from multibuild.publish.containers.credentials import withheld
from multibuild.publish.upload import Destination, send
from multibuild.settings import BUILDERS, CI_PROVIDERS, Settings
from multibuild.util.cmd import excerpt, stream
from multibuild.util.files import copy_into_by_rename
from multibuild.util.secrets import NO_SECRETS, Redactor
from multibuild.util.urls import hide_userinfo


@dataclass(frozen=True)
class JobPlan:
    job: Job
    info: CIInfo
    decision: Decision
    builder: str
    source: str
    runnable: Runnable
    steps: tuple[tuple[str, str], ...]
    notes: tuple[str, ...] = ()
    # Why this job builds nothing (the commit's requires-python excludes its Python), or None.
    skipped: str | None = None

    @property
    def commit(self) -> str:
        return self.decision.commit or ""

    @property
    def nightly(self) -> bool:
        return self.decision.nightly

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
            *([f"skipped  {self.skipped}"] if self.skipped else []),
            "steps:",
            *(f"  {i}. {name:<9} {what}" for i, (name, what) in enumerate(self.steps, 1)),
            *(f"note: {note}" for note in self.notes),
        ]
        if self.skipped:
            pass  # nothing runs, so any machine will do
        elif not self.runnable.ok:
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
            "container": self.decision.container,
            "reason": self.decision.reason,
            "steps": [name for name, _ in self.steps],
            "notes": list(self.notes),
            "skipped": self.skipped,
            "runnable": {"ok": self.runnable.ok, "reason": self.runnable.reason},
        }


def chosen_builder(settings: Settings, info: CIInfo, builder: str | None) -> str:
    chosen = builder or (settings.ci.builder if info.provider in CI_PROVIDERS else "host")
    if chosen not in BUILDERS:
        raise ConfigurationError(f"--builder is one of {', '.join(BUILDERS)}")
    return chosen


def make_plan(
    settings: Settings,
    job: Job,
    info: CIInfo,
    decision: Decision,
    *,
    builder: str,
    repo: str | None = None,
    sdist: str | None = None,
    has_python: Callable[[Any], bool] | None = None,
    engine: Callable[[], str | None] | None = None,
    requires_python: str | None = None,
    source_notes: tuple[str, ...] = (),
) -> JobPlan:
    """The plan of `job` for the run `info` with the run's `decision`. `engine` answers which
    container engine works here (cibuildwheel's Linux route needs one); `requires_python` is
    the built commit's (its pyproject.toml): a job whose Python it excludes is skipped."""
    source = (
        f"sdist {sdist}" if sdist else f"git {repo or settings.project.repo} @ {decision.commit}"
    )
    runnable = (
        runnable_here(job, builder, has_python=has_python, engine=engine)
        if engine is not None
        else runnable_here(job, builder, has_python=has_python)
    )
    platform = platforms.by_name(job.os)
    if builder == "cibuildwheel":
        where = (
            f"in a {settings.ci.manylinux_image} container"
            if job.os == "linux"
            else "on the runner"
        )
        steps = [
            ("source", f"{source}, into .multibuild/src"),
            ("libraries", f"config.sh pre_build into {cibuildwheel.PREFIX[job.os]} (before-build)"),
            ("build", f"cibuildwheel --only {job.id} {where}"),
            ("repair", platform.repair_summary),
            ("test", "config.sh run_tests in cibuildwheel's clean test venv (test-command)"),
        ]
    else:
        steps = [
            ("source", f"{source}, into .multibuild/src"),
            ("libraries", "config.sh pre_build into .multibuild/prefix"),
            ("build", f"pypa/build with CPython {job.python} on this machine"),
            ("repair", platform.repair_summary),
            ("test", "config.sh run_tests in a fresh venv, prefix out of sight"),
        ]
    skipped = None
    if requires_python is not None and not job.version.allowed_by(requires_python):
        skipped = (
            f"the commit's requires-python is {requires_python!r}, which excludes CPython "
            f"{job.python}: nothing to build, and the job passes"
        )
        steps = [("skip", skipped)]
    steps.append(("record", "wheelhouse/<build-id>.json and .log, failed or not"))
    if decision.channel:
        steps.append(("upload", f"{decision.channel} -> {decision.container} ({decision.reason})"))
        steps += [
            ("index", f"the nightly's wheels also to {index} (anaconda-client)")
            for index in decision.indexes
            if not skipped
        ]
    notes = [f"no upload: {decision.reason}"] if decision.channel is None else []
    notes += source_notes
    return JobPlan(
        job=job,
        info=info,
        decision=decision,
        builder=builder,
        source=source,
        runnable=runnable,
        steps=tuple(steps),
        notes=tuple(notes),
        skipped=skipped,
    )


def run_job(
    plan: JobPlan,
    *,
    settings: Settings,
    arguments: BuildArguments,
    knobs: Knobs,
    environ: Mapping[str, str],
    upload: bool = True,
    redact: Redactor = NO_SECRETS,
) -> int:
    """Build, repair and test per the plan; then upload wheels, record and log (a failed
    build's record and log too) where the plan's decision says. The build's error, if any,
    is the job's outcome."""
    if not plan.runnable.ok and not plan.skipped:
        raise ConfigurationError(f"job {plan.job.id} cannot run here: {plan.runnable.reason}")
    platform = platforms.current()
    arguments = replace(arguments, settings=str(settings.path), python=(plan.job.python,))
    failure: FatalError | None = None
    records: list[BuildRecord] = []
    wheelhouse = Path(arguments.wheelhouse or settings.root / "wheelhouse").resolve()
    try:
        if plan.skipped:
            records.append(_record_skip(plan, settings, wheelhouse))
            raise _Skipped
        options = resolve_build_options(
            replace(arguments, wheelhouse=str(wheelhouse)),
            settings=settings,
            knobs=knobs,
            platform=platform,
            environ=withheld(environ),  # the build runs the project's code: no credentials
            commit=plan.commit,
            nightly=plan.nightly,
        )
        logger = Logger(verbose=options.verbose, ci=_fold(plan), redact=redact)
        if plan.builder == "host":
            _run_host(plan, options, platform, records, logger)
        else:
            _run_cibuildwheel(plan, settings.root, options, platform, records, logger)
    except FatalError as error:
        failure = error
    except _Skipped:
        print(f"multibuild ci: {plan.job.id} skipped: {plan.skipped}")
    products = [p for record in records for p in products_of(record, wheelhouse)]
    if not upload:
        print(f"multibuild ci: --no-upload: {len(products)} file(s) stay in {wheelhouse}")
    elif products and plan.decision.channel and plan.decision.container:
        # This job's files only (a wheelhouse may hold older builds' products), where the
        # plan's decision says.
        send(
            products,
            Destination(
                channel=plan.decision.channel,
                url=plan.decision.container,
                base_dir=settings.root,
                why=plan.decision.reason,
                ci={**plan.info.as_record(), "nightly": plan.nightly},
            ),
            project=settings.project.name,
            environ=environ,
            redact=redact,
            tuning=knobs.upload,
        )
        wheels = [p for p in products if p.suffix == ".whl"]
        if plan.decision.indexes and wheels:
            publish_indexes(
                plan.decision.indexes,
                wheels,
                project=settings.project.name,
                keep=settings.upload.keep_nightlies,
                environ=environ,
            )
    elif products:
        print(f"multibuild ci: not uploading: {plan.decision.reason}")
    if failure is not None:
        raise failure
    return 0


class _Skipped(Exception):
    """The job builds nothing (its record says why)."""


def _record_skip(plan: JobPlan, settings: Settings, wheelhouse: Path) -> BuildRecord:
    """A record with status "skipped" and the reason, and a one-line log, in the wheelhouse:
    uploaded like any other, so the build history shows the job and why it built nothing."""
    record = BuildRecord(project=settings.project.name, platform=plan.job.os, plat=plan.job.plat)
    record.settings = {"builder": plan.builder, "job": plan.job.id, "nightly": plan.nightly}
    record.recipe = recipe_of(settings.root)
    url = hide_userinfo(plan.source.removeprefix("git ").rpartition(" @ ")[0])
    record.source = {"kind": "git", "url": url, "ref": plan.commit, "commit": ""}
    record.builds.append(PythonBuild(python=plan.job.python, status="skipped"))
    record.error = plan.skipped
    record.builds[0].error = plan.skipped
    record.finish("skipped")
    wheelhouse.mkdir(parents=True, exist_ok=True)
    (wheelhouse / record.log_name).write_text(
        f"{plan.describe()}\n\n{plan.job.id} skipped: {plan.skipped}\n", encoding="utf-8"
    )
    record.write(wheelhouse)
    return record


def products_of(record: BuildRecord, wheelhouse: Path) -> list[Path]:
    """The files a build left in the wheelhouse: its wheels, record and log."""
    names = [f"{record.build_id}.json", record.log_name]
    names += [wheel.name for build in record.builds for wheel in build.wheels]
    return [wheelhouse / name for name in names if (wheelhouse / name).is_file()]


def _fold(plan: JobPlan) -> str | None:
    return None if plan.info.provider == "local" else plan.info.provider


def _run_host(
    plan: JobPlan,
    options: BuildOptions,
    platform: Platform,
    records: list[BuildRecord],
    logger: Logger,
) -> None:
    pipeline = Pipeline(options, platform, logger)
    pipeline.record.settings["job"] = plan.job.id
    records.append(pipeline.record)
    pipeline.run()


def _run_cibuildwheel(  # noqa: PLR0917
    plan: JobPlan,
    root: Path,
    options: BuildOptions,
    platform: Platform,
    records: list[BuildRecord],
    logger: Logger,
) -> None:
    """The source step, then cibuildwheel for this job, recorded as the pipeline records a
    build. cibuildwheel copies the working directory into its Linux containers, so the source
    must lie under the repository (the default work dir does)."""
    if not options.work_dir.is_relative_to(root):
        raise ConfigurationError(
            f"cibuildwheel needs the source under {root}; --work-dir {options.work_dir} is not"
        )
    record = BuildRecord(project=options.project, platform=plan.job.os, plat=plan.job.plat)
    record.settings = {"builder": "cibuildwheel", "job": plan.job.id, "nightly": plan.nightly}
    record.recipe = recipe_of(options.config.parent)
    build = PythonBuild(python=plan.job.python)
    record.builds.append(build)
    records.append(record)
    log = options.work_dir / "logs" / f"{record.stamp}-{plan.job.id}.log"
    with recorded_build(
        record, logger=logger, log=log, wheelhouse=options.wheelhouse, platform=platform
    ):
        logger.info(plan.describe())
        record.source = requested(options.source)
        with logger.group("source"):
            source = prepare_source(
                options.source, options.work_dir, logger, options.environ, options.cache_dir
            )
        record.source = source.record
        output = options.work_dir / "cibuildwheel" / plan.job.id
        shutil.rmtree(output, ignore_errors=True)
        start = time.monotonic()
        with logger.group(f"cibuildwheel {plan.job.id}"):
            done = stream(
                cibuildwheel.command(
                    plan.job, source.path, output, root / cibuildwheel.CONFIG_FILE
                ),
                logger,
                cwd=root,
                env={
                    **cibuildwheel.clean_environ(options.environ),
                    "MB_TEST_LEVEL": options.test_level,
                },
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
            final = copy_into_by_rename(wheel, options.wheelhouse)
            build.wheels.append(WheelInfo.of(final))
            record.version = wheel.name.split("-")[1]
        build.status = "success"
