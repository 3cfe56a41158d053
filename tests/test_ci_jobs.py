"""`python -m multibuild ci`: the plan each CI provider's environment gets (push to the
development branch, cron, push to a release branch, pull request, fork pull request), the jobs
this machine can and cannot run, one real job of a fixture project from source to a local
container (and a failing one, whose record and log still land), and cibuildwheel.toml's
commands (before-build, repair, test-command) run on this machine as cibuildwheel runs them.

The CI providers cannot run here: their environments are dicts made by the tests (as in
test_ci.py). Everything else is real: git, the build, auditwheel, venvs, the container.
"""

from __future__ import annotations

import dataclasses
import json
import os
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
import tomllib
from cibuildwheel.environment import parse_environment

from multibuild import cibw, cijob
from multibuild.jobs import find_job, jobs, runnable_here
from multibuild.settings import load_settings
from tests.conftest import REPO_ROOT, config_copy, git, make_repo
from tests.test_ci import appveyor, github, travis

SETTINGS = load_settings(REPO_ROOT / "settings.toml")
# This repository's settings, with its own name set so that forks can be told apart.
OWN = dataclasses.replace(
    SETTINGS, upload=dataclasses.replace(SETTINGS.upload, repository="scipy/scipy-wheels")
)
FORK = "someone/scipy-wheels"

