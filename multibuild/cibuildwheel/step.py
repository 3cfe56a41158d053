"""config.sh's hooks inside cibuildwheel: `scripts/cibw-step pre_build PACKAGE_DIR` is
cibuildwheel's before-build (the libraries, into MB_PREFIX), `scripts/cibw-step run_tests
PACKAGE_DIR [TEST_SOURCE...]` its test-command (in cibuildwheel's test venv, in a directory
outside the source tree holding settings' test_sources, as the engine's own test step),
`scripts/cibw-step retag WHEEL_DIR OLD NEW` renames a repaired wheel's platform tag.

This runs in whatever Python cibuildwheel gives the step (a manylinux container's CPython with
nothing installed), so it uses the standard library and the engine's hook module only. The
hooks' environment is built by multibuild.engine.hooks, as in the engine's own pipeline; the
prefix variables, library versions and [hook_env] come from cibuildwheel.toml's `environment`,
generated from settings.toml.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import sys
import sysconfig
import tempfile
from collections.abc import Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

from multibuild import console
from multibuild.engine.ccache import parse_stats, start_note
from multibuild.engine.frontend import build_requires, dynamic_requires
from multibuild.engine.hooks import HookVariables, hook_environment, run_hook, test_environment
from multibuild.engine.kept_build_dir import settle_requirements
from multibuild.engine.testing import prepare_run_dir, pytest_counts
from multibuild.errors import BuildError, ConfigurationError, FatalError, TestFailure, report
from multibuild.log import Logger
from multibuild.options import HookContext
from multibuild.util.cmd import Result, run
from multibuild.util.pythons import running
from multibuild.util.wheelzip import WheelZipError, retag_platform

HOOKS = ("pre_build", "run_tests")
ROOT = Path(__file__).resolve().parents[2]  # the repository: cibuildwheel's {project}
# One line per hook with what the build record keeps (the libraries pre_build built, the
# counts of run_tests); the engine reads it from cibuildwheel's output (cibuildwheel.route).
RESULT_MARKER = "multibuild-result: "


def print_result(result: Mapping[str, Any]) -> None:
    console.result(RESULT_MARKER + json.dumps(result, sort_keys=True))


def step_environment(
    hook: str, package: Path, environ: Mapping[str, str]
) -> tuple[dict[str, str], Path]:
    """The hook's environment, and config.sh."""
    context = HookContext.from_environ(environ)
    prefix = context.prefix or ROOT / ".multibuild" / "cibw-prefix"
    work_dir = prefix.parent
    config = ROOT / (context.config or "config.sh")  # relative, or absolute
    variables = HookVariables(
        prefix=prefix,
        plat=context.plat or platform.machine(),
        python_version=str(running()),
        source=package,
        config=config,
        python_exe=Path(sys.executable),
        cache_dir=context.cache_dir or work_dir / "cache",
        work_dir=work_dir,
        jobs=context.jobs,
        test_level=context.test_level,
        mirrors=context.mirrors,
    )
    env = hook_environment(environ, variables)
    if hook == "run_tests":
        # Tests see the installed wheel only, as in the engine's test step.
        env = test_environment(env, prefix, venv=None, python=Path(sys.executable))
    return env, config


def retag(wheel_dir: Path, old: str, new: str) -> int:
    """The repaired wheels tagged `old` renamed `new` (cibuildwheel's repair-wheel-command, after
    delocate: settings.toml [ci] macos_wheel_targets says why)."""
    for wheel in sorted(wheel_dir.glob("*.whl")):
        try:
            renamed = retag_platform(wheel, old, new)
        except WheelZipError as error:
            console.error(f"cibw-step retag: {error}")
            return ConfigurationError.return_code
        if renamed is not None:
            console.info(f"cibw-step retag: {wheel.name} -> {renamed.name}")
    return 0


def install_build_requires(package: Path, env: Mapping[str, str], logger: Logger) -> None:
    """The project's build requirements (pyproject.toml's and what its backend asks for) in
    this Python: cibuildwheel then builds without isolation, from this fixed path."""

    def install(requires: Sequence[str]) -> None:
        logger.info(f"build requirements into {sys.executable}: {' '.join(requires)}")
        done = run([sys.executable, "-m", "pip", "install", *requires], env=env)
        if not done.ok:
            raise BuildError(f"installing the build requirements failed: {done.failure()}")

    install(build_requires(package))
    dynamic = dynamic_requires(package, Path(sys.executable), (), env)
    if dynamic:
        install(dynamic)


