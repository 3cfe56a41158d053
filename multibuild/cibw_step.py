"""config.sh's hooks inside cibuildwheel: `scripts/cibw-step pre_build PACKAGE_DIR` is
cibuildwheel's before-build (the libraries, into MB_PREFIX), `scripts/cibw-step run_tests
PACKAGE_DIR` its test-command (in cibuildwheel's test venv, from outside the source tree).

This runs in whatever Python cibuildwheel gives the step (a manylinux container's CPython with
nothing installed), so it uses the standard library and the engine's hook runner only. The
variables the hooks see are those of the engine's own pipeline (multibuild.hooks); the library
versions and [hook_env] come from cibuildwheel.toml's `environment`, generated from settings.
"""

from __future__ import annotations

import os
import platform
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

from multibuild.errors import FatalError
from multibuild.hooks import hook_variables, run_hook
from multibuild.log import Logger

HOOKS = ("pre_build", "run_tests")
ROOT = Path(__file__).resolve().parents[1]  # the repository: cibuildwheel's {project}


def step_environment(
    hook: str, package: Path, environ: dict[str, str]
) -> tuple[dict[str, str], Path]:
    """The hook's environment, and config.sh."""
    prefix = Path(environ.get("MB_PREFIX") or ROOT / ".multibuild" / "cibw-prefix")
    work_dir = prefix.parent
    config = ROOT / (environ.get("MB_CONFIG") or "config.sh")  # relative, or absolute
    env = dict(environ)
    env.update(
        hook_variables(
            prefix=prefix,
            plat=environ.get("PLAT") or platform.machine(),
            python_version=f"{sys.version_info.major}.{sys.version_info.minor}",
            source=package,
            config=config,
            python_exe=Path(sys.executable),
            cache_dir=Path(environ.get("MB_CACHE_DIR") or work_dir / "cache"),
            work_dir=work_dir,
            jobs=int(environ.get("MB_JOBS") or os.cpu_count() or 1),
            test_level=environ.get("MB_TEST_LEVEL") or "fast",
        )
    )
    # The hooks' helpers (build_library) run the engine's modules with this Python, which has
    # nothing installed: they are found beside this file.
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), environ.get("PYTHONPATH")]))
    if hook == "run_tests":
        # Tests see the installed wheel only, as in the engine's test step.
        for name in ("LD_LIBRARY_PATH", "DYLD_LIBRARY_PATH", "DYLD_FALLBACK_LIBRARY_PATH"):
            env.pop(name, None)
    return env, config


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) != 2 or args[0] not in HOOKS:
        print(f"usage: cibw-step {{{','.join(HOOKS)}}} PACKAGE_DIR", file=sys.stderr)
        return 2
    hook, package = args[0], Path(args[1]).resolve()
    env, config = step_environment(hook, package, dict(os.environ))
    logger = Logger(verbose=True)
    try:
        if hook == "pre_build":
            prefix = Path(env["BUILD_PREFIX"])
            shutil.rmtree(prefix, ignore_errors=True)  # only what this pre_build puts there
            prefix.mkdir(parents=True)
            cwd = package
        else:
            cwd = Path.cwd()  # cibuildwheel's test directory, outside the source tree
        run_hook(config, hook, env=env, cwd=cwd, logger=logger)
    except FatalError as error:
        print(f"\ncibw-step: error: {error}", file=sys.stderr)
        return error.return_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
