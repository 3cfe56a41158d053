"""Step 3: build the wheel with a PEP 517 frontend (pypa/build) for one CPython."""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from multibuild.errors import BuildError
from multibuild.log import Logger
from multibuild.platforms import Platform
from multibuild.util.cmd import capture, excerpt, run
from multibuild.util.files import remove_tree
from multibuild.venvs import create_venv, pip_install

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

BUILD_FRONTEND = "build>=1.2"


def build_requires(source: Path) -> list[str]:
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file():
        return ["setuptools>=40.8.0"]  # PEP 517's fallback
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    requires = data.get("build-system", {}).get("requires", ["setuptools>=40.8.0"])
    return [str(r) for r in requires]


def build_environment(python: Path, venv: Path, platform: Platform, logger: Logger) -> Path:
    """A kept venv with the frontend; reused while it was made by the same interpreter."""
    marker = venv / "multibuild-interpreter"
    interpreter = capture([python, "-c", "import sys; print(sys.version)"]) + f"\n{python}"
    venv_python = platform.venv_python(venv)
    if marker.is_file() and marker.read_text() == interpreter and venv_python.exists():
        return venv_python
    venv_python = create_venv(python, venv, platform, logger, BuildError)
    pip_install(venv_python, [BUILD_FRONTEND], logger, BuildError, what="the build frontend")
    marker.write_text(interpreter)
    return venv_python


def build_wheel(
    source: Path,
    venv_python: Path,
    out_dir: Path,
    *,
    config_settings: Sequence[str],
    isolation: bool,
    env: Mapping[str, str],
    logger: Logger,
) -> Path:
    remove_tree(out_dir)
    out_dir.mkdir(parents=True)
    command: list[str | Path] = [venv_python, "-m", "build", "--wheel", "--outdir", out_dir]
    if not isolation:
        # Fixed paths for the build dependencies (ccache hits); installed into the kept venv.
        pip_install(
            venv_python,
            build_requires(source),
            logger,
            BuildError,
            env=env,
            what="the build requirements",
        )
        command.append("--no-isolation")
    command += [f"--config-setting={setting}" for setting in config_settings]
    command.append(source)
    done = run(command, logger, env=env, label="build")
    if done.returncode != 0:
        tail = excerpt(done.tail, 20)
        raise BuildError(f"the wheel build failed (exit status {done.returncode}):\n{tail}")
    wheels = sorted(out_dir.glob("*.whl"))
    if len(wheels) != 1:
        raise BuildError(
            f"the build produced {len(wheels)} wheels in {out_dir}, expected exactly one"
            + (f": {', '.join(w.name for w in wheels)}" if wheels else "")
        )
    return wheels[0]
