"""Testing the repaired wheel: installed in a fresh venv, config.sh's run_tests run there,
outside the source tree and with no library path pointing at the build prefix, so a wheel
that is not self-contained fails."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
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


def run_wheel_tests(
    wheel: Path,
    venv: TestVenv,
    *,
    config: Path,
    prefix: Path,
    hook_env: Mapping[str, str],
    run_dir: Path,
    logger: Logger,
) -> dict[str, object]:
    env = test_environment(hook_env, prefix, venv=venv.venv, python=venv.python)
    # The venv is fresh; the wheel's own dependencies come from the index, as for a user.
    pip_install(venv.python, [wheel], logger, TestFailure, env=env, what=wheel.name)
    remove_tree(run_dir)
    run_dir.mkdir(parents=True)
    env["MB_WHEEL"] = str(wheel)
    notes = run_dir.parent / f"{run_dir.name}-notes.txt"  # outside the tests' own directory
    notes.unlink(missing_ok=True)
    env["MB_TEST_NOTES"] = str(notes)
    done = run_hook(config, "run_tests", env=env, cwd=run_dir, logger=logger)
    result: dict[str, object] = {
        "counts": pytest_counts(done.tail),
        "seconds": round(done.duration, 3),
    }
    if notes.exists():  # what run_tests wants said: e.g. tests left out where offline
        result["notes"] = [line for line in notes.read_text().splitlines() if line.strip()]
    return result


def failed_tests(error: TestFailure) -> dict[str, object]:
    """What the record says of a failed run_tests: the counts, when pytest printed them."""
    return {"counts": pytest_counts(error.output), "failed": True}
