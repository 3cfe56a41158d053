"""`python -m multibuild ci` as CI runs it: the command line (--list, --dry-run, refusals), a real
job of the C fixture from source to the local container, a failing job, and cibuildwheel.toml's
commands run as cibuildwheel runs them."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import venv
from pathlib import Path

import pytest
from cibuildwheel.environment import parse_environment

from multibuild._compat import tomllib
from multibuild.cibuildwheel import config as cibw
from multibuild.matrix import jobs
from multibuild.platforms.linux import LinuxPlatform
from multibuild.settings import load_settings
from tests.helpers import CI_EVENTS as EVENTS
from tests.helpers import REPO_ROOT, config_copy, engine_environ, git, make_repo

SETTINGS = load_settings(REPO_ROOT / "settings.toml")


BUILD_STEPS = ["source", "stage", "libraries", "build", "repair", "test", "record"]


def multibuild(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in engine_environ().items() if not k.startswith("CIBW_")}
    return subprocess.run(
        [sys.executable, "-m", "multibuild", *args], cwd=cwd, env={**base, **env},
        capture_output=True, text=True, check=False, timeout=900,
    )  # fmt: skip


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


def run_shell(command: str, env: dict[str, str], cwd: Path) -> None:
    done = subprocess.run(["sh", "-c", command], env=env, cwd=cwd, capture_output=True,
                          text=True, check=False, timeout=600)  # fmt: skip
    assert done.returncode == 0, f"{command}\n{done.stdout}\n{done.stderr}"


def test_dry_run_list_and_refusals_from_the_command_line() -> None:
    cron = {**EVENTS["github"]["cron"], "MB_JOB": "cp312-macosx_arm64"}
    done = multibuild("ci", "--dry-run", cwd=REPO_ROOT, env=cron)
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "job      cp312-macosx_arm64 (CPython 3.12, macos arm64)" in out
    assert "trigger  github: cron on main" in out
    assert "commit   main (DAILY_COMMIT: a nightly build)" in out
    assert "4. build     cibuildwheel --only cp312-macosx_arm64 on the runner" in out
    # Nightlies go to anaconda.org (settings.toml: no pre-release container).
    assert (
        "8. index     the wheels to anaconda://scientific-python-nightly-wheels (anaconda-client; "
        "scheduled (nightly) build; no container ([upload] pre_release is empty)" in out
    )
    assert "upload    " not in out
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
    assert re.search(r"^cp311-macosx_x86_64 +no +needs a macOS machine", done.stdout, re.M)

    # A job of another kind of machine is refused, saying why; an unknown job lists them all.
    done = multibuild("ci", "--job", "cp312-win_amd64", "--no-upload", cwd=REPO_ROOT, env={})
    assert done.returncode == 2
    assert "job cp312-win_amd64 cannot run here: needs a Windows machine" in done.stderr
    done = multibuild("ci", "--job", "cp39-manylinux_x86_64", cwd=REPO_ROOT, env={})
    assert done.returncode == 2 and "the jobs are: cp311-manylinux_x86_64, " in done.stderr
    done = multibuild("ci", cwd=REPO_ROOT, env={})
    assert done.returncode == 2 and "give --job ID or set MB_JOB" in done.stderr


def test_a_nightly_whose_commit_excludes_the_python_is_skipped(tmp_path: Path) -> None:
    """DAILY_COMMIT (main) needs Python >= 3.12 (as scipy's main does), BUILD_COMMIT (v1.0)
    does not: the nightly of the cp311 job is planned "skipped" and passes (exit 0); run, it
    builds nothing and uploads a record with status "skipped" and the reason. The commit's
    requires-python is read from the local fixture repository, without a checkout."""
    root = wheels_repo(tmp_path)
    project = tmp_path / "hello-repo"
    pyproject = project / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace('">=3.9"', '">=3.12"'))
    git("commit", "-q", "-am", "drop Python 3.11", cwd=project)
    cron = {**EVENTS["github"]["cron"], "MB_JOB": "cp311-manylinux_x86_64",
            "MB_LOCAL_CONTAINER_ON_CI": "1"}  # fmt: skip
    done = multibuild("ci", "--dry-run", cwd=root, env=cron)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "commit   main (DAILY_COMMIT: a nightly build)" in done.stdout
    assert (
        "skipped  the commit's requires-python is '>=3.12', which excludes CPython 3.11: "
        "nothing to build, and the job passes" in done.stdout
    )
    assert "1. skip" in done.stdout and "cibuildwheel --only" not in done.stdout
    assert "cannot run here" not in done.stdout  # nothing runs, so any machine will do
    plan = json.loads(multibuild("ci", "--dry-run", "--json", cwd=root, env=cron).stdout)
    assert plan["skipped"].startswith("the commit's requires-python is '>=3.12'")
    assert plan["steps"] == ["skip", "record", "upload"]
    # The release (BUILD_COMMIT v1.0, requires-python >= 3.9) builds it.
    push = {**cron, **EVENTS["github"]["push"]}
    built = multibuild("ci", "--dry-run", "--json", cwd=root, env=push)
    assert json.loads(built.stdout)["skipped"] is None

    done = multibuild("ci", cwd=root, env=cron)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cp311-manylinux_x86_64 skipped: the commit's requires-python" in done.stdout
    container = root / "containers" / "pre-release"
    [record_file] = (container / "builds").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "skipped" and record["exit_code"] == 0
    assert record["error"].startswith("the commit's requires-python is '>=3.12'")
    assert record["builds"][0]["python"] == "3.11" and record["builds"][0]["status"] == "skipped"
    assert record["source"]["ref"] == "main" and record["ci"]["nightly"] is True
    assert not list(container.glob("*.whl"))
    assert "skipped" in (container / "history.html").read_text()


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
        # A self-hosted runner's persistent disk: the local container is allowed on CI.
        "MB_LOCAL_CONTAINER_ON_CI": "1",
    }
    # CI's builder is cibuildwheel, which needs a container engine: --builder host runs the
    # same steps here, as `nox -s ci -- JOB` does.
    planned = multibuild("ci", "--builder", "host", "--dry-run", "--json", cwd=root, env=push)
    plan = json.loads(planned.stdout)
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
    # The dry run's plan is what ran: its steps are the ones the record holds, in order.
    ran = ["source", *record["builds"][0]["steps"], "record", "upload"]
    assert plan["steps"] == ran, (plan["steps"], ran)
    assert (root / ".multibuild" / "src" / "pyproject.toml").is_file()  # the plan's source
    stored = [p.name for p in container.rglob("*") if p.is_file()]
    assert record_file.name in stored and f"{record['build_id']}.log" in stored
    # The wheel in the container is the tested one from the wheelhouse.
    assert wheel.read_bytes() == (root / "wheelhouse" / wheel.name).read_bytes()

    # A nightly by hand on a checkout of a release branch: the plan says DAILY_COMMIT to the
    # pre-release container, and that is where the upload puts it (one decision, read by the
    # plan and the upload), never into the release container.
    git("add", "settings.toml", cwd=root)
    git("commit", "-q", "-m", "wheels", cwd=root)
    git("checkout", "-q", "-b", "v1.0.0", cwd=root)
    released = multibuild("ci", "--job", "cp311-manylinux_x86_64", "--dry-run", cwd=root, env={})
    assert "upload    release -> containers/release (release branch v1.0.0)" in released.stdout
    done = multibuild("ci", "--job", "cp311-manylinux_x86_64", "--nightly", cwd=root, env={})
    assert done.returncode == 0, done.stdout + done.stderr
    assert "commit   main (DAILY_COMMIT: a nightly build)" in done.stdout
    assert "upload    pre-release -> containers/pre-release (scheduled (nightly)" in done.stdout
    nightly = max((root / "wheelhouse").glob("*.json"), key=lambda p: p.stat().st_mtime)
    record = json.loads(nightly.read_text())
    assert record["settings"]["nightly"] is True and record["source"]["ref"] == "main"
    assert (container / "builds" / nightly.name).is_file()
    assert not (root / "containers" / "release").exists()


@pytest.mark.slow
def test_a_failing_job_still_uploads_its_record_and_log(tmp_path: Path) -> None:
    root = wheels_repo(tmp_path, {"run_tests() {\n": "run_tests() {\n    exit 3\n"})
    cron = {
        **EVENTS["travis"]["cron"],
        "MB_JOB": "cp311-manylinux_x86_64",
        "MB_LOCAL_CONTAINER_ON_CI": "1",
    }
    done = multibuild("ci", "--builder", "host", cwd=root, env=cron)
    assert done.returncode == 9, done.stdout + done.stderr  # TestFailure
    assert "run_tests failed with exit status 3" in done.stderr
    container = root / "containers" / "pre-release"
    assert not list(container.glob("*.whl"))  # an untested wheel never goes out
    records = [json.loads(p.read_text()) for p in (container / "builds").glob("*.json")]
    assert [r["status"] for r in records] == ["failed"]
    assert records[0]["source"]["ref"] == "main"  # cron: DAILY_COMMIT
    assert any(p.name == f"{records[0]['build_id']}.log" for p in container.rglob("*.log"))


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
    monkeypatch.setattr(LinuxPlatform, "ci_prefix", prefix)
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


@pytest.mark.slow
def test_the_release_sdist_is_built_after_pre_build_and_builds_a_tested_wheel(
    tmp_path: Path,
) -> None:
    """The release job's sdist steps: `sdist` builds BUILD_COMMIT's sdist after config.sh's
    pre_build (with MB_SDIST=1, which the hook sees) into a directory that may hold other
    files, and `build --sdist FILE` builds and tests a wheel from it."""
    seen = 'echo "MB_SDIST=${MB_SDIST:-unset}" >> "$MB_WORK_DIR/sdist-seen"\n'
    root = wheels_repo(tmp_path, {"pre_build() {\n": "pre_build() {\n    " + seen})
    dist = root / "dist"
    dist.mkdir()
    (dist / "scipy-1.0-cp311-cp311-manylinux_2_28_x86_64.whl").write_bytes(b"kept")
    done = multibuild("sdist", "--outdir", "dist", cwd=root, env={})
    assert done.returncode == 0, done.stdout + done.stderr
    assert (root / ".multibuild" / "sdist-seen").read_text() == "MB_SDIST=1\n"
    [sdist] = dist.glob("*.tar.gz")
    assert sdist.name == "mb_hello_c-1.0.tar.gz"
    assert (dist / "scipy-1.0-cp311-cp311-manylinux_2_28_x86_64.whl").read_bytes() == b"kept"
    built = multibuild("build", "--sdist", str(sdist), "--python", "3.11",
                       "--wheelhouse", str(tmp_path / "sdist-check"), cwd=root, env={})  # fmt: skip
    assert built.returncode == 0, built.stdout + built.stderr
    assert list((tmp_path / "sdist-check").glob("mb_hello_c-1.0-cp311-*.whl"))

    # The same commit, another checkout (its files' times are now): the same bytes.
    again = multibuild("sdist", "--outdir", str(tmp_path / "again"), "--work-dir",
                       str(tmp_path / "work-again"), cwd=root, env={})  # fmt: skip
    assert again.returncode == 0, again.stdout + again.stderr
    assert (tmp_path / "again" / sdist.name).read_bytes() == sdist.read_bytes()
