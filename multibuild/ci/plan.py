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

from multibuild import console, platforms
from multibuild.ci.channels import Decision
from multibuild.ci.jobs import Runnable, runnable_here
from multibuild.ci.providers import CIInfo, fold_style
from multibuild.cibuildwheel import config as cibuildwheel
from multibuild.cibuildwheel.container import ContainerChoice
from multibuild.cibuildwheel.route import CibuildwheelRun, run_cibuildwheel, stage_dir
from multibuild.engine.pipeline import PREFIX_DIR, STEPS, Pipeline, recipe_of
from multibuild.engine.record import BuildRecord, PythonBuild
from multibuild.engine.source import SOURCE_DIR
from multibuild.errors import ConfigurationError, CredentialsError, FatalError
from multibuild.images.recipe import image_pythons
from multibuild.log import Logger
from multibuild.matrix import ACCELERATE, Job, official_image, variant_build
from multibuild.options import (
    WORK_DIR,
    BuildArguments,
    BuildOptions,
    EnvironmentOptions,
    resolve_build_options,
)
from multibuild.platforms import Platform
from multibuild.publish.upload import Destination, check_credentials, publish_run
from multibuild.publish.wheelhouse import collect
from multibuild.settings import BUILDERS, CI_PROVIDERS, Settings
from multibuild.util.isolation import isolated_children
from multibuild.util.secrets import NO_SECRETS, Redactor, withheld
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
            *([f"skipped  {self.skipped}"] if self.skipped else []),
            *([f"image    {self.container.describe()}"] if self.container else []),
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
    requires_python: str | None = None,
    source_notes: tuple[str, ...] = (),
    container: ContainerChoice | None = None,
) -> JobPlan:
    """The plan of `job` for the run `info` with the run's `decision`. `engine` answers which
    container engine works here (cibuildwheel's Linux route needs one); `requires_python` is
    the built commit's (its pyproject.toml): a job whose Python it excludes is skipped;
    `container` is the run's choice of image and engine (the official image on CI, the local
    one elsewhere)."""
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
            official=official_image(settings, job),
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
            ("source", f"{source}, into {WORK_DIR}/{SOURCE_DIR}"),
            ("stage", f"the project staged into {stage_dir(Path(WORK_DIR))}"),
            ("libraries", f"config.sh pre_build into {platform.ci_prefix} (before-build)"),
            ("build", f"cibuildwheel --only {job.build_id} {where}{_variant_note(job)}"),
            ("repair", platform.repair_summary),
            ("test", "config.sh run_tests in cibuildwheel's clean test venv (test-command)"),
        ]
    else:
        # One line per step the pipeline runs and records (engine.pipeline.STEPS).
        host_steps = {
            "build env": f"a kept build venv of CPython {job.python} on this machine",
            "pre_build": f"config.sh pre_build into {WORK_DIR}/{PREFIX_DIR}",
            "build": "pypa/build",
            "repair": platform.repair_summary,
            "test env": "a fresh venv with the test requirements",
            "test": "config.sh run_tests in it, prefix out of sight",
        }
        steps = [("source", f"{source}, into {WORK_DIR}/{SOURCE_DIR}")]
        steps += [(name, host_steps[name]) for name in STEPS]
    skipped = None
    if requires_python is not None and not job.version.allowed_by(requires_python):
        skipped = (
            f"the commit's requires-python is {requires_python!r}, which excludes CPython "
            f"{job.python}: nothing to build, and the job passes"
        )
        steps = [("skip", skipped)]
    steps.append(("record", "wheelhouse/<build-id>.json and .log, failed or not"))
    if decision.channel:
        if decision.container:
            steps.append(
                ("upload", f"{decision.channel} -> {decision.container} ({decision.reason})")
            )
        steps += [
            ("index", f"the wheels to {index} (anaconda-client; {decision.reason})")
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
        container=container,
    )


def _variant_note(job: Job) -> str:
    if job.variant == ACCELERATE:
        return " against Accelerate (its CIBW_ENVIRONMENT_MACOS, CIBW_CONFIG_SETTINGS_MACOS)"
    return ""


def run_job(
    plan: JobPlan,
    *,
    settings: Settings,
    arguments: BuildArguments,
    env_options: EnvironmentOptions,
    environ: Mapping[str, str],
    upload: bool = True,
    redact: Redactor = NO_SECRETS,
) -> int:
    """Build, repair and test per the plan; then upload wheels, record and log (a failed
    build's record and log too) where the plan's decision says. The build's error, if any,
    is the job's outcome."""
    if not plan.runnable.ok and not plan.skipped:
        raise ConfigurationError(f"job {plan.job.id} cannot run here: {plan.runnable.reason}")
    arguments = replace(arguments, settings=str(settings.path), python=(plan.job.python,))
    if plan.builder == "host":  # cibuildwheel gets these from its file and job_environ
        variables, extra_settings = variant_build(settings, plan.job)
        arguments = replace(arguments, config_setting=(*arguments.config_setting, *extra_settings))
        environ = {**environ, **variables}
    if upload and plan.decision.channel:
        _check_secrets(plan, environ)
    wheelhouse = Path(arguments.wheelhouse or settings.root / "wheelhouse").resolve()
    failure: FatalError | None = None
    if plan.skipped:
        record = _record_skip(plan, settings, wheelhouse)
        console.info(f"multibuild ci: {plan.job.id} skipped: {plan.skipped}")
        records = [record]
    else:
        records = []
        try:
            _build(
                plan,
                settings,
                arguments=arguments,
                wheelhouse=wheelhouse,
                records=records,
                env_options=env_options,
                environ=environ,
                redact=redact,
            )
        except FatalError as error:
            failure = error
    _publish(
        plan,
        settings,
        [p for record in records for p in products_of(record, wheelhouse)],
        wheelhouse=wheelhouse,
        upload=upload,
        env_options=env_options,
        environ=environ,
        redact=redact,
    )
    if failure is not None:
        raise failure
    return 0


