"""Which bash runs config.sh's hooks. Standard library only (the hooks' runner imports it in
whatever CPython a build container has).

On Linux and macOS it is `bash` from PATH. On Windows a bare `bash` is a trap: CreateProcess
looks in the application's directory, the current directory, System32 and the Windows
directory *before* PATH, and GitHub's and Appveyor's Windows images keep WSL's `bash.exe`
launcher in System32 (with no Linux distribution installed, it prints "Windows Subsystem for
Linux has no installed distributions" and fails). So on Windows the hooks get Git for Windows'
bash by its full path, or MB_BASH's, and a WSL or WindowsApps launcher is refused by name.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable, Mapping
from pathlib import PureWindowsPath

from multibuild.errors import SystemDependencyError

BASH_VARIABLE = "MB_BASH"
# Where Git for Windows keeps its bash, below its install directory (bin\bash.exe is the
# launcher that sets up Git's MSYS2 environment; usr\bin\bash.exe the shell itself).
GIT_BASH = (PureWindowsPath("bin/bash.exe"), PureWindowsPath("usr/bin/bash.exe"))
# Directories whose bash.exe is WSL's launcher, never a shell that can run config.sh.
_SYSTEM_DIRS = ("System32", "Sysnative", "SysWOW64")

IsFile = Callable[[PureWindowsPath], bool]


def _same(a: PureWindowsPath, b: PureWindowsPath) -> bool:
    return str(a).rstrip("\\").casefold() == str(b).rstrip("\\").casefold()


def is_wsl_launcher(path: PureWindowsPath, system_root: PureWindowsPath) -> bool:
    """A bash.exe that starts WSL: the one in Windows' system directories, or a Microsoft
    Store alias (…\\WindowsApps\\bash.exe)."""
    if any(part.casefold() == "windowsapps" for part in path.parts):
        return True
    return any(_same(path.parent, system_root / name) for name in _SYSTEM_DIRS)


def createprocess_search(
    name: str,
    *,
    app_dir: PureWindowsPath,
    cwd: PureWindowsPath,
    system_root: PureWindowsPath,
    path: str,
    is_file: IsFile,
) -> PureWindowsPath | None:
    """What CreateProcess runs for a bare `name` (lpApplicationName NULL): the first
    `name`.exe in the application's directory, the current directory, System32, the 16-bit
    System directory, the Windows directory, then PATH's entries in order."""
    exe = name if name.lower().endswith(".exe") else f"{name}.exe"
    dirs = [app_dir, cwd, system_root / "System32", system_root / "System", system_root]
    dirs += [PureWindowsPath(entry) for entry in path.split(";") if entry.strip()]
    for directory in dirs:
        if is_file(directory / exe):
            return directory / exe
    return None


def windows_bash(
    environ: Mapping[str, str],
    *,
    is_file: IsFile,
    app_dir: PureWindowsPath | None = None,
    cwd: PureWindowsPath | None = None,
) -> PureWindowsPath:
    """Git for Windows' bash.exe by its full path: MB_BASH if set, else next to the `git`
    PATH finds (…\\Git\\cmd\\git.exe gives …\\Git\\bin\\bash.exe), else under
    %ProgramFiles%\\Git, else a bash.exe on PATH that is not WSL's. Raise
    SystemDependencyError naming what was found if there is none, or if MB_BASH is a WSL
    launcher. `app_dir` and `cwd` (the running Python's directory, the hook's directory) only
    say in that error what a bare `bash` would have started."""
    system_root = PureWindowsPath(
        environ.get("SystemRoot") or environ.get("SYSTEMROOT") or "C:/Windows"
    )
    path_dirs = [PureWindowsPath(e) for e in environ.get("PATH", "").split(";") if e.strip()]
    chosen = environ.get(BASH_VARIABLE, "").strip()
    if chosen:
        bash = PureWindowsPath(chosen)
        if is_wsl_launcher(bash, system_root):
            raise SystemDependencyError(
                f"{BASH_VARIABLE}={chosen} is WSL's bash launcher, which cannot run config.sh's "
                "hooks: name Git for Windows' bash.exe (…\\Git\\bin\\bash.exe)"
            )
        if not is_file(bash):
            raise SystemDependencyError(f"{BASH_VARIABLE}={chosen}: no such file")
        return bash
    candidates: list[PureWindowsPath] = []
    for directory in path_dirs:
        if is_file(directory / "git.exe") and directory.name.casefold() in ("cmd", "bin"):
            git_root = directory.parent
            if git_root.name.casefold() in ("usr", "mingw64"):
                git_root = git_root.parent
            candidates += [git_root / bash for bash in GIT_BASH]
    for variable in ("ProgramFiles", "ProgramW6432", "ProgramFiles(x86)"):
        if environ.get(variable):
            candidates += [PureWindowsPath(environ[variable], "Git") / bash for bash in GIT_BASH]
    candidates += [directory / "bash.exe" for directory in path_dirs]
    refused: list[PureWindowsPath] = []
    for candidate in candidates:
        if not is_file(candidate):
            continue
        if is_wsl_launcher(candidate, system_root):
            refused.append(candidate)
            continue
        return candidate
    found = f" (found only WSL's launcher: {', '.join(map(str, refused))})" if refused else ""
    bare = createprocess_search(
        "bash",
        app_dir=app_dir or system_root,
        cwd=cwd or system_root,
        system_root=system_root,
        path=environ.get("PATH", ""),
        is_file=is_file,
    )
    raise SystemDependencyError(
        f"no bash for config.sh's hooks{found}: install Git for Windows, or set "
        f"{BASH_VARIABLE} to its bash.exe (a bare `bash` would start {bare or 'nothing'}: "
        "Windows searches System32 before PATH)"
    )


def bash_program(environ: Mapping[str, str], *, cwd: str) -> str:
    """The program that runs the hooks: `bash` (or MB_BASH) on POSIX, Git for Windows'
    bash.exe by its full path on Windows."""
    if os.name != "nt":
        return environ.get(BASH_VARIABLE) or "bash"
    bash = windows_bash(
        environ,
        is_file=os.path.isfile,
        app_dir=PureWindowsPath(sys.executable).parent,
        cwd=PureWindowsPath(cwd),
    )
    return str(bash)
