"""CI's aarch64 Linux jobs here, under QEMU user emulation (binfmt_misc), as cibuildwheel users
run them on x86_64 machines: the aarch64 local image (Debian bullseye's arm64 packages, its
CPython cross-compiled on the host), a CI job of the C fixture through it end to end (its
library built by build_library in pre_build, auditwheel's repair, its tests, all emulated),
and scipy's aarch64 pre_build on the real scipy-openblas32 aarch64 wheel with a C program
that links and calls the library.

Emulation is set up once per machine, as root (`.ci/run` does it: packages, the binfmt_misc
mount); these tests only read /proc and skip without it (a failure under
MB_REQUIRE_SERVERS=1). Cold, the image took 15 minutes on 2 cores at load 7-10 (the arm64
root 4m46s, the cross-compiled CPython 6m43s-11m03s, the emulated final stage 3-4 minutes); a
later session finds it by its content key in podman's storage."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Any

import pytest
from packaging.utils import parse_wheel_filename

from multibuild.cibuildwheel import config as cibw
from multibuild.images import oci
from multibuild.images.emulation import emulation_problem
from multibuild.settings import load_settings
from tests.helpers import REPO_ROOT, config_copy, engine_environ, git, make_repo

IMAGE_TIMEOUT = 2400
JOB = "cp311-manylinux_aarch64"
OPENBLAS_WHEEL_VERSION = load_settings(REPO_ROOT / "settings.toml").libraries["scipy_openblas32"]
pytestmark = [pytest.mark.slow, pytest.mark.containers, pytest.mark.timeout(IMAGE_TIMEOUT)]

# Calls the library as scipy does (its prefixed symbols): its config string, a ddot and a
# 2x2 dgemm through the Fortran interface.
PROBE = r"""
#include <stdio.h>
char *scipy_openblas_get_config(void);
double scipy_cblas_ddot(int n, const double *x, int incx, const double *y, int incy);
void scipy_dgemm_(const char *ta, const char *tb, const int *m, const int *n, const int *k,
                  const double *alpha, const double *a, const int *lda, const double *b,
                  const int *ldb, const double *beta, double *c, const int *ldc);
