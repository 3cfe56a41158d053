"""Which bash runs the hooks on Windows (multibuild.util.bash), against a simulated Windows
disk: a set of files, searched in CreateProcess' order. The layouts are GitHub's windows-2025
image (WSL's launcher in System32, Git for Windows under C:\\Program Files\\Git, Rtools'
MSYS2 on PATH) and variations of it."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from pathlib import PureWindowsPath

import pytest

from multibuild.errors import SystemDependencyError
from multibuild.util.bash import createprocess_search, is_wsl_launcher, windows_bash

ROOT = PureWindowsPath("C:/Windows")
WSL = PureWindowsPath(r"C:\Windows\System32\bash.exe")
STORE = PureWindowsPath(r"C:\Users\runner\AppData\Local\Microsoft\WindowsApps\bash.exe")
GIT_BASH = PureWindowsPath(r"C:\Program Files\Git\bin\bash.exe")
PYTHON_DIR = PureWindowsPath(r"C:\hostedtoolcache\windows\Python\3.12.10\x64")
RUNNER_PATH = ";".join(
    [
        str(PYTHON_DIR),
        r"C:\rtools40\ucrt64\bin",
        r"C:\Windows\system32",
        r"C:\Windows",
        r"C:\Program Files\Git\cmd",
        r"C:\Program Files\Git\bin",
        r"C:\Users\runner\AppData\Local\Microsoft\WindowsApps",
    ]
)


def disk(*files: PureWindowsPath) -> set[str]:
    return {str(f).casefold() for f in files}


def exists(files: Iterable[str]) -> Callable[[PureWindowsPath], bool]:
    known = set(files)
    return lambda path: str(path).casefold() in known


def environ(path: str, **extra: str) -> dict[str, str]:
    return {"PATH": path, "SystemRoot": r"C:\Windows", "ProgramFiles": r"C:\Program Files", **extra}


RUNNER = disk(WSL, STORE, GIT_BASH, PureWindowsPath(r"C:\Program Files\Git\cmd\git.exe"))


def test_a_bare_bash_on_the_runner_is_wsl_launcher() -> None:
    """The defect: CreateProcess finds System32's launcher although Git's bash is on PATH,
    even when Git's bin comes first on PATH (Appveyor's fix)."""
    for path in (RUNNER_PATH, r"C:\Program Files\Git\bin;" + RUNNER_PATH):
        found = createprocess_search(
            "bash", app_dir=PYTHON_DIR, cwd=PureWindowsPath(r"D:\a\src"), system_root=ROOT,
            path=path, is_file=exists(RUNNER),
        )  # fmt: skip
        assert found == WSL


def test_search_order_app_dir_cwd_system32_windows_then_path() -> None:
    cwd = PureWindowsPath(r"D:\work")
    layers = [
        PYTHON_DIR / "tool.exe",
        cwd / "tool.exe",
        ROOT / "System32" / "tool.exe",
        ROOT / "tool.exe",
        PureWindowsPath(r"C:\first\tool.exe"),
        PureWindowsPath(r"C:\second\tool.exe"),
    ]
    for i, expected in enumerate(layers):
        found = createprocess_search(
            "tool", app_dir=PYTHON_DIR, cwd=cwd, system_root=ROOT,
            path=r"C:\first;C:\second", is_file=exists(disk(*layers[i:])),
        )  # fmt: skip
        assert found == expected


def test_the_hooks_get_git_for_windows_bash_by_full_path() -> None:
    assert windows_bash(environ(RUNNER_PATH), is_file=exists(RUNNER)) == GIT_BASH


def test_git_found_through_path_when_installed_elsewhere() -> None:
    git = PureWindowsPath(r"D:\tools\Git")
    files = disk(WSL, git / "cmd" / "git.exe", git / "bin" / "bash.exe")
    env = environ(r"C:\Windows\system32;D:\tools\Git\cmd", ProgramFiles=r"C:\Nothing")
    assert windows_bash(env, is_file=exists(files)) == git / "bin" / "bash.exe"


def test_another_bash_on_path_when_git_is_absent() -> None:
    msys = PureWindowsPath(r"C:\rtools40\usr\bin\bash.exe")
    files = disk(WSL, STORE, msys)
    path = r"C:\Windows\system32;C:\Users\runner\AppData\Local\Microsoft\WindowsApps;" + str(
        msys.parent
    )
    assert windows_bash(environ(path), is_file=exists(files)) == msys


SYSNATIVE = PureWindowsPath(r"c:\windows\SYSNATIVE\bash.exe")


@pytest.mark.parametrize("launcher", [WSL, STORE, SYSNATIVE])
def test_only_wsl_launchers_is_a_clear_error(launcher: PureWindowsPath) -> None:
    files = disk(launcher)
    path = f"{launcher.parent};C:\\Windows"
    with pytest.raises(SystemDependencyError) as caught:
        windows_bash(environ(path), is_file=exists(files))
    message = str(caught.value)
    assert "WSL" in message and "Git for Windows" in message and "MB_BASH" in message
    assert str(launcher) in message
    assert caught.value.return_code == 4


def test_mb_bash_wins_and_may_not_be_wsl() -> None:
    mine = PureWindowsPath(r"E:\msys64\usr\bin\bash.exe")
    files = RUNNER | disk(mine)
    assert windows_bash(environ(RUNNER_PATH, MB_BASH=str(mine)), is_file=exists(files)) == mine
    with pytest.raises(SystemDependencyError, match="WSL's bash launcher"):
        windows_bash(environ(RUNNER_PATH, MB_BASH=str(WSL)), is_file=exists(files))
    with pytest.raises(SystemDependencyError, match="no such file"):
        windows_bash(environ(RUNNER_PATH, MB_BASH=r"E:\none\bash.exe"), is_file=exists(files))


def test_launcher_classification() -> None:
    assert is_wsl_launcher(WSL, ROOT)
    assert is_wsl_launcher(PureWindowsPath(r"C:\WINDOWS\SysWOW64\bash.exe"), ROOT)
    assert is_wsl_launcher(STORE, ROOT)
    assert not is_wsl_launcher(GIT_BASH, ROOT)
    assert not is_wsl_launcher(PureWindowsPath(r"C:\Windows\System32\sub\bash.exe"), ROOT)
