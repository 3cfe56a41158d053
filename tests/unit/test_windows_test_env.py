"""The Windows test step's environment drops the build prefix from PATH: cibuildwheel.toml
writes the entries `C:/multibuild/prefix/bin`, the prefix compares as `C:\\multibuild\\prefix`
(an unrepaired wheel must fail its tests there too)."""

from __future__ import annotations

from pathlib import Path, PurePosixPath, PureWindowsPath

from multibuild.cibuildwheel.config import environment
from multibuild.engine import hooks
from multibuild.platforms.windows import WindowsPlatform
from multibuild.settings import load_settings
from tests.helpers import REPO_ROOT


def test_windows_prefix_entries_leave_path_whatever_their_slashes() -> None:
    prefix = PureWindowsPath(str(WindowsPlatform.ci_prefix))
    assert str(prefix) == "C:\\multibuild\\prefix"  # how Path("C:/...") prints on Windows
    environ = {
        "PATH": "C:/multibuild/prefix/bin;c:\\MULTIBUILD\\prefix\\lib;C:\\Windows\\system32;"
        "C:/multibuild/prefix2/bin",
    }
    env = hooks.test_environment(environ, prefix, venv=None, python=Path("py/python.exe"))
    assert env["PATH"].split(";") == ["py", "C:\\Windows\\system32", "C:/multibuild/prefix2/bin"]


def test_the_generated_windows_path_is_dropped_entirely() -> None:
    settings = load_settings(REPO_ROOT / "settings.toml")
    generated = environment(settings, "windows")["PATH"].replace("$PATH", "C:\\Windows")
    env = hooks.test_environment(
        {"PATH": generated}, PureWindowsPath("C:/multibuild/prefix"), venv=None,
        python=Path("venv/python.exe"),
    )  # fmt: skip
    assert env["PATH"] == "venv;C:\\Windows"


def test_posix_prefix_still_dropped() -> None:
    prefix = PurePosixPath("/tmp/multibuild/prefix")
    environ = {"LD_LIBRARY_PATH": f"{prefix}/lib", "PATH": f"{prefix}/bin:/usr/bin"}
    env = hooks.test_environment(environ, prefix, venv=None, python=Path("/v/bin/python"))
    assert "LD_LIBRARY_PATH" not in env and env["PATH"] == "/v/bin:/usr/bin"
