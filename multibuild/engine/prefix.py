"""The path builds see the libraries' prefix at: one fixed path for every work dir.

The prefix is a directory of the work dir; the compilers, pkg-config and the linker see it
through a link whose path is the same whichever work dir builds: a link `/tmp/mb-prefix-0` to
the work dir's prefix, held by one build at a time (an flock). A build that runs while another
holds it takes the next free number. Where a path of the prefix reaches a wheel's bytes (a
build RPATH that the linker hashes into the build id before the repair replaces it, a project
that records its build configuration, as scipy's `__config__.py` does) the wheel is the same
from any work dir.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from pathlib import Path
from typing import IO

from multibuild.util.files import remove_tree

SLOTS = 32  # concurrent builds on one machine that get a numbered link; more get a hashed one


class PrefixLink:
    """A claimed link path; `point_at` makes it lead to a prefix directory."""

    def __init__(self, path: Path, lock: IO[str] | None) -> None:
        self.path = path
        self._lock = lock

    @classmethod
    def claim(cls, work_dir: Path) -> PrefixLink:
        """The first free numbered link (held until release() or the process ends); the work
        dir's own prefix where the OS has no links or locks."""
        if os.name != "posix":
            return cls(work_dir / "prefix", None)
        import fcntl  # POSIX only

        base = Path(tempfile.gettempdir())
        for number in range(SLOTS):
            # Kept open: the flock lasts as long as the file.
            lock = (base / f"mb-prefix-{number}.lock").open("a", encoding="utf-8")
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                lock.close()
                continue
            return cls(base / f"mb-prefix-{number}", lock)
        # Every numbered link is in use: one of this work dir's own (of the same length).
        digest = hashlib.sha256(str(work_dir.resolve()).encode()).hexdigest()[:12]
        return cls(base / f"mb-prefix-{digest}", None)

    def point_at(self, directory: Path) -> None:
        """The link leading to `directory` (replaced by one rename if it leads elsewhere)."""
        link = self.path
        if link == directory or (link.is_symlink() and link.readlink() == directory):
            return
        if link.is_dir() and not link.is_symlink():
            remove_tree(link)  # a directory in the link's place (left by an older engine)
        partial = link.with_name(f"{link.name}.{os.getpid()}")
        partial.unlink(missing_ok=True)
        partial.symlink_to(directory)
        partial.replace(link)

    def release(self) -> None:
        if self._lock is not None:
            self._lock.close()  # closing the file drops the flock
            self._lock = None
