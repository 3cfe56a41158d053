"""The plan of a CI job for each provider and event (commit, channel, container, steps), and
which jobs this machine can run; the container engine is given, not probed."""

from __future__ import annotations

import dataclasses

import pytest

from multibuild.ci import channels, providers
from multibuild.ci import plan as cijob
from multibuild.ci.configs.github import GITHUB_RUNNERS, github_runner
from multibuild.ci.jobs import runnable_here
from multibuild.ci.plan import JobPlan
from multibuild.matrix import CI_PLATS, Job, find_job, jobs
from multibuild.settings import Settings, load_settings
from tests.helpers import CI_EVENTS as EVENTS
from tests.helpers import REPO_ROOT

SETTINGS = load_settings(REPO_ROOT / "settings.toml")


# This repository's settings, with its own name set so that forks can be told apart.
OWN = dataclasses.replace(
    SETTINGS, upload=dataclasses.replace(SETTINGS.upload, repository="scipy/scipy-wheels")
)


# event -> (channel, commit, nightly) for a provider that uploads ([ci] upload_providers:
# GitHub alone in settings.toml; Travis' and Appveyor's jobs build and test only). With no
# pre-release container, a push to main builds and tests only; nightlies go to the nightly
# index, release branches to the release staging index.
EXPECTED = {
    "push": (None, "v1.17.1", False),
    "cron": ("pre-release", "main", True),
    "release": ("release", "v1.17.1", False),
    "pull_request": (None, "v1.17.1", False),
    "fork_pull_request": (None, "v1.17.1", False),
    "fork_push": (None, "v1.17.1", False),
}


# The job each provider runs (Travis: Linux and macOS, Appveyor: Windows, GitHub: all).
PROVIDER_JOB = {
    "travis": "cp311-manylinux_aarch64",
    "appveyor": "cp312-win_amd64",
    "github": "cp312-macosx_arm64",
}


BUILD_STEPS = ["source", "stage", "libraries", "build", "repair", "test", "record"]


def plan_for(settings: Settings, job: Job, environ: dict[str, str]) -> JobPlan:
    """The plan `python -m multibuild ci` makes, with a container engine that answers."""
    info = providers.detect(environ, git_branch=lambda: None)
    return cijob.make_plan(
        settings,
        job,
        info,
        channels.decide(info, settings),
        builder=cijob.chosen_builder(settings, info, None),
        engine=lambda: "podman",
    )


@pytest.mark.parametrize("event", list(EXPECTED))
@pytest.mark.parametrize("provider", list(EVENTS))
def test_plan_for_each_provider_and_event(provider: str, event: str) -> None:
    job = find_job(OWN, PROVIDER_JOB[provider])
    plan = plan_for(OWN, job, EVENTS[provider][event])
    channel, commit, nightly = EXPECTED[event]
    if provider not in OWN.ci.upload_providers and event in ("push", "cron", "release"):
        channel = None
        assert f"{provider} does not upload ([ci] upload_providers: github)" in plan.decision.reason
    assert plan.info.provider == provider
    assert (plan.decision.channel, plan.commit, plan.nightly) == (channel, commit, nightly)
    assert plan.builder == "cibuildwheel"  # CI's builder, from settings.toml [ci]
    steps = [name for name, _ in plan.steps]
    if channel is None:
        assert steps == BUILD_STEPS and plan.decision.container is None
        assert plan.notes[0].startswith("no upload: ")
    else:
        # Nightlies go to the nightly indexes, release branches to the release indexes
        # (anaconda.org), each besides its container when there is one.
        upload = OWN.upload
        indexes = upload.nightly_indexes if nightly else upload.release_indexes
        container = (upload.release if channel == "release" else upload.pre_release) or None
        assert indexes and plan.decision.indexes == indexes
        assert steps == [
            *BUILD_STEPS,
            *(["upload"] if container else []),
            *["index"] * len(indexes),
        ]
        assert plan.decision.container == container
    if event == "cron":
        assert f"git {OWN.project.repo} @ main" == plan.source
    build_step = dict(plan.steps)["build"]
    assert f"cibuildwheel --only {job.id}" in build_step
    if job.os == "linux":
        assert f"in a {OWN.ci.manylinux_image} container" in build_step


def test_the_release_container_is_only_for_release_branches() -> None:
    job = find_job(OWN, "cp311-manylinux_x86_64")
    for provider, events in EVENTS.items():
        for event, env in events.items():
            plan = plan_for(OWN, job, env)
            is_release = plan.decision.channel == "release"
            owner = provider == OWN.ci.release_provider and provider in OWN.ci.upload_providers
            assert is_release == (event == "release" and owner), (provider, event)


