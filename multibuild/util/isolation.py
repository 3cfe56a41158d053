"""Keeping credentials out of reach of the project's code.

A build runs code nobody here reviewed: config.sh's hooks, the build backend, the tests,
cibuildwheel and what it starts. Their environment holds no credential (secrets.withheld),
but on Linux a process may read the environment block and the memory of any process of its
user: this one's `/proc/PID/environ`, and its ancestors' (the CI job's shell holds every
secret the job was given). So while `isolated_children()` is active, each command
`util.cmd.stream` (and `isolated()`) starts runs in a PID namespace of its own, with its own
/proc: no process outside it is visible, and whatever it leaves running is killed when it
ends (`--kill-child`), so nothing of the build is alive when the upload starts. This process
is also made non-dumpable, so a process of the same (non-root) user cannot read its
environment or memory.

Without namespaces (macOS, Windows, a Linux without `unshare` or user namespaces) a warning
says so; README.rst ("Credentials") says what remains where build and upload share a job.
"""

from __future__ import annotations

import ctypes
import functools
import shutil
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager

from multibuild import console
from multibuild.util.secrets import is_credential_name

UNSHARE = ("unshare", "--pid", "--fork", "--mount-proc", "--kill-child")
# Without root: the same in a user namespace, if the kernel allows unprivileged ones.
UNSHARE_AS_USER = ("unshare", "--user", "--map-root-user", *UNSHARE[1:])
_PR_SET_DUMPABLE = 4

_active: list[tuple[str, ...]] = []


@functools.cache
def namespace_prefix() -> tuple[str, ...] | None:
    """The command prefix that starts a command in a PID namespace of its own, or None where
    none can be made."""
    if sys.platform != "linux" or shutil.which("unshare") is None:
        return None
    for prefix in (UNSHARE, UNSHARE_AS_USER):
        try:
            done = subprocess.run([*prefix, "true"], capture_output=True, check=False, timeout=30)
        except (OSError, subprocess.TimeoutExpired):
            continue
        if done.returncode == 0:
            return prefix
    return None


def _not_dumpable() -> None:
    if sys.platform == "linux":
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0)


def holds_credentials(environ: Mapping[str, str]) -> bool:
    return any(is_credential_name(name) for name in environ)


@contextmanager
def isolated_children(environ: Mapping[str, str]) -> Iterator[None]:
    """Commands started inside run in PID namespaces of their own, when `environ` (this
    process's, so its ancestors' too) holds a credential."""
    if not holds_credentials(environ):
        yield
        return
    _not_dumpable()
    prefix = namespace_prefix()
    if prefix is None:
        console.warning(
            "multibuild: warning: no PID namespace here (unshare): the build's commands can "
            "read the credentials in this process's and its parents' environment"
        )
        yield
        return
    _active.append(prefix)
    try:
        yield
    finally:
        _active.pop()


def isolated(command: Sequence[str]) -> list[str]:
    """`command`, started in a PID namespace of its own while `isolated_children` is active."""
    return [*(_active[-1] if _active else ()), *command]
