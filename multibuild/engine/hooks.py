"""config.sh's hooks (pre_build, run_tests), multibuild-style bash functions: the one place
that says what a hook's environment holds, and running a hook.

Both routes use this: the engine's pipeline on this machine, and cibuildwheel's before-build
and test-command in CI (multibuild.cibuildwheel.step), so a hook sees the same variables wherever
it runs. This module and what it imports need only the standard library: in CI it runs under
whatever CPython the build container has.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath, PureWindowsPath

from multibuild.errors import HookError, TestFailure, error_class
from multibuild.log import Logger
from multibuild.util.bash import bash_program
from multibuild.util.cmd import Finished, excerpt, stream

SHELL_DIR = Path(__file__).parent / "shell"
# The directory holding the multibuild package that runs the build: the hooks' helpers
# (build_library, ...) run this same engine, whatever else the hook's Python has installed.
ENGINE_ROOT = Path(__file__).resolve().parents[2]
RUN_HOOK = SHELL_DIR / "run_hook.sh"
# Variables a test run never gets: they would let the wheel find the build prefix or change
# what Python imports.
NOT_FOR_TESTS = ("PYTHONPATH", "PYTHONHOME", "LD_PRELOAD", "PIP_REQUIRE_VIRTUALENV")
LOADER_PATHS = ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH")


@dataclass(frozen=True, kw_only=True)
class HookVariables:
    """What every hook is told (README.rst, "Hooks")."""

    prefix: Path
    plat: str
    python_version: str
    source: Path
    config: Path
    python_exe: Path
    cache_dir: Path
    work_dir: Path
    jobs: int
    test_level: str
    mirrors: Sequence[Path] = ()

    def as_environ(self) -> dict[str, str]:
        return {
            # multibuild's names
            "BUILD_PREFIX": str(self.prefix),
            "PLAT": self.plat,
            "MB_PYTHON_VERSION": self.python_version,
            "REPO_DIR": str(self.source),
            # ours
            "CONFIG_DIR": str(self.config.parent),
            "MB_PYTHON": sys.executable,
            "MB_CACHE_DIR": str(self.cache_dir),
            "MB_MIRROR_DIRS": os.pathsep.join(str(m) for m in self.mirrors),
            "MB_JOBS": str(self.jobs),
            "MB_WORK_DIR": str(self.work_dir),
            "MB_TEST_LEVEL": self.test_level,
            "MB_SHELL_DIR": str(SHELL_DIR),
            "MB_ENGINE_ROOT": str(ENGINE_ROOT),
            "PYTHON_EXE": str(self.python_exe),
        }


def hook_environment(
    base: Mapping[str, str],
    variables: HookVariables,
    *,
    prefix_env: Mapping[str, str] | None = None,
    settings_env: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """A hook's environment: `base`, the prefix variables (CPPFLAGS, PKG_CONFIG_PATH, ...;
    in CI cibuildwheel's `environment` has set them already), the settings' variables
    ([libraries] as NAME_VERSION, [hook_env]; the environment wins), the hook variables, and
    the Python the hook is for first on PATH."""
    env = dict(base)
    env.update(prefix_env or {})
    for name, value in (settings_env or {}).items():
        env.setdefault(name, value)
    env.update(variables.as_environ())
    env["PATH"] = os.pathsep.join(filter(None, [str(variables.python_exe.parent), env.get("PATH")]))
    return env


def settings_variables(
    library_versions: Sequence[tuple[str, str]], hook_env: Sequence[tuple[str, str]]
) -> dict[str, str]:
    """settings.toml's [libraries] as NAME_VERSION, and its [hook_env] as they are."""
    env = {f"{name.upper()}_VERSION": version for name, version in library_versions}
    env.update(hook_env)
    return env


def test_environment(
    environ: Mapping[str, str], prefix: PurePath, *, venv: Path | None, python: Path
) -> dict[str, str]:
    """run_tests' environment: `environ` minus anything that would let the wheel find the
    build prefix, with the test venv's python first on PATH."""
    env = {k: v for k, v in environ.items() if k not in NOT_FOR_TESTS}
    # Compared as paths of the prefix's flavour: on Windows `C:/multibuild/prefix/bin` (how
    # cibuildwheel.toml writes PATH) is under `C:\multibuild\prefix`, whatever the case.
    sep = ";" if isinstance(prefix, PureWindowsPath) else os.pathsep
    flavour = type(prefix)

    def under_prefix(entry: str) -> bool:
        path = flavour(entry)
        return path == prefix or prefix in path.parents

    for name in (*LOADER_PATHS, "PATH"):
        if name in env:
            kept = [p for p in env[name].split(sep) if p and not under_prefix(p)]
            if kept:
                env[name] = sep.join(kept)
            else:
                del env[name]
    env["PATH"] = sep.join(filter(None, [str(python.parent), env.get("PATH")]))
    if venv is not None:
        env["VIRTUAL_ENV"] = str(venv)
    env["PYTHON_EXE"] = str(python)
    return env


# Variables a hook's shell sets by itself, or the engine for it: never "exported by the hook".
SHELL_OWN = frozenset(
    {"_", "PWD", "OLDPWD", "SHLVL", "MB_HOOK_STATE", "MB_HOOK_FAILURE", "MB_HOOK_EXPORTS"}
)


@dataclass(frozen=True)
class HookRun:
    finished: Finished
    exported: dict[str, str]  # variables the hook exported that its environment did not have


def _environment_dump(path: Path) -> dict[str, str]:
    """NAME=VALUE entries of `env -0`."""
    if not path.exists():
        return {}
    entries = path.read_bytes().decode("utf-8", errors="surrogateescape").split("\0")
    return dict(entry.split("=", 1) for entry in entries if "=" in entry)


def run_hook(
    config: Path,
    hook: str,
    *,
    env: Mapping[str, str],
    cwd: Path,
    logger: Logger,
    wrapper: Sequence[str] = (),
) -> HookRun:
    """Run HOOK; raise HookError if config.sh is broken or lacks it, or if a hook other than
    run_tests fails (a failing run_tests is a TestFailure)."""
    if not config.is_file():
        raise HookError(f"config file {config} does not exist")
    # In a container (`wrapper`) the container's bash; on Windows Git's, never WSL's launcher.
    bash = "bash" if wrapper else bash_program(env, cwd=str(cwd))
    with tempfile.TemporaryDirectory(prefix="mb-hook-") as tmp:
        state_file, failure_file = Path(tmp) / "state", Path(tmp) / "failure"
        exports_file = Path(tmp) / "exports"
        done = stream(
            [*wrapper, bash, RUN_HOOK, config, hook],
            logger,
            cwd=cwd,
            label=hook,
            env={
                **env,
                "MB_HOOK_STATE": str(state_file),
                "MB_HOOK_FAILURE": str(failure_file),
                "MB_HOOK_EXPORTS": str(exports_file),
            },
        )
        state = state_file.read_text().strip() if state_file.exists() else "syntax"
        failure = failure_file.read_text().split() if failure_file.exists() else []
        after = _environment_dump(exports_file)
    if done.returncode == 0:
        exported = {
            name: value
            for name, value in after.items()
            if name not in SHELL_OWN and not name.startswith("BASH_") and env.get(name) != value
        }
        return HookRun(done, exported)
    tail = excerpt(done.tail, 15)
    if state == "running" and len(failure) == 2 and failure[0].isdigit():
        # A helper (build_library, require_tool, ...) failed: its own error, its own code.
        helper_error = error_class(int(failure[0]))
        if helper_error is not None:
            raise helper_error(f"hook {hook}: {failure[1]} failed:\n{tail}")
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
