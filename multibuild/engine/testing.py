"""Testing the repaired wheel: installed in a fresh venv, config.sh's run_tests run there,
outside the source tree and with no library path pointing at the build prefix, so a wheel
that is not self-contained fails."""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from multibuild.engine.frontend import create_venv, pip_install
from multibuild.engine.hooks import run_hook, test_environment
from multibuild.errors import TestFailure
from multibuild.log import Logger
from multibuild.platforms import Platform
from multibuild.util.files import remove_tree

# pytest's closing line, e.g. "== 12 passed, 1 skipped, 2 deselected in 3.4s ==".
PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")


@dataclass(frozen=True)
class TestVenv:
    __test__ = False  # not a pytest test class
    venv: Path
    python: Path


def prepare_test_venv(
    python: Path,
    venv: Path,
    test_requires: Sequence[str],
    platform: Platform,
    logger: Logger,
    *,
    env: Mapping[str, str],
) -> TestVenv:
    venv_python = create_venv(python, venv, platform, logger, TestFailure, env=env)
    pip_install(
        venv_python, list(test_requires), logger, TestFailure, env=env, what="test requirements"
    )
    return TestVenv(venv, venv_python)


def pytest_counts(output: str) -> dict[str, int]:
    """Counts from the last pytest summary line in the output, if any."""
    for line in reversed(output.splitlines()):
        if " in " in line and ("passed" in line or "failed" in line or "error" in line):
            counts: dict[str, int] = {}
            for number, word in PYTEST_COUNTS.findall(line):
                key = "errors" if word.startswith("error") else word
                counts[key] = counts.get(key, 0) + int(number)
            if counts:
                return counts
    return {}


PYTEST_STOP = (
    "# Written by multibuild: ends pytest's search for a config file here, so the tests of\n"
    "# the built wheel never take the settings of a repository this directory lies in, and\n"
    "# node ids are relative to this directory (--deselect tests/test_x.py::test_y works).\n"
    "[pytest]\n"
)
PYTEST_CONFIGS = ("pytest.ini", ".pytest.ini", "pyproject.toml", "tox.ini", "setup.cfg")


def prepare_run_dir(run_dir: Path, source: Path | None, test_sources: Sequence[str]) -> None:
    """An empty directory with the project's test sources (settings' test_sources: paths in
    its source tree), and a pytest config unless those bring their own."""
    remove_tree(run_dir)
    run_dir.mkdir(parents=True)
    for name in test_sources:
        if source is None:
            raise TestFailure(f"test_sources names {name}, but there is no source tree")
        origin = (source / name).resolve()
        if not origin.is_relative_to(source.resolve()) or not origin.exists():
            raise TestFailure(f"test_sources: {name} is not a path in the project's source")
        target = run_dir / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if origin.is_dir():
            shutil.copytree(origin, target, symlinks=True)
        else:
            shutil.copy2(origin, target)
    if not any((run_dir / name).exists() for name in PYTEST_CONFIGS):
        (run_dir / "pytest.ini").write_text(PYTEST_STOP)


@contextmanager
def prefix_out_of_sight(prefix: Path) -> Iterator[None]:
    """The build prefix moved away while the tests run (a wheel whose libraries still point
    there, by RPATH or otherwise, fails), and back afterwards."""
    hidden = prefix.with_name(f"{prefix.name}.moved-away-{os.getpid()}")
    moved = prefix.exists()
    if moved:
        prefix.rename(hidden)
    try:
        yield
    finally:
        if moved:
            hidden.rename(prefix)


def run_wheel_tests(
    wheel: Path,
    venv: TestVenv,
    *,
    config: Path,
    prefix: Path,
    hook_env: Mapping[str, str],
    run_dir: Path,
    logger: Logger,
    platform: Platform,
    prefix_dir: Path | None = None,
    grafted: Sequence[str] = (),
    source: Path | None = None,
    test_sources: Sequence[str] = (),
) -> dict[str, object]:
    """Install the wheel in the test venv and run config.sh's run_tests in `run_dir`: the build
    prefix moved away, and the system's own copies of the libraries the repair grafted hidden
    (Linux, as root: a private mount namespace), so a wheel that is not self-contained fails.
    The result says what was hidden, or why not."""
    env = test_environment(hook_env, prefix, venv=venv.venv, python=venv.python)
    # The venv is fresh; the wheel's own dependencies come from the index, as for a user.
    pip_install(venv.python, [wheel], logger, TestFailure, env=env, what=wheel.name)
    prepare_run_dir(run_dir, source, test_sources)
    env["MB_WHEEL"] = str(wheel)
    notes = run_dir.parent / f"{run_dir.name}-notes.txt"  # outside the tests' own directory
    notes.unlink(missing_ok=True)
    env["MB_TEST_NOTES"] = str(notes)
    copies = platform.system_copies(grafted)
    wrapper = platform.hiding_wrapper(copies)
    isolation: dict[str, object] = {"prefix": "moved away", "hidden": [str(p) for p in copies]}
    if wrapper is None:
        isolation["hidden"] = []
        isolation["not_hidden"] = (
            f"the system's {', '.join(p.name for p in copies)} stayed visible: hiding them "
            "needs root and unshare (a private mount namespace)"
        )
        logger.warning(str(isolation["not_hidden"]))
    elif copies:
        logger.info(f"hidden from the tests: {', '.join(map(str, copies))}")
    with prefix_out_of_sight(prefix_dir or prefix):
        done = run_hook(
            config, "run_tests", env=env, cwd=run_dir, logger=logger, wrapper=wrapper or []
        ).finished
    result: dict[str, object] = {
        "counts": pytest_counts(done.tail),
        "seconds": round(done.duration, 3),
        "isolation": isolation,
    }
    if notes.exists():  # what run_tests wants said: e.g. tests left out where offline
        result["notes"] = [line for line in notes.read_text().splitlines() if line.strip()]
    return result


def failed_tests(error: TestFailure) -> dict[str, object]:
    """What the record says of a failed run_tests: the counts, when pytest printed them."""
    return {"counts": pytest_counts(error.output), "failed": True}
