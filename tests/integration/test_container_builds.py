"""The container route for real: the local image built from Debian packages (once per
session; a later session finds it by its content key in podman's storage), the C and the
Fortran fixture built in it by cibuildwheel with the engine's hooks, the wheels installed
in a plain Debian bullseye root (the oldest system the target serves), where the host
route's wheel of the same project is refused; a CI job through the container; and the
engine's failures as exit code 13 (stub engines on a temporary PATH)."""

from __future__ import annotations

import json
import os
import re
import shutil
import stat
import subprocess
import sys
import time
import zipfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import parse_wheel_filename

from multibuild.cibuildwheel import config as cibw
from multibuild.debian.archive import system_archives
from multibuild.errors import ContainerError, TestFailure
from multibuild.images import oci
from multibuild.images.build import digest, simulated_packages
from multibuild.settings import load_settings
from multibuild.util.wheelzip import zip_date_time
from tests.helpers import (
    FIXTURES,
    REPO_ROOT,
    Run,
    build_args,
    compiled,
    config_copy,
    engine_environ,
    git,
    make_repo,
    run_multibuild,
)

GLIBC = (2, 31)
# A cold image (Debian root, CPython 3.11) takes 7-10 minutes on 2 cores; the first test that
# needs it waits for it.
IMAGE_TIMEOUT = 1800
pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(IMAGE_TIMEOUT)]