int main(void) {
    double x[3] = {1, 2, 3}, y[3] = {4, 5, 6};
    double a[4] = {1, 2, 3, 4}, b[4] = {5, 6, 7, 8}, c[4] = {0, 0, 0, 0};
    double one = 1, zero = 0;
    int two = 2;
    scipy_dgemm_("N", "N", &two, &two, &two, &one, a, &two, b, &two, &zero, c, &two);
    printf("%s\n%g\n%g %g %g %g\n", scipy_openblas_get_config(),
           scipy_cblas_ddot(3, x, 1, y, 1), c[0], c[1], c[2], c[3]);
    return 0;
}
"""


def require_emulation() -> None:
    missing = [
        tool
        for tool in ("podman", "runc", "mmdebstrap", "arch-test", "aarch64-linux-gnu-gcc")
        if shutil.which(tool) is None
    ]
    if missing:
        pytest.skip(f"needs {', '.join(missing)} (.ci/apt-packages.txt installs them)")
    problem = emulation_problem("aarch64")
    if problem is not None:
        pytest.skip(problem)


@pytest.fixture(scope="session")
def aarch64_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("aarch64-cache")


@pytest.fixture(scope="session")
def podman_env(aarch64_cache: Path) -> dict[str, str]:
    return {**os.environ, **oci.engine_environ("podman", os.environ, aarch64_cache / "images")}


@pytest.fixture(scope="session")
def aarch64_image(aarch64_cache: Path) -> dict[str, Any]:
    """The aarch64 local image with CPython 3.11, built or found by its key: its record."""
    require_emulation()
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "multibuild", "image", "build", "--arch", "aarch64",
         "--python", "3.11", "--container-engine", "podman", "--cache-dir", str(aarch64_cache),
         "--json"],
        env=engine_environ(), capture_output=True, text=True, check=False, timeout=IMAGE_TIMEOUT,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record: dict[str, Any] = json.loads(done.stdout[done.stdout.index("{") :])
    built = "reused" if record["stages"] == {} else f"{time.monotonic() - start:.0f}s"
    print(f"\naarch64 local image {record['reference']}: {built}")
    return record


def test_the_aarch64_image_is_an_emulated_manylinux_root(
    aarch64_image: dict[str, Any], podman_env: dict[str, str]
) -> None:
    assert aarch64_image["platform_tag"] == "manylinux_2_31_aarch64"
    assert aarch64_image["reference"].startswith("localhost/multibuild-manylinux_2_31_aarch64:")
    assert aarch64_image["glibc"] == "2.31" and aarch64_image["suite"] == "bullseye"
    assert aarch64_image["pythons"]["cp311-cp311"]["version"] == "3.11.2"
    script = (
        "uname -m; getconf GNU_LIBC_VERSION; gcc -dumpfullversion; echo $AUDITWHEEL_PLAT; "
        "file -b /opt/python/cp311-cp311/bin/python3.11 | cut -d, -f2; "
        "/opt/python/cp311-cp311/bin/python -c 'import platform, sysconfig; "
        'print(platform.machine(), sysconfig.get_config_var("CC"), sysconfig.get_platform())\''
    )
    done = subprocess.run(
        ["podman", "run", "--rm", "--network=none", aarch64_image["reference"], "bash", "-c",
         script],
        env=podman_env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    machine, libc, gcc, plat, elf, python = done.stdout.splitlines()
    assert machine == "aarch64" and libc == "glibc 2.31" and gcc.startswith("10.")
    assert plat == "manylinux_2_31_aarch64" and "ARM aarch64" in elf
    # The cross-compiled interpreter names the compiler the image itself has.
    assert python == "aarch64 aarch64-linux-gnu-gcc linux-aarch64"


def test_an_aarch64_ci_job_runs_here_under_emulation(
    tmp_path: Path, aarch64_image: dict[str, Any], aarch64_cache: Path
) -> None:
    """`ci --job cp311-manylinux_aarch64 --builder cibuildwheel`: CI's cibuildwheel.toml,
    the C fixture's pre_build (build_library: libhello), auditwheel's repair and run_tests,
    all in the aarch64 image under emulation; `ci --list` says it runs here."""
    project = make_repo("hello-c", tmp_path / "hello-repo")
    root = tmp_path / "wheels"
    config_copy("hello-c", root / "hello-config")
    (root / "settings.toml").write_text(
        f'[project]\nname = "hello-c"\nrepo = "{project}"\nBUILD_COMMIT = "v1.0"\n'
        'config = "hello-config/config.sh"\n[build]\nsystem_tools = ["git"]\n'
        '[matrix]\npython = ["3.11"]\nlinux = ["x86_64", "aarch64"]\nmusllinux = ["aarch64"]\n'
    )
    shutil.copytree(REPO_ROOT / "scripts", root / "scripts")
    shutil.copytree(REPO_ROOT / "multibuild", root / "multibuild",
                    ignore=shutil.ignore_patterns("__pycache__"))  # fmt: skip
    (root / cibw.CONFIG_FILE).write_text(cibw.render(load_settings(root / "settings.toml")))
    (root / ".gitignore").write_text("/.multibuild/\n/wheelhouse/\n")
    git("init", "-q", "-b", "main", cwd=root)
    env = engine_environ(MB_CACHE_DIR=str(aarch64_cache))
    listed = subprocess.run(
        [sys.executable, "-m", "multibuild", "ci", "--list", "--builder", "cibuildwheel",
         "--container-engine", "podman", "--json"],
        cwd=root, env=env, capture_output=True, text=True, check=False, timeout=120,
    )  # fmt: skip
    assert listed.returncode == 0, listed.stderr
    rows = {row["job"]: row for row in json.loads(listed.stdout)}
    assert rows[JOB]["runs_here"] and "under QEMU emulation" in rows[JOB]["reason"]
    musl = rows["cp311-musllinux_aarch64"]
    assert not musl["runs_here"] and "no musl image can be made from Debian" in musl["reason"]

    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "multibuild", "ci", "--job", JOB, "--builder", "cibuildwheel",
         "--container-engine", "podman", "--no-upload"],
        cwd=root, env=env, capture_output=True, text=True, check=False, timeout=IMAGE_TIMEOUT,
    )  # fmt: skip
    seconds = time.monotonic() - start
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    print(f"\n{JOB} (hello-c) under emulation: {seconds:.0f}s")
    assert f"image: up to date: {aarch64_image['reference']}" in output
    [wheel] = (root / "wheelhouse").glob("*.whl")
    # manylinux_2_31_aarch64 or lower (auditwheel adds every older policy the wheel meets).
    tags = {tag.platform for tag in parse_wheel_filename(wheel.name)[3]}
    assert "manylinux_2_31_aarch64" in tags, wheel.name
    for tag in tags:
        found = re.fullmatch(r"manylinux_2_(\d+)_aarch64|manylinux2014_aarch64", tag)
        assert found and int(found.group(1) or 17) <= 31, wheel.name
    [record_file] = (root / "wheelhouse").glob("*.json")
    record = json.loads(record_file.read_text())
    assert record["status"] == "success" and record["settings"]["job"] == JOB
    container = record["settings"]["container"]
    assert container["reference"] == aarch64_image["reference"]
    assert container["platform_tag"] == "manylinux_2_31_aarch64"
    [build] = record["builds"]
    assert [lib["name"] for lib in build["libraries"]] == ["libhello"]  # pre_build, emulated
    assert build["repair"]["policy"] == "manylinux_2_31_aarch64"
    assert any(Path(g).name.startswith("libhello") for g in build["repair"]["grafted"])
    assert "seconds" in build["tests"]  # run_tests ran, emulated
    log = (root / "wheelhouse" / record["log"]).read_text()
    assert "greeting:" in log
    with zipfile.ZipFile(wheel) as archive:
        [grafted] = [n for n in archive.namelist() if ".libs/libhello" in n]
        elf = archive.read(grafted)
    assert elf[:4] == b"\x7fELF" and int.from_bytes(elf[18:20], "little") == 183  # EM_AARCH64


def test_scipy_aarch64_pre_build_on_the_real_openblas_wheel(
    tmp_path: Path, aarch64_image: dict[str, Any], podman_env: dict[str, str]
) -> None:
    """config.sh's pre_build as scipy's aarch64 jobs run it, in the emulated image: the real
    scipy-openblas32 aarch64 wheel installed (offline, from the downloaded file), laid out in
    the prefix and relinked to the image's libgfortran.so.5; a C program built against the
    prefix's .pc calls ddot and dgemm and prints the library's config."""
    wheels = tmp_path / "wheels"
    done = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--isolated", "--only-binary=:all:",
         "--no-deps", "--platform", "manylinux2014_aarch64", "--python-version", "3.11",
         f"scipy-openblas32=={OPENBLAS_WHEEL_VERSION}", "-d", str(wheels)],
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull}, capture_output=True, text=True,
        check=False, timeout=600,
    )  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"scipy-openblas32 for aarch64 not downloadable: {done.stderr[-300:]}")
    work = tmp_path / "work"
    (work / "scipy-src").mkdir(parents=True)
    (work / "scipy-src" / "LICENSE.txt").write_text("Copyright (c) 2003, SciPy Developers.\n")
    (work / "probe.c").write_text(PROBE)
    python = "/opt/python/cp311-cp311/bin/python"
    script = (
        f"set -e; {python} -m venv /tmp/venv; "
        "bash /mb/repo/multibuild/engine/shell/run_hook.sh /mb/repo/config.sh pre_build; "
        "export PKG_CONFIG_PATH=/mb/work/prefix/lib/pkgconfig; "
        "gcc -o /mb/work/probe /mb/work/probe.c $(pkg-config --cflags --libs scipy-openblas) "
        "-Wl,-rpath,/mb/work/prefix/lib; "
        "patchelf --print-needed /mb/work/prefix/lib/libscipy_openblas.so | tr '\\n' ' '; echo; "
        "/mb/work/probe"
    )
    env = {
        "MB_HOOK_STATE": "/mb/work/hook-state", "MB_PYTHON": "/tmp/venv/bin/python",
        "PYTHON_EXE": "/tmp/venv/bin/python", "MB_ENGINE_ROOT": "/mb/repo", "MB_JOBS": "2",
        "CONFIG_DIR": "/mb/repo", "BUILD_PREFIX": "/mb/work/prefix",
        "REPO_DIR": "/mb/work/scipy-src", "OPENBLAS_SOURCE": "wheel",
        "SCIPY_OPENBLAS32_VERSION": OPENBLAS_WHEEL_VERSION,
        "PIP_NO_INDEX": "1", "PIP_FIND_LINKS": "/mb/wheels",
    }  # fmt: skip
    ran = subprocess.run(
        ["podman", "run", "--rm", "--network=none", "--workdir", "/mb/work",
         "--volume", f"{REPO_ROOT}:/mb/repo:ro", "--volume", f"{wheels}:/mb/wheels:ro",
         "--volume", f"{work}:/mb/work",
         *(arg for k, v in env.items() for arg in ("--env", f"{k}={v}")),
         aarch64_image["reference"], "bash", "-c", script],
        env=podman_env, capture_output=True, text=True, check=False, timeout=1200,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stdout[-4000:] + ran.stderr[-4000:]
    lines = ran.stdout.splitlines()
    assert "scipy-openblas32 from /tmp/venv/" in ran.stdout
    needed, config, dot, gemm = lines[-4:]
    # pre_build relinked the library to the image's gfortran runtime (GCC 10's libgfortran5).
    assert "libgfortran.so.5" in needed.split() and "libgfortran-" not in needed
    # The library's own config string (QEMU's CPU makes its DYNAMIC_ARCH pick armv9sme).
    assert config.startswith("OpenBLAS 0.3.") and "DYNAMIC_ARCH" in config, config
    assert float(dot) == 32.0
    assert [float(v) for v in gemm.split()] == [23.0, 34.0, 31.0, 46.0]