def settle_installed(build_dir: Path) -> dict[str, str]:
    """The build requirements just installed into this Python, dated for the kept build dir
    (multibuild.engine.kept_build_dir.settle_requirements)."""
    paths = sysconfig.get_paths()
    packages = sorted({Path(paths["purelib"]), Path(paths["platlib"])})
    versions = sorted(
        f"{d.metadata['Name']}=={d.version}"
        for d in metadata.distributions(path=[str(t) for t in packages])
    )
    # The scripts too: meson makes every Cython step depend on bin/cython (pythran likewise).
    note = settle_requirements(build_dir, [*packages, Path(paths["scripts"])], versions)
    return {"build_dir_note": note} if note else {}


def ccache_result(hook: str, env: Mapping[str, str]) -> dict[str, Any]:
    """pre_build: ccache's statistics zeroed (what the wheel build then compiles is counted);
    run_tests: read. A note instead where the build has no ccache (an image without it)."""
    if "CCACHE_DIR" not in env:
        return {}
    if shutil.which("ccache", path=env.get("PATH")) is None:
        return {"ccache_note": "no ccache in the build environment: every compile ran"}

    def ccache(option: str) -> Result:
        return run(["ccache", option], env=env)

    done = ccache("--print-stats")
    if done.returncode != 0:
        done = ccache("-s")  # ccache < 4.4 (Debian bullseye's 4.2): no --print-stats
    if done.returncode != 0:
        return {"ccache_note": f"ccache failed: {(done.stderr or done.stdout).strip()[-300:]}"}
    if hook == "pre_build":
        ccache("--zero-stats")
        return {"ccache_note": start_note(done.stdout)}
    return {"ccache": parse_stats(done.stdout)}


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if len(args) == 4 and args[0] == "retag":
        return retag(Path(args[1]), args[2], args[3])
    if len(args) < 2 or args[0] not in HOOKS or (args[0] != "run_tests" and len(args) > 2):
        console.error(
            f"usage: cibw-step {{{','.join(HOOKS)}}} PACKAGE_DIR (run_tests: [TEST_SOURCE...])\n"
            "       cibw-step retag WHEEL_DIR OLD_PLATFORM_TAG NEW_PLATFORM_TAG"
        )
        return 2
    hook, package, test_sources = args[0], Path(args[1]).resolve(), args[2:]
    with tempfile.TemporaryDirectory(prefix="mb-cibw-step-") as tmp:
        results = Path(tmp) / "results"
        try:
            env, config = step_environment(hook, package, os.environ)
            logger = Logger(verbose=True)
            if hook == "pre_build":
                prefix = Path(env["BUILD_PREFIX"])
                shutil.rmtree(prefix, ignore_errors=True)  # only what this pre_build puts there
                prefix.mkdir(parents=True)
                env["MB_LIBRARY_RESULTS"] = str(results)
                settled: dict[str, str] = {}
                if HookContext.from_environ(env).build_requires:
                    install_build_requires(package, env, logger)
                    if env.get("MB_KEPT_BUILD_DIR"):
                        settled = settle_installed(Path(env["MB_KEPT_BUILD_DIR"]))
                ran = run_hook(config, hook, env=env, cwd=package, logger=logger)
                if ran.exported:
                    # cibuildwheel builds in another process: what pre_build exports ends here.
                    logger.warning(
                        f"pre_build exported {', '.join(sorted(ran.exported))}: cibuildwheel's "
                        "build does not see it; put it in settings.toml [hook_env] "
                        "(cibuildwheel.toml's environment carries that)"
                    )
                lines = results.read_text().splitlines() if results.exists() else []
                print_result(
                    {
                        "hook": hook,
                        "libraries": [json.loads(x) for x in lines if x],
                        **ccache_result(hook, env),
                        **settled,
                    }
                )
            else:
                env["MB_TEST_NOTES"] = str(results)
                # Outside the source tree, with the test sources (cibuildwheel's test
                # directory holds only its guard against running in the source).
                run_dir = Path(tmp) / "test"
                prepare_run_dir(run_dir, package, test_sources)
                done = run_hook(config, hook, env=env, cwd=run_dir, logger=logger).finished
                notes = results.read_text().splitlines() if results.exists() else []
                print_result(
                    {
                        "hook": hook,
                        "counts": pytest_counts(done.tail),
                        "seconds": round(done.duration, 3),
                        **ccache_result(hook, env),
                        **({"notes": [n for n in notes if n.strip()]} if notes else {}),
                    }
                )
        except FatalError as error:
            counts = pytest_counts(error.output) if isinstance(error, TestFailure) else {}
            print_result(
                {"hook": hook, "failed": True, "exit_code": error.return_code, "counts": counts}
            )
            return report("cibw-step", error)
    return 0


if __name__ == "__main__":
    sys.exit(main())
