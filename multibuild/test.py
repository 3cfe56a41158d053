"""Step 5: install the repaired wheel in a fresh venv and run config.sh's run_tests there,
outside the source tree and with no library path pointing at the build prefix, so a wheel
that is not self-contained fails."""

from __future__ import annotations

import os
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from multibuild.errors import TestFailure
from multibuild.hooks import run_hook
from multibuild.log import Logger
from multibuild.platforms import Platform
from multibuild.util.files import remove_tree
from multibuild.venvs import create_venv, pip_install

# pytest's closing line, e.g. "== 12 passed, 1 skipped, 2 deselected in 3.4s ==".
PYTEST_COUNTS = re.compile(r"(\d+) (passed|failed|skipped|errors?|deselected|xfailed|xpassed)")


@dataclass(frozen=True)
class TestEnvironment:
    __test__ = False
    venv: Path
    python: Path


def prepare_test_env(
    python: Path, venv: Path, test_requires: Sequence[str], platform: Platform, logger: Logger
) -> TestEnvironment:
    venv_python = create_venv(python, venv, platform, logger, TestFailure)
    pip_install(venv_python, list(test_requires), logger, TestFailure, what="test requirements")
    return TestEnvironment(venv, venv_python)


def clean_environment(
    environ: Mapping[str, str], prefix: Path, platform: Platform, venv: TestEnvironment
) -> dict[str, str]:
    """The environment minus anything that would let the wheel find the build prefix."""
    env = {
        k: v
        for k, v in environ.items()
        if k not in ("PYTHONPATH", "PYTHONHOME", "LD_PRELOAD", "PIP_REQUIRE_VIRTUALENV")
    }
    prefix_text = str(prefix)
    for name in {platform.library_path_var, "LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH"}:
        if name in env:
            kept = [p for p in env[name].split(os.pathsep) if p and not p.startswith(prefix_text)]
            if kept:
                env[name] = os.pathsep.join(kept)
            else:
                del env[name]
    env["PATH"] = os.pathsep.join(
        [str(venv.python.parent)]
        + [p for p in env.get("PATH", "").split(os.pathsep) if not p.startswith(prefix_text)]
    )
    env["VIRTUAL_ENV"] = str(venv.venv)
    env["PYTHON_EXE"] = str(venv.python)
    return env


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


def test_wheel(
    wheel: Path,
    test_env: TestEnvironment,
    *,
    config: Path,
    prefix: Path,
    hook_env: Mapping[str, str],
    run_dir: Path,
    platform: Platform,
    logger: Logger,
) -> dict[str, object]:
    env = clean_environment(hook_env, prefix, platform, test_env)
    # The venv is fresh; the wheel's own dependencies come from the index, as for a user.
    pip_install(test_env.python, [wheel], logger, TestFailure, env=env, what=wheel.name)
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
