"""Running config.sh's hooks (pre_build, run_tests), multibuild-style bash functions."""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from multibuild.errors import HookError, TestFailure
from multibuild.log import Logger
from multibuild.util.cmd import Finished, excerpt, run

SHELL_DIR = Path(__file__).parent / "shell"
RUN_HOOK = SHELL_DIR / "run_hook.sh"


def hook_variables(
    *,
    prefix: Path,
    plat: str,
    python_version: str,
    source: Path,
    config: Path,
    python_exe: Path,
    cache_dir: Path,
    work_dir: Path,
    jobs: int,
    test_level: str,
    mirrors: Sequence[Path] = (),
) -> dict[str, str]:
    """The variables every hook sees, wherever it runs (the engine's pipeline, or cibuildwheel's
    before-build and test-command through scripts/cibw-step)."""
    return {
        # multibuild's names
        "BUILD_PREFIX": str(prefix),
        "PLAT": plat,
        "MB_PYTHON_VERSION": python_version,
        "REPO_DIR": str(source),
        # ours
        "CONFIG_DIR": str(config.parent),
        "MB_PYTHON": sys.executable,
        "MB_CACHE_DIR": str(cache_dir),
        "MB_MIRROR_DIRS": os.pathsep.join(str(m) for m in mirrors),
        "MB_JOBS": str(jobs),
        "MB_WORK_DIR": str(work_dir),
        "MB_TEST_LEVEL": test_level,
        "MB_SHELL_DIR": str(SHELL_DIR),
        "PYTHON_EXE": str(python_exe),
    }


def run_hook(
    config: Path, hook: str, *, env: Mapping[str, str], cwd: Path, logger: Logger
) -> Finished:
    """Run HOOK; raise HookError if config.sh is broken or lacks it, or if a hook other than
    run_tests fails (a failing run_tests is a TestFailure)."""
    if not config.is_file():
        raise HookError(f"config file {config} does not exist")
    with tempfile.TemporaryDirectory(prefix="mb-hook-") as tmp:
        state_file = Path(tmp) / "state"
        done = run(
            ["bash", RUN_HOOK, config, hook],
            logger,
            cwd=cwd,
            label=hook,
            env={**env, "MB_HOOK_STATE": str(state_file)},
        )
        state = state_file.read_text().strip() if state_file.exists() else "syntax"
    if done.returncode == 0:
        return done
    tail = excerpt(done.tail, 15)
    match state:
        case "syntax":
            raise HookError(f"{config} has a syntax error (bash -n failed):\n{tail}")
        case "loading":
            raise HookError(
                f"{config} failed while loading (exit status {done.returncode}):\n{tail}"
            )
        case "missing":
            raise HookError(f"{config} does not define the hook {hook}() (a bash function)")
    if hook == "run_tests":
        raise TestFailure(
            f"run_tests failed with exit status {done.returncode}:\n{tail}", output=done.tail
        )
    raise HookError(f"hook {hook} failed with exit status {done.returncode}:\n{tail}")
