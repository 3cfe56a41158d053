"""The prefix's path: one fixed path for any work dir; a bind mount in a mount namespace of the
build's own (Linux, root), else a numbered link held by one build at a time."""

from __future__ import annotations

import os
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
    first = PrefixLink.claim(own_tmp / "work-a", namespace=False)
    second = PrefixLink.claim(own_tmp / "work-b", namespace=False)
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
    third = PrefixLink.claim(own_tmp / "work-c", namespace=False)
    assert third.path == own_tmp / "mb-prefix-0"
    second.release()
    third.release()


def test_the_link_follows_the_build(own_tmp: Path) -> None:
    link = PrefixLink.claim(own_tmp / "work-a", namespace=False)
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


def test_a_work_dir_takes_its_last_number_again(own_tmp: Path) -> None:
    """Its compile lines stay the same (ccache hits, meson's build dir is kept) when the
    number its last build had is free, even if a lower one is free too."""
    other = PrefixLink.claim(own_tmp / "work-other", namespace=False)
    first = PrefixLink.claim(own_tmp / "work-a", namespace=False)
    assert first.path == own_tmp / "mb-prefix-1"
    other.release()
    first.release()
    again = PrefixLink.claim(own_tmp / "work-a", namespace=False)
    assert again.path == own_tmp / "mb-prefix-1"
    # Another work dir, with no number of its own, takes the first free one.
    newcomer = PrefixLink.claim(own_tmp / "work-b", namespace=False)
    assert newcomer.path == own_tmp / "mb-prefix-0"
    # Its number held by another build: the first free one (a cold build, not a wait).
    (own_tmp / "work-c").mkdir()
    (own_tmp / "work-c" / "prefix-slot").write_text("0\n")
    third = PrefixLink.claim(own_tmp / "work-c", namespace=False)
    assert third.path == own_tmp / "mb-prefix-2"
    for link in (again, newcomer, third):
        link.release()


# Run in a process of its own: entering a mount namespace is for the rest of the process.
NAMESPACE_PROBE = """
import sys, time
from pathlib import Path
from multibuild.engine.prefix import PrefixLink

work, ready, go = Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3])
link = PrefixLink.claim(work)
assert link.mounted, "no mount namespace"
(work / "prefix").mkdir(parents=True)
(work / "prefix" / "owner").write_text(work.name)
link.point_at(work / "prefix")
ready.write_text(str(link.path))
while not go.exists():
    time.sleep(0.05)
print(link.path, (link.path / "owner").read_text())
link.release()
"""


@pytest.mark.skipif(os.geteuid() != 0, reason="a mount namespace needs root (CI runs as root)")
def test_concurrent_builds_see_their_own_prefix_at_one_path(tmp_path: Path) -> None:
    """Two builds at once (processes of their own), each its prefix at TMPDIR/mb-prefix; the
    mounts stay in their namespaces: this process sees an empty directory there."""
    env = {**os.environ, "TMPDIR": str(tmp_path)}
    go = tmp_path / "go"
    probes = []
    for name in ("work-a", "work-b"):
        ready = tmp_path / f"{name}.ready"
        probes.append(
            (
                ready,
                subprocess.Popen(
                    [
                        sys.executable,
                        "-c",
                        NAMESPACE_PROBE,
                        str(tmp_path / name),
                        str(ready),
                        str(go),
                    ],
                    env=env,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.PIPE,
                    text=True,
                ),
            )
        )
    deadline = 60.0
    import time

    start = time.monotonic()
    while not all(ready.exists() for ready, _ in probes):
        assert time.monotonic() - start < deadline, [p.poll() for _, p in probes]
        assert all(p.poll() is None for _, p in probes), [p.communicate() for _, p in probes]
        time.sleep(0.05)
    # Both hold their mounts now.
    assert sorted(r.read_text() for r, _ in probes) == [str(tmp_path / "mb-prefix")] * 2
    assert list((tmp_path / "mb-prefix").iterdir()) == []
    go.touch()
    outputs = [p.communicate(timeout=60) for _, p in probes]
    for (_, process), (_, err) in zip(probes, outputs, strict=True):
        assert process.returncode == 0, err
    assert sorted(out.split()[1] for out, _ in outputs) == ["work-a", "work-b"]
    assert {out.split()[0] for out, _ in outputs} == {str(tmp_path / "mb-prefix")}