def require(*tools: str) -> None:
    missing = [tool for tool in tools if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (.ci/apt-packages.txt installs them)")


@pytest.fixture(scope="session")
def image_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def podman_env(image_cache: Path) -> dict[str, str]:
    require("podman")
    return {**os.environ, **oci.engine_environ("podman", os.environ, image_cache / "images")}


@pytest.fixture(scope="session")
def local_image(image_cache: Path) -> dict[str, Any]:
    """The local image with CPython 3.11, built or found by its key: its record."""
    require("podman", "runc", "mmdebstrap")
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "multibuild", "image", "build", "--python", "3.11",
         "--container-engine", "podman", "--cache-dir", str(image_cache), "--json"],
        env=engine_environ(), capture_output=True, text=True, check=False, timeout=IMAGE_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{") :])
    built = "reused" if record["stages"] == {} else f"{time.monotonic() - start:.0f}s"
    print(f"\nlocal image {record['reference']}: {built}")
    return record


def platform_tags(wheel: Path) -> set[str]:
    return {tag.platform for tag in parse_wheel_filename(wheel.name)[3]}


def glibc_of(tag: str) -> tuple[int, int]:
    found = re.match(r"manylinux_(\d+)_(\d+)_", tag)
    if found:
        return int(found.group(1)), int(found.group(2))
    return {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}[
        tag.rpartition("_")[0].rpartition("_")[0] or tag.split("_", maxsplit=1)[0]
    ]


def assert_portable(wheel: Path) -> None:
    tags = platform_tags(wheel)
    assert all(t.startswith("manylinux") for t in tags), tags
    assert max(glibc_of(t) for t in tags) <= GLIBC, wheel.name


def container_build(tmp: Path, fixture: str, image: str, *extra: str, **env: str) -> Run:
    repo = make_repo(fixture, tmp / f"{fixture}-repo")
    config = config_copy(fixture, tmp / f"{fixture}-config")
    return run_multibuild(
        tmp,
        *build_args(repo, config, *extra, test_requires="pytest" if fixture == "fstats" else ""),
        "--builder", "cibuildwheel", "--container-engine", "podman", "--image", image,
        # The hooks' tarballs, mounted read-only into the container.
        "--mirror", str(FIXTURES / "tarballs"),
        env=env,
    )  # fmt: skip


@pytest.fixture(scope="session")
def plain_bullseye(podman_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> str:
    """Debian bullseye's minimal root and nothing else (no compiler, no libgfortran), as an
    image named after its packages' versions."""
    require("mmdebstrap")
    sources = system_archives().suite_sources("bullseye")
    simulate = ["mmdebstrap", "--simulate", "--verbose", "--variant=minbase", "bullseye"]
    done = subprocess.run([*simulate, "/dev/null", *sources], capture_output=True, text=True,
                          check=True, timeout=600)  # fmt: skip
    packages = simulated_packages(done.stdout + done.stderr)
    key = digest("bullseye minbase", *(f"{k} {v}" for k, v in sorted(packages.items())))
    reference = f"localhost/multibuild-test-bullseye-minbase:{key[:16]}"
    exists = subprocess.run(["podman", "image", "exists", reference], env=podman_env, check=False)
    if exists.returncode == 0:
        return reference
    tarball = tmp_path_factory.mktemp("bullseye") / "root.tar"
    subprocess.run(["mmdebstrap", "--quiet", "--variant=minbase", "bullseye", str(tarball),
                    *sources], check=True, timeout=900)  # fmt: skip
    subprocess.run(["podman", "import", "-q", str(tarball), reference], env=podman_env,
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    return reference


@pytest.fixture(scope="session")
def image_cpython(
    local_image: dict[str, Any],
    podman_env: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Path:
    """The image's CPython 3.11 tree, copied out (the bullseye root has no Python 3.11)."""
    dest = tmp_path_factory.mktemp("cpython")
    name = f"multibuild-test-cp-{os.getpid()}"
    subprocess.run(["podman", "create", "--name", name, local_image["reference"]],
                   env=podman_env, check=True, capture_output=True)  # fmt: skip
    try:
        prefix = local_image["pythons"]["cp311-cp311"]["prefix"]
        subprocess.run(["podman", "cp", f"{name}:{prefix}", str(dest / "cpython")],
                       env=podman_env, check=True, capture_output=True)  # fmt: skip
    finally:
        subprocess.run(
            ["podman", "rm", "-f", name], env=podman_env, capture_output=True, check=False
        )
    return dest / "cpython"


Installer = Callable[[Path, str], "subprocess.CompletedProcess[str]"]


@pytest.fixture(scope="session")
def in_bullseye(
    plain_bullseye: str,
    image_cpython: Path,
    local_image: dict[str, Any],
    podman_env: dict[str, str],
) -> Installer:
    """pip installs a wheel into the plain bullseye root, with the image's CPython mounted at
    its own prefix, then runs a script with it (no network: nothing else comes in)."""
    prefix = local_image["pythons"]["cp311-cp311"]["prefix"]

    def install(wheel: Path, script: str) -> subprocess.CompletedProcess[str]:
        command = (
            "export PIP_ROOT_USER_ACTION=ignore PIP_DISABLE_PIP_VERSION_CHECK=1; "
            "echo glibc $(getconf GNU_LIBC_VERSION | cut -d' ' -f2); "
            f"{prefix}/bin/python3 -m pip install -q --no-index --no-compile --target /tmp/site "
            f"/wheels/{wheel.name} && cd /tmp && PYTHONPATH=/tmp/site {prefix}/bin/python3 -c "
            f"'{script}'"
        )
        return subprocess.run(
            ["podman", "run", "--rm", "--network=none",
             "--volume", f"{image_cpython}:{prefix}:ro", "--volume", f"{wheel.parent}:/wheels:ro",
             plain_bullseye, "bash", "-c", command],
            env=podman_env, capture_output=True, text=True, check=False, timeout=600,
        )  # fmt: skip

    return install


def grafted(wheel: Path) -> dict[str, bytes]:
    with zipfile.ZipFile(wheel) as archive:
        return {
            Path(n).name: archive.read(n)
            for n in archive.namelist()
            if ".libs/" in n and not n.endswith("/")
        }


def test_the_c_fixture_in_the_container_installs_on_bullseye(
    tmp_path: Path, local_image: dict[str, Any], image_cache: Path, in_bullseye: Installer
) -> None:
    run = container_build(
        tmp_path, "hello-c", local_image["reference"], MB_CACHE_DIR=str(image_cache)
    )
    assert run.returncode == 0, run.output[-5000:]
    [wheel] = run.wheels()
    assert_portable(wheel)
    record = run.record()
    assert record["status"] == "success" and record["settings"]["builder"] == "cibuildwheel"
    container = record["settings"]["container"]
    assert container["reference"] == local_image["reference"]
    assert container["engine"] == "podman" and container["glibc"] == "2.31"
    assert container["content_key"] == local_image["content_key"]
    assert record["tools"]["gcc"].startswith("10.") and record["tools"]["cibuildwheel"]
    [build] = record["builds"]
    assert [lib["name"] for lib in build["libraries"]] == ["libhello"]  # pre_build, inside
    assert any(Path(g).name.startswith("libhello") for g in build["repair"]["grafted"])
    assert build["repair"]["policy"] == "manylinux_2_31_x86_64"
    assert "seconds" in build["tests"]  # run_tests ran (in cibuildwheel's test venv)
    log = (run.wheelhouse / record["log"]).read_text()
    assert "cibuildwheel --only cp311-manylinux_x86_64" in log or "--only cp311" in log
    assert "greeting:" in log  # run_tests' own output
    assert f"container  {local_image['reference']}" in log
    # The wheel in its normal form (reproducible): every member dated the source's commit.
    epoch = int(record["inputs"]["source_date_epoch"])
    assert epoch > 0
    *day, second = zip_date_time(epoch)
    with zipfile.ZipFile(wheel) as archive:  # zip times have a resolution of 2 s
        assert {info.date_time for info in archive.infolist()} == {(*day, second // 2 * 2)}

    done = in_bullseye(wheel, "import hello_c; print(hello_c.add(2, 3), hello_c.greeting())")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "glibc 2.31" in done.stdout and "5 " in done.stdout


def test_the_fortran_fixture_in_the_container_and_on_the_host(
    tmp_path: Path, local_image: dict[str, Any], image_cache: Path, in_bullseye: Installer
) -> None:
    run = container_build(
        tmp_path / "container", "fstats", local_image["reference"],
        "-C", "setup-args=-Doptimization=1", commit="main", MB_CACHE_DIR=str(image_cache),
    )  # fmt: skip
    assert run.returncode == 0, run.output[-5000:]
    [wheel] = run.wheels()
    assert_portable(wheel)
    [build] = run.record()["builds"]
    assert build["tests"]["counts"] == {"passed": 4}  # pytest in cibuildwheel's clean venv
    libs = grafted(wheel)
    assert any(n.startswith("libfstats-") for n in libs), list(libs)
    [gfortran] = [data for n, data in libs.items() if n.startswith("libgfortran")]
    # The runtime of the image's compiler (GCC 10), not the host's (GCC 12).
    assert b"GFORTRAN_10" in gfortran and b"GFORTRAN_12" not in gfortran

    # The same project on the host route: this machine's glibc and GCC.
    host = run_multibuild(
        tmp_path / "host",
        *build_args(make_repo("fstats", tmp_path / "host" / "repo"),
                    config_copy("fstats", tmp_path / "host" / "config"),
                    "-C", "setup-args=-Doptimization=1", commit="main", test_requires="pytest"),
    )  # fmt: skip
    assert host.returncode == 0, host.output[-3000:]
    [host_wheel] = host.wheels()
    assert max(glibc_of(t) for t in platform_tags(host_wheel)) > GLIBC, host_wheel.name

    script = "import fstats_py as f; print(f.format_mean([1, 2]), f.weighted_mean([1, 3], [3, 1]))"
    done = in_bullseye(wheel, script)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "glibc 2.31" in done.stdout and "1.5000 1.5" in done.stdout
    refused = in_bullseye(host_wheel, script)
    assert refused.returncode != 0
    assert "is not a supported wheel on this platform" in refused.stdout + refused.stderr


def test_a_restored_build_cache_hits_in_the_container(
    tmp_path: Path, local_image: dict[str, Any], image_cache: Path
) -> None:
    """The container route's nightly: a fresh work dir and a fresh checkout whose build cache
    (the mount of <cache>/container, what CI restores) another build filled. meson's build dir
    is kept there with its sources' dates: the same commit compiles nothing, one changed C file
    compiles that file alone; every record gives ccache's hits and misses and what the build
    dir held."""
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / "images").symlink_to(image_cache / "images")  # the local image's records
    builds = {}
    for work in ("first", "restored", "changed"):
        repo = make_repo("fstats", tmp_path / work / "repo")
        if work == "changed":
            source = repo / "src" / "_fstats.c"
            source.write_text(source.read_text() + "\nint fstats_probe(void) { return 7; }\n")
            git("commit", "-qam", "code", cwd=repo)
            git("tag", "-f", "v1.0", cwd=repo)
        run = run_multibuild(
            tmp_path / work,
            *build_args(repo, config_copy("fstats", tmp_path / work / "config"),
                        test_requires="pytest"),
            "--builder", "cibuildwheel", "--container-engine", "podman",
            "--image", local_image["reference"], "--mirror", str(FIXTURES / "tarballs"),
            env={"MB_CACHE_DIR": str(cache)},
        )  # fmt: skip
        assert run.returncode == 0, run.output[-5000:]
        [build] = run.record()["builds"]
        builds[work] = (build, [name.rsplit("/", 1)[-1] for name in compiled(run)])
        # The build requirements at fixed paths: an isolated build's random /tmp/build-env-*
        # would be in meson's configuration and on the compile lines.
        log = (run.wheelhouse / f"{run.record()['build_id']}.log").read_text()
        assert "python -m build" in log and "--no-isolation" in log, log[-3000:]
        assert "/tmp/build-env-" not in log, log[-3000:]
    (first, first_compiled), (restored, nothing), (changed, one) = builds.values()
    assert first["build_dir"] == "new: the cache held no build dir", first
    assert first["ccache"]["misses"] >= 1 and first["ccache"]["hits"] == 0, first
    assert "src__fstats.c.o" in first_compiled, first_compiled
    repo_files = (tmp_path / "first" / "repo").rglob("*")
    files = sum(1 for p in repo_files if p.is_file() and ".git" not in p.parts)
    assert restored["build_dir"] == f"kept: {files} source files unchanged, 0 changed or new"
    assert nothing == [], nothing
    assert restored["ccache"]["misses"] == 0, restored
    assert changed["build_dir"] == f"kept: {files - 1} source files unchanged, 1 changed or new"
    assert one == ["src__fstats.c.o"], one
    assert changed["ccache"]["misses"] == 1, changed
    assert (cache / "container" / "manylinux_x86_64" / "ccache").is_dir()


def test_a_ci_job_runs_in_the_local_image(
    tmp_path: Path, local_image: dict[str, Any], image_cache: Path
) -> None:
    """`nox -s ci -- JOB --builder cibuildwheel`: CI's cibuildwheel.toml, its commands, the
    local image (found by its content key) instead of the official one."""
    project = make_repo("hello-c", tmp_path / "hello-repo")
    root = tmp_path / "wheels"
    config_copy("hello-c", root / "hello-config")
    (root / "settings.toml").write_text(
        f'[project]\nname = "hello-c"\nrepo = "{project}"\nBUILD_COMMIT = "v1.0"\n'
        'config = "hello-config/config.sh"\n[build]\nsystem_tools = ["git"]\n'
        '[matrix]\npython = ["3.11"]\nlinux = ["x86_64"]\n'
    )
    shutil.copytree(REPO_ROOT / "scripts", root / "scripts")
    shutil.copytree(REPO_ROOT / "multibuild", root / "multibuild",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (root / cibw.CONFIG_FILE).write_text(cibw.render(load_settings(root / "settings.toml")))
    (root / ".gitignore").write_text("/.multibuild/\n/wheelhouse/\n")
    git("init", "-q", "-b", "main", cwd=root)
    done = subprocess.run(
        [sys.executable, "-m", "multibuild", "ci", "--job", "cp311-manylinux_x86_64",
         "--builder", "cibuildwheel", "--container-engine", "podman", "--no-upload"],
        cwd=root, env=engine_environ(MB_CACHE_DIR=str(image_cache)),
        capture_output=True, text=True, check=False, timeout=IMAGE_TIMEOUT,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert "image    the local image made from Debian bullseye packages" in output
    assert "1. image" in output and "in the local image's container" in output
    assert f"image: up to date: {local_image['reference']}" in output
    [wheel] = (root / "wheelhouse").glob("*.whl")
    assert_portable(wheel)
    [record_file] = (root / "wheelhouse").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["settings"]["job"] == "cp311-manylinux_x86_64"
    assert record["settings"]["container"]["origin"] == "local"
    assert record["settings"]["container"]["reference"] == local_image["reference"]
    assert (root / "wheelhouse" / record["log"]).is_file()
    # The image commands see it too.
    listed = subprocess.run(
        [sys.executable, "-m", "multibuild", "image", "list", "--cache-dir", str(image_cache),
         "--container-engine", "podman"],
        env=engine_environ(), capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert local_image["reference"] in listed.stdout, listed.stdout + listed.stderr
    shown = subprocess.run(
        [sys.executable, "-m", "multibuild", "image", "show", local_image["reference"],
         "--cache-dir", str(image_cache), "--container-engine", "podman"],
        env=engine_environ(), capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert "Debian bullseye, glibc 2.31" in shown.stdout, shown.stdout + shown.stderr
    assert "cp311-cp311: python3.11_3.11.2.orig.tar" in shown.stdout


# -- the engine's failures -------------------------------------------------------------------


def stub(bin_dir: Path, name: str, script: str) -> None:
    bin_dir.mkdir(parents=True, exist_ok=True)
    path = bin_dir / name
    path.write_text("#!/bin/sh\n" + script)
    path.chmod(path.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)


NO_DAEMON = (
    'case "$1" in info|version) echo "Cannot connect to the Docker daemon at '
    'unix:///var/run/docker.sock. Is the docker daemon running?" >&2; exit 1;; esac\nexit 1\n'
)
REFUSING_RUNTIME = """\
case "$1" in
  info) echo "host: stub"; exit 0 ;;
  image) echo '[{"Id": "0f1e2d", "Config": {"Labels": {}}}]'; exit 0 ;;
  run|create|start)
    echo "Error: runc: runc create failed: unable to start container process: error during \
container init: error setting rlimits for ready process: error setting rlimit type 7: \
operation not permitted: OCI permission denied" >&2
    exit 126 ;;
esac
exit 1
"""


@pytest.fixture
def failing(tmp_path: Path) -> Iterator[tuple[Path, Path, Path]]:
    yield (
        make_repo("hello-c", tmp_path / "repo"),
        config_copy("hello-c", tmp_path / "cfg"),
        tmp_path,
    )


def assert_container_error(run: Run, *expected: str) -> None:
    assert run.returncode == ContainerError.return_code, run.output[-3000:]
    for text in expected:
        assert text in run.output, (text, run.output[-3000:])
    assert "Traceback" not in run.output
    record = run.record()  # a failed build still leaves its record and log
    assert record["status"] == "failed" and record["exit_code"] == ContainerError.return_code
    assert (run.wheelhouse / record["log"]).is_file()


def test_no_engine_installed(failing: tuple[Path, Path, Path]) -> None:
    repo, config, tmp = failing
    empty = tmp / "empty-bin"
    empty.mkdir()
    run = run_multibuild(
        tmp, *build_args(repo, config, "--builder", "cibuildwheel", "--container-engine", "podman"),
        env={"PATH": str(empty)},
    )  # fmt: skip
    assert_container_error(
        run, "podman is not installed (apt-get install podman runc catatonit", "--builder host"
    )


def test_an_engine_that_does_not_answer(failing: tuple[Path, Path, Path]) -> None:
    repo, config, tmp = failing
    stub(tmp / "bin", "docker", NO_DAEMON)
    run = run_multibuild(
        tmp, *build_args(repo, config, "--builder", "cibuildwheel", "--image", "localhost/x:1"),
        env={"PATH": str(tmp / "bin")},
    )  # fmt: skip
    assert_container_error(
        run, "`docker info` failed: Cannot connect to the Docker daemon", "podman is not installed"
    )


def test_a_runtime_that_refuses_to_start_containers(failing: tuple[Path, Path, Path]) -> None:
    repo, config, tmp = failing
    stub(tmp / "bin", "podman", REFUSING_RUNTIME)
    run = run_multibuild(
        tmp,
        *build_args(repo, config, "--builder", "cibuildwheel", "--container-engine", "podman",
                    "--image", "localhost/multibuild-stub:1"),
        env={"PATH": f"{tmp / 'bin'}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert_container_error(
        run,
        "podman cannot start a container from localhost/multibuild-stub:1",
        "OCI permission denied",
        "default_ulimits = []",
    )


def test_a_missing_image(failing: tuple[Path, Path, Path], podman_env: dict[str, str]) -> None:
    repo, config, tmp = failing
    run = run_multibuild(
        tmp,
        *build_args(repo, config, "--builder", "cibuildwheel", "--container-engine", "podman",
                    "--image", "localhost/multibuild-no-such-image:0"),
    )  # fmt: skip
    assert_container_error(
        run,
        "image localhost/multibuild-no-such-image:0 is not in podman's storage",
        "python -m multibuild image build",
    )


def test_the_host_route_needs_no_engine(failing: tuple[Path, Path, Path]) -> None:
    repo, config, tmp = failing
    stub(tmp / "bin", "docker", NO_DAEMON)
    stub(tmp / "bin", "podman", REFUSING_RUNTIME)
    run = run_multibuild(
        tmp, *build_args(repo, config, "--builder", "host"),
        env={"PATH": f"{tmp / 'bin'}:{os.environ['PATH']}"},
    )  # fmt: skip
    assert run.returncode == 0, run.output[-3000:]
    assert len(run.wheels()) == 1 and "container" not in run.record()["settings"]


def test_a_failing_run_tests_in_the_container_is_a_test_failure(
    tmp_path: Path, local_image: dict[str, Any], image_cache: Path
) -> None:
    repo = make_repo("hello-c", tmp_path / "repo")
    config = config_copy(
        "hello-c", tmp_path / "cfg", {"run_tests() {\n": "run_tests() {\n    exit 3\n"}
    )
    run = run_multibuild(
        tmp_path,
        *build_args(repo, config, "--builder", "cibuildwheel", "--container-engine", "podman",
                    "--image", local_image["reference"], "--mirror", str(FIXTURES / "tarballs")),
        env={"MB_CACHE_DIR": str(image_cache)},
    )  # fmt: skip
    assert run.returncode == TestFailure.return_code, run.output[-3000:]
    assert "run_tests failed in cibuildwheel for cp311-manylinux_x86_64" in run.output
    assert not run.wheels()  # an untested wheel never reaches the wheelhouse
    assert run.record()["status"] == "failed"
