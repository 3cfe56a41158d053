"""What a project's config.sh and settings say reaches the build and the tests: variables
pre_build exports reach the wheel build; a non-isolated build installs what the backend asks
for; the tests run on the project's own test sources, with node ids relative to where they
run; the test step moves the prefix away and hides the system's copies of grafted libraries,
so a wheel that is not self-contained fails there."""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from multibuild.engine.testing import prepare_test_venv, run_wheel_tests
from multibuild.errors import TestFailure
from multibuild.log import Logger
from multibuild.platforms.linux import LinuxPlatform
from tests.helpers import FIXTURES, build_args, config_copy, make_repo, run_multibuild


@pytest.mark.slow
def test_exports_test_sources_and_node_ids(tmp_path: Path) -> None:
    repo = make_repo("hello-c", tmp_path / "repo")
    config = config_copy(
        "hello-c",
        tmp_path / "project",
        edit={
            "pre_build() {\n": "pre_build() {\n    export HELLO_C_FLAVOUR=exported\n",
            "run_tests() {\n": (
                "run_tests() {\n"
                "    python -c 'import hello_c; assert hello_c.flavour() == \"exported\"'\n"
                "    python -m pytest -q -p no:cacheprovider tests"
                " --deselect tests/test_hello.py::test_left_out_by_node_id\n"
            ),
        },
    )
    (config.parent / "settings.toml").write_text(
        '[build]\ntest_requires = ["pytest"]\ntest_sources = ["tests"]\n'
    )
    args = build_args(repo, config)
    args.remove("--test-requires")
    args.remove("")
    run = run_multibuild(tmp_path, *args)
    assert run.returncode == 0, run.output
    [build] = run.record()["builds"]
    assert build["exported"] == ["HELLO_C_FLAVOUR"]
    assert build["tests"]["counts"] == {"passed": 1, "deselected": 1}
    assert "pre_build exported for the build: HELLO_C_FLAVOUR" in run.output


@pytest.mark.slow
def test_a_non_isolated_build_installs_what_the_backend_asks_for(tmp_path: Path) -> None:
    fixture = FIXTURES / "dynamic-backend"
    repo = make_repo("dynamic-backend", tmp_path / "mb-dynamic")
    shutil.copytree(fixture / "needed", tmp_path / "needed")
    args = [
        *build_args(repo, fixture / "config.sh"),
        "--no-isolation",
        "-C",
        f"needed={tmp_path / 'needed'}",
    ]
    run = run_multibuild(tmp_path, *args)
    assert run.returncode == 0, run.output
    # The kept build venv is the project's own.
    assert (run.work_dir / "venvs" / "build-mb-dynamic-cp311").is_dir()


def test_system_copies_of_grafted_libraries_are_hidden() -> None:
    """The names auditwheel gives grafted libraries lead to the system's own copies, and the
    wrapper hides them (as root: a private mount namespace)."""
    platform = LinuxPlatform()
    [copy] = platform.system_copies(["pkg.libs/libgfortran-040039e1.so.5.0.0"])
    assert copy.name.startswith("libgfortran.so.5") and copy.is_file()
    assert platform.system_copies(["pkg.libs/libz-0123abcd.so.1.2.13"]) == []  # Python's own
    load = [sys.executable, "-c", "import ctypes; ctypes.CDLL('libgfortran.so.5')"]
    assert subprocess.run(load, check=False).returncode == 0
    wrapper = platform.hiding_wrapper([copy])
    assert wrapper, "this machine cannot hide files from the tests (needs root and unshare)"
    hidden = subprocess.run([*wrapper, *load], capture_output=True, text=True, check=False)
    assert hidden.returncode != 0 and "file too short" in hidden.stderr


@pytest.mark.slow
def test_an_unrepaired_wheel_fails_the_test_step(tmp_path: Path) -> None:
    """The Fortran fixture's wheel before the repair loads libfstats from the prefix (meson
    keeps an RPATH there) and libgfortran from the system: the test step fails it."""
    repo = make_repo("fstats", tmp_path / "repo")
    config = config_copy("fstats", tmp_path / "config")
    run = run_multibuild(tmp_path, *build_args(repo, config, test_requires="pytest"))
    assert run.returncode == 0, run.output
    [build] = run.record()["builds"]
    # The repaired wheel passed with the system's libgfortran hidden: it carries its own.
    assert any("libgfortran" in hidden for hidden in build["tests"]["isolation"]["hidden"])
    [unrepaired] = (run.work_dir / "dist" / "cp311").glob("*.whl")
    logger = Logger(stream=io.StringIO())
    python = Path(sys.executable)
    venv = prepare_test_venv(
        python, tmp_path / "test-venv", ["pytest"], LinuxPlatform(), logger, env=os.environ
    )
    with pytest.raises(TestFailure, match="run_tests failed"):
        run_wheel_tests(
            unrepaired,
            venv,
            config=config,
            prefix=run.work_dir / "prefix",
            hook_env=os.environ,
            run_dir=tmp_path / "run",
            logger=logger,
            platform=LinuxPlatform(),
            grafted=build["repair"]["grafted"],
        )
    assert (run.work_dir / "prefix" / "lib").is_dir()  # back in place after the tests
