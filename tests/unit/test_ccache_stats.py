"""ccache's figures as a record gives them: from a real ccache on this machine (--print-stats)
and from the older `-s` text of the local image's ccache 4.2."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from multibuild.engine.ccache import ccache_variables, parse_stats, start_note

# `ccache -s` of ccache 4.2 (Debian bullseye, the local image), which has no --print-stats.
CCACHE_42 = """cache directory                     /tmp/multibuild/cache/ccache
primary config                      /tmp/multibuild/cache/ccache/ccache.conf
secondary config      (readonly)    /etc/ccache.conf
stats updated                       Fri Dec  4 10:20:00 2026
cache hit (direct)                     7
cache hit (preprocessed)               2
cache miss                             1
files in cache                        30
"""


def test_ccache_42_text() -> None:
    assert parse_stats(CCACHE_42) == {"hits": 9, "misses": 1, "hit_rate": 0.9}
    assert start_note(CCACHE_42).startswith("the cache held 30 files")


def test_a_real_ccache_counts_a_miss_then_a_hit_from_another_directory(tmp_path: Path) -> None:
    if shutil.which("ccache") is None or shutil.which("gcc") is None:
        pytest.skip("needs ccache and gcc (.ci/apt-packages.txt installs them)")
    env = {**os.environ, **ccache_variables(tmp_path / "ccache", tmp_path, "100M")}

    def stats() -> str:
        return subprocess.run(
            ["ccache", "--print-stats"], env=env, capture_output=True, text=True, check=True
        ).stdout

    assert "empty" in start_note(stats())
    for name in ("one", "two"):  # two clones of one file: paths under the base dir hit
        source = tmp_path / name / "a.c"
        source.parent.mkdir()
        source.write_text("int answer(void) { return 42; }\n")
        subprocess.run(["ccache", "--zero-stats"], env=env, check=True, capture_output=True)
        subprocess.run(
            ["ccache", "gcc", "-c", "a.c", "-o", "a.o"], cwd=source.parent, env=env, check=True
        )
        figures = parse_stats(stats())
        expected = {"hits": 0, "misses": 1} if name == "one" else {"hits": 1, "misses": 0}
        assert {k: figures[k] for k in expected} == expected, name
    assert start_note(stats()).startswith("the cache held ")
