"""Virtual environments for building (kept, reused) and testing (fresh every time)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from multibuild.errors import FatalError
from multibuild.log import Logger
from multibuild.platforms import Platform
from multibuild.util.cmd import excerpt, run
from multibuild.util.files import remove_tree


def create_venv(
    python: Path, venv: Path, platform: Platform, logger: Logger, error: type[FatalError]
) -> Path:
    remove_tree(venv)
    done = run([python, "-m", "venv", venv], logger, label="venv")
    if done.returncode != 0:
        raise error(f"cannot create a virtual environment with {python}:\n{done.tail}")
    return platform.venv_python(venv)


def pip_install(
    venv_python: Path,
    requirements: Sequence[str | Path],
    logger: Logger,
    error: type[FatalError],
    *,
    env: Mapping[str, str] | None = None,
    what: str = "packages",
) -> None:
    if not requirements:
        return
    done = run(
        [
            venv_python,
            "-m",
            "pip",
            "install",
            "--disable-pip-version-check",
            "--no-input",
            *requirements,
        ],
        logger,
        env=env,
        label="pip install",
    )
    if done.returncode != 0:
        tail = excerpt(done.tail, 10)
        raise error(f"cannot install {what}:\n{tail}")