def _build(
    plan: JobPlan,
    settings: Settings,
    *,
    arguments: BuildArguments,
    wheelhouse: Path,
    records: list[BuildRecord],
    env_options: EnvironmentOptions,
    environ: Mapping[str, str],
    redact: Redactor,
) -> None:
    """The job's build, its records appended to `records` as it goes (a failed build's too)."""
    platform = platforms.current()
    options = resolve_build_options(
        replace(arguments, wheelhouse=str(wheelhouse)),
        settings=settings,
        env_options=env_options,
        platform=platform,
        environ=withheld(environ),  # the build runs the project's code: no credentials
        commit=plan.commit,
        nightly=plan.nightly,
    )
    logger = Logger(verbose=options.verbose, ci=fold_style(plan.info), redact=redact)
    # Every command of the build in a PID namespace of its own: none can read this
    # process's credentials, and none is left running when the upload below starts.
    with isolated_children(environ):
        if plan.builder == "host":
            _run_host(plan, options, platform, records, logger)
        else:
            _run_cibuildwheel(
                plan,
                settings,
                options=options,
                platform=platform,
                records=records,
                env_options=env_options,
                environ=environ,
                logger=logger,
            )


def _publish(
    plan: JobPlan,
    settings: Settings,
    products: list[Path],
    *,
    wheelhouse: Path,
    upload: bool,
    env_options: EnvironmentOptions,
    environ: Mapping[str, str],
    redact: Redactor,
) -> None:
    """This job's files only (a wheelhouse may hold older builds' products), where the plan's
    decision says: the container, and a nightly's wheels to its package indexes."""
    if not upload:
        console.info(f"multibuild ci: --no-upload: {len(products)} file(s) stay in {wheelhouse}")
        return
    if not products:
        return
    decision = plan.decision
    if not decision.channel:
        console.info(f"multibuild ci: not uploading: {decision.reason}")
        return
    destination = None
    if decision.container:
        destination = Destination(
            channel=decision.channel,
            url=decision.container,
            base_dir=Path.cwd(),
            why=decision.reason,
            ci={**plan.info.as_record(), "nightly": plan.nightly},
        )
    publish_run(
        collect(products),
        destination,
        indexes=decision.indexes,
        keep=settings.upload.keep_nightlies if plan.nightly else None,
        project=settings.project.name,
        environ=environ,
        redact=redact,
        tuning=env_options.upload,
    )


def _check_secrets(plan: JobPlan, environ: Mapping[str, str]) -> None:
    """A job meant to upload fails before it builds when its upload secrets are missing."""
    indexes = () if plan.skipped else plan.decision.indexes
    try:
        check_credentials(plan.decision.container, indexes, environ)
    except CredentialsError as error:
        where = ", ".join(filter(None, [plan.decision.container, *indexes]))
        raise CredentialsError(
            f"{plan.job.id}: this {plan.info.provider} job uploads to {where} "
            f"({plan.decision.reason}), but {error}. Nothing was built: set the secret in the "
            f'CI\'s settings (README.rst, "CI jobs"), or list the providers that upload in '
            "settings.toml [ci] upload_providers"
        ) from None


def _record_skip(plan: JobPlan, settings: Settings, wheelhouse: Path) -> BuildRecord:
    """A record with status "skipped" and the reason, and a one-line log, in the wheelhouse:
    uploaded like any other, so the build history shows the job and why it built nothing."""
    record = BuildRecord(
        project=settings.project.name,
        platform=plan.job.os,
        plat=plan.job.plat,
        variant=plan.job.variant,
        job=plan.job.id,
    )
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


def _run_host(
    plan: JobPlan,
    options: BuildOptions,
    platform: Platform,
    records: list[BuildRecord],
    logger: Logger,
) -> None:
    pipeline = Pipeline(options, platform, logger)
    pipeline.record.settings["job"] = plan.job.id
    pipeline.record.variant = plan.job.variant
    pipeline.record.job = plan.job.id
    records.append(pipeline.record)
    pipeline.run()


def _run_cibuildwheel(
    plan: JobPlan,
    settings: Settings,
    *,
    options: BuildOptions,
    platform: Platform,
    records: list[BuildRecord],
    env_options: EnvironmentOptions,
    environ: Mapping[str, str],
    logger: Logger,
) -> None:
    """cibuildwheel for this job, from the repository's files and cibuildwheel.toml as CI
    runs it (multibuild.cibuildwheel.route, the route `build --builder cibuildwheel` takes too)."""
    run = CibuildwheelRun(
        jobs=(plan.job,),
        container=plan.container
        or ContainerChoice("official", None, official_image(settings, plan.job), on_ci=True),
        repository=settings.root,
        image_pythons=image_pythons((plan.job.version,), settings.matrix.python)[0],
        passed=env_options.container_env,
        plan=plan.describe(),
        settings={"job": plan.job.id, "nightly": plan.nightly},
        job_environ={plan.job.id: cibuildwheel.job_environ(settings, plan.job)},
    )
    run_cibuildwheel(run, options, platform, records, environ=withheld(environ), logger=logger)
