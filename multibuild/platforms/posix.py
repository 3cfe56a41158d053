"""What Linux and macOS share: compiler flags, pyenv interpreters, venv layout."""

from __future__ import annotations

import os
import platform
from collections.abc import Mapping
from pathlib import Path, PurePath

from multibuild.platforms import Platform, prepend
from multibuild.util.pythons import PythonVersion, pyenv_candidates


class PosixPlatform(Platform):
    def machine(self) -> str:
        return platform.machine()

    def python_candidates(self, version: PythonVersion) -> list[Path]:
        return pyenv_candidates(version)

    def venv_python(self, venv: Path) -> Path:
        return venv / "bin" / "python"

    def path_maps(self, maps: Mapping[Path, str]) -> str:
        # GCC and clang both take -ffile-prefix-map (the directories never nest here, so the
        # compilers' different precedence between overlapping maps does not matter).
        return " ".join(f"-ffile-prefix-map={path}={name}" for path, name in maps.items())

    def prefix_env(
        self, prefix: PurePath, environ: Mapping[str, str], pathsep: str = os.pathsep
    ) -> dict[str, str]:
        include = f"-I{prefix / 'include'}"
        libs = " ".join(f"-L{d}" for d in self.library_dirs(prefix))
        pkgconfig = pathsep.join(
            str(d)
            for d in (
                prefix / "lib/pkgconfig",
                prefix / "lib64/pkgconfig",
                prefix / "share/pkgconfig",
            )
        )
        env = {
            # Include and library paths only, in CPPFLAGS and LDFLAGS: CFLAGS, CXXFLAGS and
            # FFLAGS stay the user's, since setting them replaces a build system's own
            # optimisation flags (autoconf's -g -O2, a Makefile's FFLAGS ?= -O2, Python's
            # -O3 -DNDEBUG in setuptools). Every C/C++ compiler driver reads CPPFLAGS.
            "CPPFLAGS": prepend(environ, "CPPFLAGS", include, " "),
            "LDFLAGS": prepend(environ, "LDFLAGS", libs, " "),
            "PKG_CONFIG_PATH": prepend(environ, "PKG_CONFIG_PATH", pkgconfig, pathsep),
            "CMAKE_PREFIX_PATH": prepend(environ, "CMAKE_PREFIX_PATH", str(prefix), pathsep),
            "PATH": prepend(environ, "PATH", str(prefix / "bin"), pathsep),
        }
        env[self.library_path_var] = prepend(
            environ,
            self.library_path_var,
            pathsep.join(str(d) for d in self.library_dirs(prefix)),
            pathsep,
        )
        return env
