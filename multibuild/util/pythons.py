"""CPython versions as the matrix names them (`3.11`, `3.13t` for a free-threaded build), and
finding such an interpreter on this machine."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import sysconfig
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from multibuild.errors import ConfigurationError
from multibuild.util.cmd import run

_VERSION = re.compile(r"^3\.(\d{1,2})(t?)$")


@dataclass(frozen=True, order=True)
class PythonVersion:
    """`3.12`, or `3.13t`: the free-threaded build, a different ABI (cp313t)."""

    minor: int
    free_threaded: bool = False

    @classmethod
    def parse(cls, text: str) -> PythonVersion:
        found = _VERSION.match(text.strip())
        if not found:
            raise ConfigurationError(
                f"{text!r} is not a CPython version as the matrix names them: X.Y, or X.Yt "
                "for a free-threaded build (3.12, 3.13t)"
            )
        return cls(minor=int(found.group(1)), free_threaded=found.group(2) == "t")

    def __str__(self) -> str:
        return f"3.{self.minor}" + ("t" if self.free_threaded else "")

    @property
    def number(self) -> str:
        """X.Y without the t."""
        return f"3.{self.minor}"

    @property
    def interpreter(self) -> str:
        return f"cp3{self.minor}"

    @property
    def abi(self) -> str:
        """cibuildwheel's and the wheel tags' name: cp312, cp313t."""
        return self.interpreter + ("t" if self.free_threaded else "")

    @property
    def executable(self) -> str:
        return f"python{self}"

    def allowed_by(self, requires_python: str) -> bool:
        """Whether some X.Y.z release (pre-releases too) satisfies a `requires-python`
        specifier set: cibuildwheel selects nothing for an X.Y the project excludes."""
        # Here, not at the top: cibuildwheel's steps import this module in a bare Python.
        from packaging.specifiers import InvalidSpecifier, SpecifierSet

        try:
            spec = SpecifierSet(requires_python)
        except InvalidSpecifier:
            raise ConfigurationError(
                f"requires-python {requires_python!r} is not a valid specifier set"
            ) from None
        candidates = (f"{self.number}.{patch}" for patch in range(100))
        return any(spec.contains(v, prereleases=True) for v in (*candidates, f"{self.number}.0rc1"))


def running() -> PythonVersion:
    """The version of the interpreter running this code."""
    return PythonVersion(
        minor=sys.version_info.minor,
        free_threaded=bool(sysconfig.get_config_var("Py_GIL_DISABLED")),
    )


def _version_key(path: Path) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", path.name))


def pyenv_candidates(version: PythonVersion) -> list[Path]:
    """Interpreters of pyenv's versions directory, newest patch release first (pyenv names
    free-threaded builds 3.13.1t)."""
    root = Path(os.environ.get("PYENV_ROOT", Path.home() / ".pyenv")) / "versions"
    if not root.is_dir():
        return []
    suffix = "t" if version.free_threaded else ""
    pattern = re.compile(rf"{re.escape(version.number)}\.\d+{suffix}")
    found = [d for d in root.glob(f"{version.number}.*") if pattern.fullmatch(d.name)]
    return [d / "bin" / version.executable for d in sorted(found, key=_version_key, reverse=True)]


def interpreter_version(python: Path) -> PythonVersion | None:
    try:
        out = run(
            [
                str(python),
                "-c",
                "import sys, sysconfig; print(sys.version_info[0], sys.version_info[1], "
                "bool(sysconfig.get_config_var('Py_GIL_DISABLED')))",
            ],
            timeout=30,
        )
    except subprocess.TimeoutExpired:
        return None
    parts = out.stdout.split()
    if out.returncode != 0 or len(parts) != 3 or parts[0] != "3":
        return None
    return PythonVersion(minor=int(parts[1]), free_threaded=parts[2] == "True")


def find_python(version: PythonVersion, candidates: Iterable[Path]) -> Path:
    tried: list[str] = []
    if running() == version:
        return Path(sys.executable)
    for candidate in candidates:
        tried.append(str(candidate))
        if candidate.is_file() and interpreter_version(candidate) == version:
            return candidate
    on_path = shutil.which(version.executable)
    if on_path and interpreter_version(Path(on_path)) == version:
        return Path(on_path)
    kind = "free-threaded CPython" if version.free_threaded else "CPython"
    raise ConfigurationError(
        f"no {kind} {version.number} found on this machine (looked at: "
        f"{', '.join(tried) or 'nothing'}, and {version.executable} on PATH); install it "
        f"(e.g. `pyenv install {version.number}{'t' if version.free_threaded else ''}`) or "
        "leave it out with --python"
    )


def is_installed(version: PythonVersion, candidates: Iterable[Path]) -> bool:
    """Whether find_python finds `version` here."""
    try:
        find_python(version, candidates)
    except ConfigurationError:
        return False
    return True


def pythons_for(
    requested: Sequence[str],
    matrix: Sequence[str],
    why_not: Callable[[PythonVersion], str | None],
) -> tuple[tuple[PythonVersion, ...], tuple[str, ...]]:
    """Which CPythons a build makes, one rule for both routes: those asked for (--python) as
    given, else the matrix's that the route can build (`why_not`: why it cannot build one,
    None when it can: the host route needs it installed, the local image Debian's sources),
    with a note for each of the matrix's ([matrix] python) left out."""
    if requested:
        return tuple(PythonVersion.parse(v) for v in requested), ()
    if not matrix:
        raise ConfigurationError("no Python to build for: give --python X.Y")
    kept: list[PythonVersion] = []
    notes: list[str] = []
    for version in (PythonVersion.parse(v) for v in matrix):
        reason = why_not(version)
        if reason is None:
            kept.append(version)
        else:
            kind = " (free-threaded)" if version.free_threaded else ""
            notes.append(f"CPython {version}{kind} of the matrix is not built: {reason}")
    if not kept:
        raise ConfigurationError(
            f"none of the matrix's CPythons ({', '.join(matrix)}) can be built: "
            + "; ".join(notes)
            + " (or pass --python X.Y)"
        )
    return tuple(kept), tuple(notes)