EVENTS = {
    "travis": {
        "push": travis(),
        "cron": travis(TRAVIS_EVENT_TYPE="cron"),
        "release": travis(TRAVIS_BRANCH="v1.17.1"),
        "pull_request": travis(TRAVIS_EVENT_TYPE="pull_request", TRAVIS_PULL_REQUEST="12"),
        "fork_pull_request": travis(
            TRAVIS_EVENT_TYPE="pull_request",
            TRAVIS_PULL_REQUEST="13",
            TRAVIS_PULL_REQUEST_SLUG=FORK,
        ),
        "fork_push": travis(TRAVIS_REPO_SLUG=FORK),
    },
    "appveyor": {
        "push": appveyor(),
        "cron": appveyor(APPVEYOR_SCHEDULED_BUILD="True"),
        "release": appveyor(APPVEYOR_REPO_BRANCH="v1.17.1"),
        "pull_request": appveyor(APPVEYOR_PULL_REQUEST_NUMBER="12"),
        "fork_pull_request": appveyor(
            APPVEYOR_PULL_REQUEST_NUMBER="13", APPVEYOR_PULL_REQUEST_HEAD_REPO_NAME=FORK
        ),
        "fork_push": appveyor(APPVEYOR_REPO_NAME=FORK),
    },
    "github": {
        "push": github(),
        "cron": github(GITHUB_EVENT_NAME="schedule"),
        "release": github(GITHUB_REF="refs/heads/v1.17.1", GITHUB_REF_NAME="v1.17.1"),
        "pull_request": github(
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_REF="refs/pull/12/merge",
            GITHUB_REF_NAME="12/merge",
            GITHUB_BASE_REF="main",
        ),
        "fork_pull_request": github(
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_REF="refs/pull/13/merge",
            GITHUB_REF_NAME="13/merge",
            GITHUB_BASE_REF="main",
            GITHUB_HEAD_REF="someone:feature",
        ),
        "fork_push": github(GITHUB_REPOSITORY=FORK),
    },
}
# event -> (channel, commit, nightly)
EXPECTED = {
    "push": ("pre-release", "v1.17.1", False),
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
BUILD_STEPS = ["source", "libraries", "build", "repair", "test", "record"]


@pytest.mark.parametrize("event", list(EXPECTED))
@pytest.mark.parametrize("provider", list(EVENTS))
def test_plan_for_each_provider_and_event(provider: str, event: str) -> None:
    job = find_job(OWN, PROVIDER_JOB[provider])
    plan = cijob.make_plan(OWN, job, EVENTS[provider][event])
    channel, commit, nightly = EXPECTED[event]
    assert plan.info.provider == provider
    assert (plan.decision.channel, plan.commit, plan.nightly) == (channel, commit, nightly)
    assert plan.builder == "cibuildwheel"  # CI's builder, from settings.toml [ci]
    steps = [name for name, _ in plan.steps]
    if channel is None:
        assert steps == BUILD_STEPS and plan.container is None
        assert plan.notes[0].startswith("no upload: ")
    else:
        assert steps == [*BUILD_STEPS, "upload"]
        expected = OWN.upload.release if channel == "release" else OWN.upload.pre_release
        assert plan.container == expected
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
            plan = cijob.make_plan(OWN, job, env)
            is_release = plan.container == OWN.upload.release
            assert is_release == (event == "release"), (provider, event)


def test_jobs_this_machine_can_run() -> None:
    by_id = {job.id: job for job in jobs(SETTINGS)}

    def check(job_id: str, builder: str, **kw: object) -> tuple[bool, str]:
        r = runnable_here(by_id[job_id], builder, **kw)  # type: ignore[arg-type]
        return r.ok, r.reason

    linux = {"os_name": "linux", "machine": "x86_64"}
    assert check("cp311-manylinux_x86_64", "host", **linux)[0]
    ok, reason = check("cp311-manylinux_aarch64", "host", **linux)
    assert not ok and reason == "needs an aarch64 machine (this one is x86_64)"
    ok, reason = check("cp311-macosx_arm64", "host", **linux)
    assert not ok and reason == "needs a macOS machine (this one runs Linux)"
    ok, reason = check("cp311-win_amd64", "host", **linux)
    assert not ok and "needs a Windows machine" in reason
    ok, reason = check("cp311-manylinux_x86_64", "cibuildwheel", engine=lambda: None, **linux)
    assert not ok and "no container engine answers here" in reason and "--builder host" in reason
    assert check("cp311-manylinux_x86_64", "cibuildwheel", engine=lambda: "docker", **linux)[0]
    ok, reason = check("cp312-manylinux_x86_64", "host", has_python=lambda v: False, **linux)
    assert not ok and reason == "CPython 3.12 is not installed here"
    assert check("cp311-macosx_arm64", "cibuildwheel", os_name="macos", machine="arm64")[0]
    assert check("cp311-win_amd64", "host", os_name="windows", machine="AMD64")[0]


def multibuild(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TRAVIS", "APPVEYOR", "MB_", "CIBW_")) and k != "CI"
    }
    base["PYTHONPATH"] = str(REPO_ROOT)
    return subprocess.run(
        [sys.executable, "-m", "multibuild", *args], cwd=cwd, env={**base, **env},
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip


def test_dry_run_list_and_refusals_from_the_command_line() -> None:
    cron = {**EVENTS["travis"]["cron"], "MB_JOB": "cp311-macosx_arm64"}
    done = multibuild("ci", "--dry-run", cwd=REPO_ROOT, env=cron)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "job      cp311-macosx_arm64 (CPython 3.11, macos arm64)" in out
    assert "trigger  travis: cron on main" in out
    assert "commit   main (DAILY_COMMIT: a nightly build)" in out
    assert "3. build     cibuildwheel --only cp311-macosx_arm64 on the runner" in out
    assert "7. upload    pre-release -> containers/pre-release (scheduled (nightly) build)" in out
    assert "cross-compiles this wheel and cannot run its tests" in out  # Travis' Intel Macs
    assert "cannot run here: needs a macOS machine" in out

    pr = {**EVENTS["github"]["pull_request"], "MB_JOB": "cp312-manylinux_x86_64"}
    done = multibuild("ci", "--dry-run", "--json", cwd=REPO_ROOT, env=pr)
    plan = json.loads(done.stdout)
    assert plan["channel"] is None and plan["steps"] == BUILD_STEPS
    assert plan["reason"] == "pull request 12: build and test only, never upload"

    done = multibuild("ci", "--job", "cp311-manylinux_x86_64", "--sdist", "scipy==1.17.1",
                      "--dry-run", cwd=REPO_ROOT, env={})  # fmt: skip
    assert "commit   (none: sdist scipy==1.17.1)" in done.stdout
    assert "1. source    sdist scipy==1.17.1" in done.stdout

    done = multibuild("ci", "--list", "--json", cwd=REPO_ROOT, env={})
    listed = {j["job"]: j for j in json.loads(done.stdout)}
    assert set(listed) == {j.id for j in jobs(SETTINGS)}
    assert not listed["cp311-win_amd64"]["runs_here"]
    done = multibuild("ci", "--list", cwd=REPO_ROOT, env={})
    assert "cp311-macosx_x86_64      no    needs a macOS machine" in done.stdout

    # A job of another kind of machine is refused, saying why; an unknown job lists them all.
    done = multibuild("ci", "--job", "cp312-win_amd64", "--no-upload", cwd=REPO_ROOT, env={})
    assert done.returncode == 2
    assert "job cp312-win_amd64 cannot run here: needs a Windows machine" in done.stderr
    done = multibuild("ci", "--job", "cp39-manylinux_x86_64", cwd=REPO_ROOT, env={})
    assert done.returncode == 2 and "the jobs are: cp311-manylinux_x86_64, " in done.stderr
    done = multibuild("ci", cwd=REPO_ROOT, env={})
    assert done.returncode == 2 and "give --job ID or set MB_JOB" in done.stderr


def wheels_repo(
    tmp_path: Path, config_edit: dict[str, str] | None = None, test_requires: str = ""
) -> Path:
    """A wheels repository for the hello-c fixture: settings.toml, config.sh, git."""
    project = make_repo("hello-c", tmp_path / "hello-repo")
    root = tmp_path / "wheels"
    config_copy("hello-c", root / "hello-config", config_edit)
    (root / "settings.toml").write_text(
        f"""\
[project]
name = "hello-c"
repo = "{project}"
BUILD_COMMIT = "v1.0"
DAILY_COMMIT = "main"
config = "hello-config/config.sh"

[build]
test_requires = [{test_requires}]
system_tools = ["gcc", "cmake", "git"]

[matrix]
python = ["3.11"]
linux = ["x86_64"]

[upload]
pre_release = "containers/pre-release"
release = "containers/release"
"""
    )
    git("init", "-q", "-b", "main", cwd=root)
    return root


SEEN_CREDENTIAL = 'echo "ST_KEY=${ST_KEY:-unset}" > "$MB_WORK_DIR/credential-seen"\n'


@pytest.mark.slow
def test_a_job_from_source_to_the_container(tmp_path: Path) -> None:
    # run_tests runs pytest from the engine's work dir, inside a repository whose own pytest
    # settings would break it: the wheel's tests must not take them.
    run_pytest = (
        "run_tests() {\n"
        "    printf 'import hello_c\\ndef test_add():\\n    assert hello_c.add(2, 3) == 5\\n'"
        " > test_hello.py\n"
        "    python -m pytest -q -p no:cacheprovider test_hello.py\n"
    )
    root = wheels_repo(
        tmp_path,
        {"pre_build() {\n": "pre_build() {\n    " + SEEN_CREDENTIAL, "run_tests() {\n": run_pytest},
        test_requires='"pytest"',
    )
    (root / "pyproject.toml").write_text(
        '[tool.pytest.ini_options]\naddopts = "--strict-markers --no-such-option"\n'
    )
    push = {
        **EVENTS["github"]["push"],
        "MB_JOB": "cp311-manylinux_x86_64",
        "ST_KEY": "not-for-the-build-0123",
    }
    # CI's builder is cibuildwheel, which needs a container engine: --builder host runs the
    # same steps here, as `nox -s ci -- JOB` does.
    done = multibuild("ci", "--builder", "host", cwd=root, env=push)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "trigger  github: push on main" in output
    assert "upload    pre-release -> containers/pre-release (development branch main)" in output
    # The build's hooks never saw the upload credential.
    assert (root / ".multibuild" / "credential-seen").read_text() == "ST_KEY=unset\n"
    assert "not-for-the-build-0123" not in output

    container = root / "containers" / "pre-release"
    [wheel] = sorted(container.glob("*.whl"))
    assert wheel.name.startswith("mb_hello_c-1.0-cp311-cp311-manylinux")
    assert wheel.name in (container / "index.html").read_text()
    [record_file] = (root / "wheelhouse").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["builds"][0]["tests"]["counts"] == {"passed": 1}
    assert record["status"] == "success" and record["settings"]["job"] == "cp311-manylinux_x86_64"
    assert record["source"]["ref"] == "v1.0"
    stored = [p.name for p in container.rglob("*") if p.is_file()]
    assert record_file.name in stored and f"{record['build_id']}.log" in stored
    # The wheel in the container is the tested one from the wheelhouse.
    assert wheel.read_bytes() == (root / "wheelhouse" / wheel.name).read_bytes()

    # A nightly by hand: DAILY_COMMIT, marked nightly; --no-upload keeps it here.
    done = multibuild("ci", "--job", "cp311-manylinux_x86_64", "--nightly", "--no-upload",
                      cwd=root, env={})  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    assert "commit   main (DAILY_COMMIT: a nightly build)" in done.stdout
    nightly = max((root / "wheelhouse").glob("*.json"), key=lambda p: p.stat().st_mtime)
    assert json.loads(nightly.read_text())["settings"]["nightly"] is True
    assert len(list(container.glob("*.whl"))) == 1


@pytest.mark.slow
def test_a_failing_job_still_uploads_its_record_and_log(tmp_path: Path) -> None:
    root = wheels_repo(tmp_path, {"run_tests() {\n": "run_tests() {\n    exit 3\n"})
    cron = {**EVENTS["travis"]["cron"], "MB_JOB": "cp311-manylinux_x86_64"}
    done = multibuild("ci", "--builder", "host", cwd=root, env=cron)
    assert done.returncode == 9, done.stdout + done.stderr  # TestFailure
    assert "run_tests failed with exit status 3" in done.stderr
    container = root / "containers" / "pre-release"
    assert not list(container.glob("*.whl"))  # an untested wheel never goes out
    records = [json.loads(p.read_text()) for p in (container / "builds").glob("*.json")]
    assert [r["status"] for r in records] == ["failed"]
    assert records[0]["source"]["ref"] == "main"  # cron: DAILY_COMMIT
    assert any(p.name == f"{records[0]['build_id']}.log" for p in container.rglob("*.log"))


def run_shell(command: str, env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(["sh", "-c", command], env=env, cwd=cwd, capture_output=True,
                          text=True, check=False, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"


@pytest.mark.slow
def test_cibuildwheel_commands_run_as_cibuildwheel_runs_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """cibuildwheel.toml for the fixture, its commands run in cibuildwheel's order with its
    placeholders and its own evaluation of `environment`: before-build (config.sh pre_build
    through scripts/cibw-step, into MB_PREFIX), a build, repair-wheel-command (auditwheel,
    finding the prefix's library through `environment`), then test-command in a fresh venv
    with the wheel installed, from an empty directory. (No container engine runs here.)"""
    root = wheels_repo(tmp_path)
    shutil.copytree(REPO_ROOT / "scripts", root / "scripts")
    shutil.copytree(REPO_ROOT / "multibuild", root / "multibuild")
    prefix = tmp_path / "cibw-prefix"
    monkeypatch.setitem(cibw.PREFIX, "linux", prefix)
    settings = load_settings(root / "settings.toml")
    options = tomllib.loads(cibw.render(settings))["tool"]["cibuildwheel"]
    linux = options["linux"]
    assert options["build"] == ["cp311-manylinux_x86_64"]

    package = root / ".multibuild" / "src"
    git("clone", "-q", "--branch", "v1.0", settings.project.repo, str(package), cwd=tmp_path)
    python = Path(sys.executable)  # a CPython 3.11 with build and auditwheel, as the image's
    assignments = " ".join(f'{k}="{v}"' for k, v in linux["environment"].items())
    env = parse_environment(assignments).as_dictionary(
        {**os.environ, "PATH": f"{python.parent}:{os.environ['PATH']}"}
    )
    assert env["MB_CONFIG"] == "hello-config/config.sh"
    assert env["MB_PREFIX"] == str(prefix) and env["LD_LIBRARY_PATH"].startswith(f"{prefix}/lib")

    def fill(command: str, **values: str) -> str:
        return command.format(project=root, package=package, **values)

    run_shell(fill(options["before-build"]), env, package)
    assert list((prefix / "lib").glob("libhello.so*"))
    dist, repaired = tmp_path / "dist", tmp_path / "repaired"
    run_shell(f"{python} -m build --wheel --outdir {dist} {package}", env, package)
    [built] = dist.glob("*.whl")
    run_shell(fill(linux["repair-wheel-command"], dest_dir=str(repaired), wheel=str(built)),
              env, package)  # fmt: skip
    [wheel] = repaired.glob("*.whl")
    assert "manylinux" in wheel.name

    # cibuildwheel's test step: a venv with the wheel, test-command from an empty directory.
    shutil.rmtree(prefix)  # nothing outside the wheel
    test_venv = tmp_path / "test-venv"
    venv.create(test_venv, with_pip=True)
    run_shell(f"{test_venv}/bin/python -m pip install -q --no-index {shlex.quote(str(wheel))}",
              env, tmp_path)  # fmt: skip
    test_env = {k: v for k, v in env.items() if k != "LD_LIBRARY_PATH"}
    test_env["PATH"] = f"{test_venv}/bin:{test_env['PATH']}"
    test_env["VIRTUAL_ENV"] = str(test_venv)
    empty = tmp_path / "test-cwd"
    empty.mkdir()
    command = fill(options["test-command"])
    run_shell(command, test_env, empty)

    # A failing run_tests fails the test-command (cibuildwheel then fails the job).
    config = root / "hello-config" / "config.sh"
    config.write_text(config.read_text().replace("run_tests() {\n", "run_tests() {\n    exit 4\n"))
    done = subprocess.run(["sh", "-c", command], env=test_env, cwd=empty, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 9 and "run_tests failed with exit status 4" in done.stderr
