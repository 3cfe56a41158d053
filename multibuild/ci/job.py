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

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from multibuild import platforms
from multibuild.ci import cibuildwheel
from multibuild.ci.build_container import ContainerChoice
from multibuild.ci.channels import Decision
from multibuild.ci.cibw_build import CibuildwheelRun, run_cibuildwheel
from multibuild.ci.jobs import Job, Runnable, runnable_here
from multibuild.ci.providers import CIInfo
from multibuild.engine.pipeline import Pipeline
from multibuild.engine.record import BuildRecord
from multibuild.errors import ConfigurationError, FatalError
from multibuild.images.recipe import image_pythons
from multibuild.log import Logger
from multibuild.options import BuildArguments, BuildOptions, Knobs, resolve_build_options
from multibuild.platforms import Platform
from multibuild.publish.containers.credentials import withheld
from multibuild.publish.upload import Destination, send
from multibuild.settings import BUILDERS, Settings

CI_PROVIDERS = ("travis", "appveyor", "github")


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
    # The container of a Linux job built with cibuildwheel (None: no container).
    container: ContainerChoice | None = None

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
            *([f"image    {self.container.describe()}"] if self.container else []),
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
            "container": self.decision.container,
            "reason": self.decision.reason,
            "steps": [name for name, _ in self.steps],
            "notes": list(self.notes),
            "runnable": {"ok": self.runnable.ok, "reason": self.runnable.reason},
            "image": self.container.as_record() if self.container else None,
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
    container: ContainerChoice | None = None,
) -> JobPlan:
    """The plan of `job` for the run `info` with the run's `decision`. `engine` answers which
    container engine works here (cibuildwheel's Linux route needs one); `container` is the
    run's choice of image and engine (the official image on CI, the local one elsewhere)."""
    source = (
        f"sdist {sdist}" if sdist else f"git {repo or settings.project.repo} @ {decision.commit}"
    )
    in_container = builder == "cibuildwheel" and job.os == "linux"
    if not in_container:
        container = None
    elif container is None:
        container = ContainerChoice(
            image="official",
            engine=None,
            official=settings.ci.manylinux_image,
            on_ci=info.provider in CI_PROVIDERS,
        )
    local_image = container is not None and container.origin == "local"
    runnable = (
        runnable_here(job, builder, has_python=has_python, engine=engine, local_image=local_image)
        if engine is not None
        else runnable_here(job, builder, has_python=has_python, local_image=local_image)
    )
    platform = platforms.by_name(job.os)
    if builder == "cibuildwheel":
        if container is None:
            where = "on the runner"
        elif container.origin == "official":
            where = f"in a {container.official} container"
        elif container.origin == "local":
            where = "in the local image's container"
        else:
            where = f"in a {container.image} container"
        steps = [
            *(
                [
                    (
                        "image",
                        "the local image from Debian packages, built or found by its content "
                        "key (`python -m multibuild image build`)",
                    )
                ]
                if local_image
                else []
            ),
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
    steps.append(("record", "wheelhouse/<build-id>.json and .log, failed or not"))
    if decision.channel:
        steps.append(("upload", f"{decision.channel} -> {decision.container} ({decision.reason})"))
    notes = [f"no upload: {decision.reason}"] if decision.channel is None else []
    if info.provider == "travis" and job.travis_notes():
        notes.append(str(job.travis_notes()))
    return JobPlan(
        job=job,
        info=info,
        decision=decision,
        builder=builder,
        source=source,
        runnable=runnable,
        steps=tuple(steps),
        notes=tuple(notes),
        container=container,
    )


def run_job(
    plan: JobPlan,
    *,
    settings: Settings,
    arguments: BuildArguments,
    knobs: Knobs,
    environ: Mapping[str, str],
    upload: bool = True,
) -> int:
    """Build, repair and test per the plan; then upload wheels, record and log (a failed
    build's record and log too) where the plan's decision says. The build's error, if any,
    is the job's outcome."""
    if not plan.runnable.ok:
        raise ConfigurationError(f"job {plan.job.id} cannot run here: {plan.runnable.reason}")
    platform = platforms.current()
    arguments = replace(arguments, settings=str(settings.path), python=(plan.job.python,))
    failure: FatalError | None = None
    records: list[BuildRecord] = []
    wheelhouse = Path(arguments.wheelhouse or settings.root / "wheelhouse").resolve()
    try:
        options = resolve_build_options(
            replace(arguments, wheelhouse=str(wheelhouse)),
            settings=settings,
            knobs=knobs,
            platform=platform,
            environ=withheld(environ),  # the build runs the project's code: no credentials
            commit=plan.commit,
            nightly=plan.nightly,
        )
        if plan.builder == "host":
            _run_host(plan, options, platform, records)
        else:
            _run_cibuildwheel(
                plan,
                settings,
                options=options,
                platform=platform,
                records=records,
                knobs=knobs,
                environ=environ,
            )
    except FatalError as error:
        failure = error
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
            tuning=knobs.upload,
        )
    elif products:
        print(f"multibuild ci: not uploading: {plan.decision.reason}")
    if failure is not None:
        raise failure
    return 0


def products_of(record: BuildRecord, wheelhouse: Path) -> list[Path]:
    """The files a build left in the wheelhouse: its wheels, record and log."""
    names = [f"{record.build_id}.json", record.log_name]
    names += [wheel.name for build in record.builds for wheel in build.wheels]
    return [wheelhouse / name for name in names if (wheelhouse / name).is_file()]


def _run_host(
    plan: JobPlan, options: BuildOptions, platform: Platform, records: list[BuildRecord]
) -> None:
    ci = None if plan.info.provider == "local" else plan.info.provider
    pipeline = Pipeline(options, platform, Logger(verbose=options.verbose, ci=ci))
    pipeline.record.settings["job"] = plan.job.id
    records.append(pipeline.record)
    pipeline.run()


def _run_cibuildwheel(
    plan: JobPlan,
    settings: Settings,
    *,
    options: BuildOptions,
    platform: Platform,
    records: list[BuildRecord],
    knobs: Knobs,
    environ: Mapping[str, str],
) -> None:
    """cibuildwheel for this job, from the repository's files and cibuildwheel.toml as CI
    runs it (multibuild.ci.cibw_build, the route `build --builder cibuildwheel` takes too)."""
    run = CibuildwheelRun(
        jobs=(plan.job,),
        container=plan.container
        or ContainerChoice("official", None, settings.ci.manylinux_image, on_ci=True),
        repository=settings.root,
        image_pythons=image_pythons((plan.job.version,), settings.matrix.python)[0],
        passed=knobs.container_env,
        ci=None if plan.info.provider == "local" else plan.info.provider,
        plan=plan.describe(),
        settings={"job": plan.job.id, "nightly": plan.nightly},
    )
    run_cibuildwheel(run, options, platform, records, environ=withheld(environ))
