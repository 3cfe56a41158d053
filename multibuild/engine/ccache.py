"""Compiler caching with ccache: fixed paths and CCACHE_BASEDIR so a rebuild in a fresh build
directory hits, and the hit rate of each build in its record."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path, PurePath

from multibuild.util.cmd import capture


def ccache_variables(ccache_dir: PurePath, base_dir: PurePath, maxsize: str) -> dict[str, str]:
    """ccache's settings for a build (the host's, or inside a build container)."""
    return {
        "CCACHE_DIR": str(ccache_dir),
        # Paths under the base dir are hashed relative to it: another clone or build dir hits.
        "CCACHE_BASEDIR": str(base_dir),
        "CCACHE_NOHASHDIR": "true",
        # The compiler's own bytes are hashed: a cache from another compiler version (a CI
        # cache restored onto a newer image) misses, never answers for it.
        "CCACHE_COMPILERCHECK": "content",
        "CCACHE_MAXSIZE": maxsize,
    }


def ccache_env(cache_dir: Path, base_dir: Path, environ: Mapping[str, str]) -> dict[str, str]:
    """Variables that route C/C++ compiles through ccache; {} when ccache is not installed."""
    if shutil.which("ccache") is None:
        return {}
    env = ccache_variables(cache_dir / "ccache", base_dir, environ.get("CCACHE_MAXSIZE", "5G"))
    # Meson wraps C/C++ in ccache by itself; setuptools and CMake need CC/CXX to say so.
    for variable, compiler in (("CC", "gcc"), ("CXX", "g++")):
        if variable not in environ and shutil.which(compiler):
            env[variable] = f"ccache {compiler}"
    return env


def zero_stats(env: Mapping[str, str]) -> str:
    """Statistics zeroed for the build about to run; what the cache held then (the record's
    note: a restored CI cache, or an empty one, which makes a cold build)."""
    if "CCACHE_DIR" not in env:
        return ""
    text = capture(["ccache", "--print-stats"], env=env)
    capture(["ccache", "--zero-stats"], env=env)
    return start_note(text)


def start_note(stats_text: str) -> str:
    """What the cache held, from --print-stats or (ccache < 4.4) -s."""
    found = re.search(
        r"^files(?:_in_cache\t| in cache\s+)(\d+)\s*$", stats_text, flags=re.MULTILINE
    )
    if found is None:
        return ""
    files = int(found.group(1))
    if files == 0:
        return "the cache was empty (nothing restored or kept): every compile ran"
    return (
        f"the cache held {files} files; a miss is a compile it did not have (another source, "
        "flags or compiler: the compiler's bytes are part of the key)"
    )


def read_stats(env: Mapping[str, str]) -> dict[str, float] | None:
    """Hits and misses since zero_stats."""
    if "CCACHE_DIR" not in env:
        return None
    return parse_stats(capture(["ccache", "--print-stats"], env=env))


def parse_stats(text: str) -> dict[str, float]:
    """Hits and misses from `ccache --print-stats` (ccache >= 4.4: `name<TAB>count` lines) or
    from `ccache -s` (older ones, as Debian bullseye's 4.2 in the local image: `cache hit
    (direct)   N`)."""
    values = {k: int(v) for k, v in re.findall(r"^(\w+)\t(\d+)$", text, flags=re.MULTILINE)}
    if not values:
        for label, name in (
            ("cache hit (direct)", "direct_cache_hit"),
            ("cache hit (preprocessed)", "preprocessed_cache_hit"),
            ("cache miss", "cache_miss"),
        ):
            found = re.search(rf"^{re.escape(label)}\s+(\d+)\s*$", text, flags=re.MULTILINE)
            values[name] = int(found.group(1)) if found else 0
    hits = values.get("direct_cache_hit", 0) + values.get("preprocessed_cache_hit", 0)
    misses = values.get("cache_miss", 0)
    total = hits + misses
    return {"hits": hits, "misses": misses, "hit_rate": round(hits / total, 4) if total else 0.0}
