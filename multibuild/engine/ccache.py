"""Compiler caching with ccache: fixed paths and CCACHE_BASEDIR so a rebuild in a fresh build
directory hits, and the hit rate of each build in its record."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path

from multibuild.util.cmd import capture


def ccache_env(cache_dir: Path, base_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Variables that route C/C++ compiles through ccache; {} when ccache is not installed."""
    if shutil.which("ccache") is None:
        return {}
    env = {
        "CCACHE_DIR": str(cache_dir / "ccache"),
        # Paths under the work dir are hashed relative to it: another clone or build dir hits.
        "CCACHE_BASEDIR": str(base_dir),
        "CCACHE_NOHASHDIR": "true",
        "CCACHE_COMPILERCHECK": "content",
        "CCACHE_MAXSIZE": environ.get("CCACHE_MAXSIZE", "5G"),
    }
    # Meson wraps C/C++ in ccache by itself; setuptools and CMake need CC/CXX to say so.
    for variable, compiler in (("CC", "gcc"), ("CXX", "g++")):
        if variable not in environ and shutil.which(compiler):
            env[variable] = f"ccache {compiler}"
    return env


def zero_stats(env: Mapping[str, str]) -> None:
    if "CCACHE_DIR" in env:
        capture(["ccache", "--zero-stats"], env=env)


def read_stats(env: Mapping[str, str]) -> dict[str, float] | None:
    """Hits and misses since zero_stats (ccache >= 4.0's --print-stats)."""
    if "CCACHE_DIR" not in env:
        return None
    text = capture(["ccache", "--print-stats"], env=env)
    values = dict(re.findall(r"^(\w+)\t(\d+)$", text, flags=re.MULTILINE))
    hits = int(values.get("direct_cache_hit", 0)) + int(values.get("preprocessed_cache_hit", 0))
    misses = int(values.get("cache_miss", 0))
    total = hits + misses
    return {"hits": hits, "misses": misses, "hit_rate": round(hits / total, 4) if total else 0.0}