def test_jobs_this_machine_can_run() -> None:
    by_id = {job.id: job for job in jobs(SETTINGS)}

    def check(job_id: str, builder: str, **kw: object) -> tuple[bool, str]:
        r = runnable_here(by_id[job_id], builder, **kw)  # type: ignore[arg-type]
        return r.ok, r.reason

    no_qemu = "aarch64 containers need QEMU user emulation: (binfmt_misc's state)"
    linux = {"os_name": "linux", "machine": "x86_64", "emulation": lambda plat: no_qemu}
    assert check("cp311-manylinux_x86_64", "host", **linux)[0]
    ok, reason = check("cp311-manylinux_aarch64", "host", **linux)
    assert not ok and reason == "needs an aarch64 machine (this one is x86_64)"
    ok, reason = check("cp311-manylinux_aarch64", "cibuildwheel", engine=lambda: "podman",
                       **linux)  # fmt: skip
    assert not ok and reason.endswith(f", or emulation: {no_qemu}")
    # With emulation: the container route runs aarch64 jobs; the host route cannot.
    emulated = {
        **linux, "emulation": lambda plat: None, "engine": lambda: "podman",
        "cross": lambda v: "no build Python" if v.number == "3.13" else None,
    }  # fmt: skip
    ok, reason = check("cp311-manylinux_aarch64", "cibuildwheel", local_image=True, **emulated)
    assert ok and reason == "in an aarch64 container under QEMU emulation (slower)"
    # The local aarch64 image's CPythons are cross-compiled here: that needs a build Python.
    ok, reason = check("cp313-manylinux_aarch64", "cibuildwheel", local_image=True, **emulated)
    assert not ok and reason == "the local image cannot hold CPython 3.13: no build Python"
    assert check("cp313-manylinux_aarch64", "cibuildwheel", **emulated)[0]  # another image
    ok, reason = check("cp311-manylinux_aarch64", "host", **emulated)
    assert not ok and "`--builder cibuildwheel` runs it here in a container" in reason
    ok, reason = check("cp312-musllinux_aarch64", "cibuildwheel", local_image=True, **emulated)
    assert not ok and "no musl image can be made from Debian packages" in reason
    ok, reason = check("cp311-macosx_arm64", "cibuildwheel", **emulated)
    assert not ok and reason == "needs a macOS machine (this one runs Linux)"
    ok, reason = check("cp311-macosx_arm64", "host", **linux)
    assert not ok and reason == "needs a macOS machine (this one runs Linux)"
    ok, reason = check("cp311-win_amd64", "host", **linux)
    assert not ok and "needs a Windows machine" in reason
    ok, reason = check("cp311-manylinux_x86_64", "cibuildwheel", engine=lambda: None, **linux)
    assert not ok and "no container engine answers here" in reason and "--builder host" in reason
    assert check("cp311-manylinux_x86_64", "cibuildwheel", engine=lambda: "docker", **linux)[0]
    ok, reason = check("cp312-manylinux_x86_64", "host", has_python=lambda v: False, **linux)
    assert not ok and reason == "CPython 3.12 is not installed here"
    free = dataclasses.replace(
        SETTINGS, matrix=dataclasses.replace(SETTINGS.matrix, python=("3.13t",))
    )
    [job] = [j for j in jobs(free) if j.id == "cp313t-manylinux_x86_64"]
    r = runnable_here(job, "host", has_python=lambda v: False, os_name="linux", machine="x86_64")
    assert r.reason == "free-threaded CPython 3.13 is not installed here"
    assert check("cp311-macosx_arm64", "cibuildwheel", os_name="macos", machine="arm64")[0]
    assert check("cp311-win_amd64", "host", os_name="windows", machine="AMD64")[0]
    # musllinux: only in cibuildwheel's musllinux image, never on this glibc machine or in the
    # local (glibc) image; win_arm64 and the Accelerate jobs on their own machines.
    ok, reason = check("cp312-musllinux_x86_64", "host", **linux)
    assert not ok and "built on musl libc" in reason
    ok, reason = check("cp312-musllinux_x86_64", "cibuildwheel", engine=lambda: "podman",
                       local_image=True, **linux)  # fmt: skip
    assert not ok and "`--image official`" in reason
    assert check("cp312-musllinux_x86_64", "cibuildwheel", engine=lambda: "podman", **linux)[0]
    ok, reason = check("cp312-win_arm64", "cibuildwheel", os_name="windows", machine="AMD64")
    assert not ok and reason == "needs an ARM64 machine (this one is amd64)"
    assert check("cp312-win_arm64", "cibuildwheel", os_name="windows", machine="ARM64")[0]
    assert check("cp312-macosx_arm64-accelerate", "host", os_name="macos", machine="arm64")[0]


