"""The prefix's link: one fixed path for any work dir, one build at a time on each number."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from multibuild.engine.prefix import PrefixLink


@pytest.fixture
def own_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """tempfile's directory of this test alone: the numbered links and locks are its own."""
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    return tmp_path


def test_one_build_at_a_time_on_each_number(own_tmp: Path) -> None:
    first = PrefixLink.claim(own_tmp / "work-a")
    second = PrefixLink.claim(own_tmp / "work-b")
    assert (first.path, second.path) == (own_tmp / "mb-prefix-0", own_tmp / "mb-prefix-1")
    # Another process cannot take a number this one holds.
    probe = (
        "import fcntl, sys\n"
        "f = open(sys.argv[1], 'a')\n"
        "try:\n    fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)\n"
        "except OSError:\n    sys.exit(1)\n"
    )
    lock = str(own_tmp / "mb-prefix-0.lock")
    assert subprocess.run([sys.executable, "-c", probe, lock], check=False).returncode == 1
    first.release()
    assert subprocess.run([sys.executable, "-c", probe, lock], check=False).returncode == 0
    # Released: the next build, from any work dir, sees its prefix at the first path again.
    third = PrefixLink.claim(own_tmp / "work-c")
    assert third.path == own_tmp / "mb-prefix-0"
    second.release()
    third.release()


def test_the_link_follows_the_build(own_tmp: Path) -> None:
    link = PrefixLink.claim(own_tmp / "work-a")
    for work in ("work-a", "work-b"):
        prefix = own_tmp / work / "prefix"
        (prefix / "lib").mkdir(parents=True)
        (prefix / "lib" / "owner").write_text(work)
        link.point_at(prefix)
        assert (link.path / "lib" / "owner").read_text() == work
    # A directory in the link's place (an older engine's) is replaced by the link.
    link.path.unlink()
    (link.path / "stale").mkdir(parents=True)
    link.point_at(own_tmp / "work-a" / "prefix")
    assert link.path.is_symlink() and (link.path / "lib" / "owner").read_text() == "work-a"
    link.release()
