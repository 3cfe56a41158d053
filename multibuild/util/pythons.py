"""Finding a CPython interpreter of a given X.Y version on this machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterable
from pathlib import Path

from multibuild.errors import ConfigurationError

VERSION_RE = re.compile(r"^3\.\d+$")


def check_version_string(version: str) -> str:
    if not VERSION_RE.match(version):
        raise ConfigurationError(f"--python takes X.Y (like 3.11), not {version!r}")
    return version


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.name))


def pyenv_candidates(version: str) -> list[Path]:
    """Interpreters of pyenv's versions directory, newest patch release first."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not root.is_dir():
        return []
    found = [
        d for d in root.glob(f"{version}.*") if re.fullmatch(rf"{re.escape(version)}\.\d+", d.name)
    ]
    return [d / "bin" / f"python{version}" for d in sorted(found, key=_version_key, reverse=True)]


def interpreter_version(python: Path) -> str | None:
    try:
        out = subprocess.run(
            [
                str(python),
                "-c",
                "import sys; print('%d.%d' % sys.version_info[:2], "
                "getattr(sys, '_is_gil_enabled', lambda: True)())",
            ],
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    parts = out.stdout.split()
    # A free-threaded interpreter builds a different ABI (cp313t); it is not `3.13`.
    if out.returncode != 0 or len(parts) != 2 or parts[1] != "True":
        return None
    return parts[0]


def find_python(version: str, candidates: Iterable[Path]) -> Path:
    check_version_string(version)
    tried: list[str] = []
    if "{}.{}".format(*sys.version_info[:2]) == version:
        return Path(sys.executable)
    for candidate in candidates:
        tried.append(str(candidate))
        if candidate.is_file() and interpreter_version(candidate) == version:
            return candidate
    on_path = shutil.which(f"python{version}")
    if on_path and interpreter_version(Path(on_path)) == version:
        return Path(on_path)
    raise ConfigurationError(
        f"no CPython {version} found on this machine (looked at: "
        f"{', '.join(tried) or 'nothing'}, and python{version} on PATH); install it "
        f"(e.g. `pyenv install {version}`) or leave it out with --python"
    )


def is_installed(version: str, candidates: Iterable[Path]) -> bool:
    """Whether find_python finds a CPython `version` here."""
    try:
        find_python(version, candidates)
    except ConfigurationError:
        return False
    return True
