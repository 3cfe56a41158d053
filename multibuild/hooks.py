"""Running config.sh's hooks (pre_build, run_tests), multibuild-style bash functions."""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path

from multibuild.errors import HookError, TestFailure
from multibuild.log import Logger
from multibuild.util.cmd import Finished, excerpt, run

SHELL_DIR = Path(__file__).parent / "shell"
RUN_HOOK = SHELL_DIR / "run_hook.sh"


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