def test_appveyor_leaves_win_arm64_to_github() -> None:
    """Appveyor has no Windows ARM64 image: its config runs the win_amd64 jobs only; GitHub
    Actions runs every job, win_arm64 on windows-11-arm."""
    from multibuild.ci.configs import PROVIDERS

    by_path = {provider.path: provider for provider in PROVIDERS}
    appveyor = [job.id for job in by_path["appveyor.yml"].jobs(SETTINGS)]
    assert appveyor and all(job.endswith("-win_amd64") for job in appveyor)
    github = by_path[".github/workflows/wheels.yml"].jobs(SETTINGS)
    assert len(github) == 60
    assert {github_runner(j) for j in github if j.id.endswith("-win_arm64")} == {"windows-11-arm"}
    travis = [job.id for job in by_path[".travis.yml"].jobs(SETTINGS)]
    assert len(travis) == 24 and "cp314t-musllinux_aarch64" in travis


def test_the_accelerate_job_runs_with_its_variant() -> None:
    """One decision of what an Accelerate job adds, for both routes: its deployment target,
    MB_BLAS for the hooks and the backend's -Dblas=accelerate; nothing for other jobs."""
    from multibuild.matrix import variant_build

    env, extra = variant_build(SETTINGS, find_job(SETTINGS, "cp313t-macosx_x86_64-accelerate"))
    assert env == {"MACOSX_DEPLOYMENT_TARGET": "14.0", "MB_BLAS": "accelerate"}
    assert extra == ("setup-args=-Dblas=accelerate",)
    # The OpenBLAS job of the same PLAT keeps [ci] macos_deployment_targets' (the host route
    # sets it; cibuildwheel reads it from its file's overrides).
    openblas = find_job(SETTINGS, "cp313t-macosx_x86_64")
    assert variant_build(SETTINGS, openblas) == ({"MACOSX_DEPLOYMENT_TARGET": "10.14"}, ())
    assert variant_build(SETTINGS, find_job(SETTINGS, "cp313t-musllinux_x86_64")) == ({}, ())


def test_a_nightly_by_hand_on_a_release_branch_goes_to_the_pre_release_container() -> None:
    """The plan and the upload read one Decision: `ci --nightly` by hand on a checkout of a
    release branch plans the nightly (DAILY_COMMIT, pre-release), and that is where its files
    go (before, the upload decided again from the branch: the release container)."""
    info = channels.as_nightly(providers.detect({}, git_branch=lambda: "v1.17.1"))
    decision = channels.decide(info, SETTINGS)
    plan = cijob.make_plan(
        SETTINGS,
        find_job(SETTINGS, "cp311-manylinux_x86_64"),
        info,
        decision,
        builder="host",
        has_python=lambda v: True,
    )
    assert plan.decision is decision
    # By hand: the local directories of [upload] local, never the real containers.
    assert (decision.channel, decision.container) == ("pre-release", "containers/pre-release")
    assert (plan.commit, plan.nightly) == (SETTINGS.project.daily_commit, True)
    assert decision.indexes == ()  # nor anaconda.org
    # Without --nightly, the same checkout is a release.
    released = channels.decide(providers.detect({}, git_branch=lambda: "v1.17.1"), SETTINGS)
    assert released.container == "containers/release"


def test_every_ci_plat_has_a_github_runner() -> None:
    """The matrix accepts the PLATs the CI providers have machines for: GitHub names a runner
    for each, and for nothing else."""
    assert set(GITHUB_RUNNERS) == {(os, plat) for os, plats in CI_PLATS.items() for plat in plats}


def test_the_host_plan_lists_the_steps_the_pipeline_records() -> None:
    """`ci --dry-run` with the host builder names the pipeline's own steps, in its order,
    and the paths the engine uses (work dir, source checkout, prefix)."""
    from multibuild.engine.pipeline import PREFIX_DIR, STEPS
    from multibuild.engine.source import SOURCE_DIR
    from multibuild.options import WORK_DIR

    info = providers.detect({}, git_branch=lambda: None)
    job = find_job(OWN, PROVIDER_JOB["github"])
    plan = cijob.make_plan(OWN, job, info, channels.decide(info, OWN), builder="host")
    steps = dict(plan.steps)
    assert list(steps)[: len(STEPS) + 2] == ["source", *STEPS, "record"]  # then the upload
    assert steps["source"].endswith(f"into {WORK_DIR}/{SOURCE_DIR}")
    assert steps["pre_build"] == f"config.sh pre_build into {WORK_DIR}/{PREFIX_DIR}"
