"""The path builds see the libraries' prefix at: one fixed path for every work dir.

The prefix is a directory of the work dir; the compilers, pkg-config and the linker see it at
a path that is the same whichever work dir builds. Where a path of the prefix reaches a wheel's
bytes (a build RPATH that the linker hashes into the build id before the repair replaces it, a
project that records its build configuration, as scipy's `__config__.py` does) the wheel is
then the same from any work dir; and since that path is on every compile line and in meson's
configuration, a rebuild in the same work dir keeps its build dir and hits ccache only if it
gets the same path again, whatever else runs.

- Linux as root: one path for every build, `/tmp/mb-prefix`, where a bind mount in a mount
  namespace of the build's own shows its work dir's prefix (other builds, in their own
  namespaces, see theirs at the same path): no slot to lose to another build.
- Elsewhere (no mount namespace: not root, macOS, a container without CAP_SYS_ADMIN): a link
  `/tmp/mb-prefix-N` held by one build at a time (an flock). A work dir takes the number its
  last build had when that one is free (its compile lines unchanged), else the first free one.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import sys
import tempfile
from pathlib import Path
from typing import IO

from multibuild.util.files import remove_tree

SLOTS = 32  # concurrent builds on one machine that get a numbered link; more get a hashed one
SLOT_FILE = "prefix-slot"  # in the work dir: the number its last build's link had

# <sched.h> and <sys/mount.h> (Linux)
CLONE_NEWNS = 0x00020000
MS_BIND = 0x1000
MS_REC = 0x4000
MS_PRIVATE = 0x40000
MNT_DETACH = 2

# Whether this process has entered a mount namespace of its own (once per process).
_namespace: dict[str, bool] = {"entered": False}


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def enter_mount_namespace() -> bool:
    """Put this process (and the processes it starts) in a mount namespace of its own whose
    mounts do not propagate back; False where the OS or the privileges do not allow it."""
    if _namespace["entered"]:
        return True
    if not sys.platform.startswith("linux") or os.geteuid() != 0:
        return False
    libc = _libc()
    if libc.unshare(CLONE_NEWNS) != 0:
        return False  # e.g. a container without CAP_SYS_ADMIN
    if libc.mount(b"none", b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount --make-rprivate / in the build's namespace")
    _namespace["entered"] = True
    return True


class PrefixLink:
    """A claimed path; `point_at` makes it lead to a prefix directory (a bind mount in this
    process's mount namespace, or a symlink)."""

    def __init__(self, path: Path, lock: IO[str] | None, *, mounted: bool = False) -> None:
        self.path = path
        self._lock = lock
        self.mounted = mounted

    @classmethod
    def claim(cls, work_dir: Path, *, namespace: bool = True) -> PrefixLink:
        """The fixed path in a mount namespace of this process's own (`namespace` and the OS
        allows it); else this work dir's last numbered link if free, or the first free one
        (held until release() or the process ends); the work dir's own prefix where the OS
        has no links or locks."""
        if os.name != "posix":
            return cls(work_dir / "prefix", None)
        base = Path(tempfile.gettempdir())
        if namespace and enter_mount_namespace():
            fixed = base / "mb-prefix"
            if fixed.is_symlink() or (fixed.exists() and not fixed.is_dir()):
                fixed.unlink()
            fixed.mkdir(exist_ok=True)
            return cls(fixed, None, mounted=True)
        import fcntl  # POSIX only

        slot_file = work_dir / SLOT_FILE
        try:
            last = int(slot_file.read_text())
        except (OSError, ValueError):
            last = None
        order = list(range(SLOTS))
        if last is not None and 0 <= last < SLOTS:
            order.remove(last)
            order.insert(0, last)
        for number in order:
            # Kept open: the flock lasts as long as the file.
            lock = (base / f"mb-prefix-{number}.lock").open("a", encoding="utf-8")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            try:
                work_dir.mkdir(parents=True, exist_ok=True)
                slot_file.write_text(f"{number}\n")
            except OSError:
                pass  # only a preference for the next build
            return cls(base / f"mb-prefix-{number}", lock)
        # Every numbered link is in use: one of this work dir's own (of the same length).
        digest = hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()[:12]
        return cls(base / f"mb-prefix-{digest}", None)

    def point_at(self, directory: Path) -> None:
        """The path leading to `directory` (a symlink replaced by one rename if it leads
        elsewhere; a bind mount made again, since `directory` may be a new one)."""
        link = self.path
        if self.mounted:
            libc = _libc()
            libc.umount2(str(link).encode(), MNT_DETACH)  # nothing mounted there yet: EINVAL
            if libc.mount(str(directory).encode(), str(link).encode(), None, MS_BIND, None):
                error = ctypes.get_errno()
                raise OSError(error, f"bind-mounting {directory} at {link}: {os.strerror(error)}")
            return
        if link == directory or (link.is_symlink() and link.readlink() == directory):
            return
        if link.is_dir() and not link.is_symlink():
            remove_tree(link)  # a directory in the link's place (left by an older engine)
        partial = link.with_name(f"{link.name}.{os.getpid()}")
        partial.unlink(missing_ok=True)
        partial.symlink_to(directory)
        partial.replace(link)

    def release(self) -> None:
        if self.mounted:
            _libc().umount2(str(self.path).encode(), MNT_DETACH)
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None
