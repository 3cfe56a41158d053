"""Engine overhead and warm rebuilds, on the test fixtures, as ratios measured in one run.

1. overhead: the fixture through `python -m multibuild build` vs the same steps typed by hand
   (library build, `python -m build`, `auditwheel repair`, a fresh venv, the test), run
   alternately REPS times; the ratio of medians. Target <= 1.05.
2. warm: the engine with the library cache hot vs cold (same work dir); the ratio, and the
   library step's time on a hit. Target < 1 s.

Usage: python bench/bench_pipeline.py [--reps N]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from tests.helpers import config_copy, make_repo


@dataclass(frozen=True)
class Fixture:
    python: str
    test: str | None
    requires: tuple[str, ...]
    lib: tuple[str, str]  # (tarball stem, build system)


FIXTURES = {
    "hello-c": Fixture(
        "3.11", "import hello_c; assert hello_c.add(2, 3) == 5", (), ("libhello-1.0", "cmake")
    ),
    "fstats": Fixture("3.11", None, ("pytest",), ("libfstats-1.0", "make")),
}


def sh(*args: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> None:
    subprocess.run(
        [str(a) for a in args],
        cwd=cwd,
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def timed(fn: Callable[..., object], *args: object) -> float:
    start = time.perf_counter()
    fn(*args)
    return time.perf_counter() - start


def engine_run(tmp: Path, name: str, repo: Path, config: Path, cache: Path) -> dict[str, object]:
    spec = FIXTURES[name]
    args = [
        sys.executable,
        "-m",
        "multibuild",
        "build",
        "--repo",
        str(repo),
        "--commit",
        "v1.0",
        "--config",
        str(config),
        "--python",
        spec.python,
        "--test-requires",
        " ".join(spec.requires),
        "--wheelhouse",
        str(tmp / "wh"),
        "--work-dir",
        str(tmp / "work"),
        "--cache-dir",
        str(cache),
        "--no-ccache",
    ]
    sh(*args, cwd=tmp)
    newest = sorted((tmp / "wh").glob("*.json"))[-1]
    record: dict[str, object] = json.loads(newest.read_text())
    return record


def by_hand(tmp: Path, name: str, repo: Path, tools_python: Path) -> None:
    """What a release manager would type: build the library, the wheel, repair, test."""
    spec = FIXTURES[name]
    work = tmp / "hand"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    prefix = work / "prefix"
    tarball, system = spec.lib
    sh(
        "tar",
        "xzf",
        Path(__file__).parent.parent / f"tests/fixtures/tarballs/{tarball}.tar.gz",
        cwd=work,
    )
    src = work / tarball
    if system == "cmake":
        sh(
            "cmake",
            "-S",
            ".",
            "-B",
            "b",
            f"-DCMAKE_INSTALL_PREFIX={prefix}",
            "-DCMAKE_INSTALL_LIBDIR=lib",
            "-DCMAKE_BUILD_TYPE=Release",
            cwd=src,
        )
        sh("cmake", "--build", "b", "--parallel", "2", cwd=src)
        sh("cmake", "--install", "b", cwd=src)
    else:
        sh("make", "-j2", f"PREFIX={prefix}", "FC=gfortran", cwd=src)
        sh("make", "install", f"PREFIX={prefix}", "FC=gfortran", cwd=src)
    env = dict(
        os.environ,
        CPPFLAGS=f"-I{prefix}/include",
        CFLAGS=f"-I{prefix}/include",
        LDFLAGS=f"-L{prefix}/lib",
        PKG_CONFIG_PATH=f"{prefix}/lib/pkgconfig",
        LD_LIBRARY_PATH=f"{prefix}/lib",
    )
    env.pop("CC", None)
    sh(tools_python, "-m", "build", "--wheel", "--outdir", work / "dist", repo, env=env)
    (wheel,) = (work / "dist").glob("*.whl")
    sh(sys.executable, "-m", "auditwheel", "repair", "-w", work / "fixed", wheel, env=env)
    (fixed,) = (work / "fixed").glob("*.whl")
    sh(sys.executable, "-m", "venv", work / "venv")
    py = work / "venv/bin/python"
    sh(py, "-m", "pip", "install", "-q", *spec.requires, fixed)
    run_dir = work / "run"
    run_dir.mkdir()
    if spec.test:
        sh(py, "-c", spec.test, cwd=run_dir)
    else:
        sh(py, "-m", "pytest", "--pyargs", "fstats_py", "-q", "-p", "no:cacheprovider", cwd=run_dir)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--reps", type=int, default=3)
    reps = parser.parse_args().reps
    results: dict[str, object] = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores, {platform.platform()}",
    }
    with tempfile.TemporaryDirectory(prefix="mb-bench-") as tmpdir:
        tmp = Path(tmpdir)
        # The by-hand frontend lives in a venv made once, as a user's would.
        sh(sys.executable, "-m", "venv", tmp / "tools")
        tools_python = tmp / "tools/bin/python"
        sh(tools_python, "-m", "pip", "install", "-q", "build")
        for name in FIXTURES:
            base = tmp / name
            repo = make_repo(name, base / "repo")
            config = config_copy(name, base / "config")
            engine_run(base, name, repo, config, base / "warmup-cache")  # kept build venv
            engine_times, hand_times = [], []
            for rep in range(reps):
                cache = base / f"cold-cache-{rep}"
                engine_times.append(timed(engine_run, base, name, repo, config, cache))
                hand_times.append(timed(by_hand, base, name, repo, tools_python))
            cold = base / "cold-cache-0"
            warm_times, lib_seconds = [], []
            for _ in range(reps):
                start = time.perf_counter()
                record = engine_run(base, name, repo, config, cold)
                warm_times.append(time.perf_counter() - start)
                libs = record["builds"][0]["libraries"]  # type: ignore[index]
                assert all(lib["cached"] for lib in libs)
                lib_seconds.append(sum(lib["seconds"] for lib in libs))
            figures = {
                "engine_s": round(statistics.median(engine_times), 2),
                "by_hand_s": round(statistics.median(hand_times), 2),
                "overhead_ratio": round(
                    statistics.median(engine_times) / statistics.median(hand_times), 3
                ),
                "warm_s": round(statistics.median(warm_times), 2),
                "warm_to_cold_ratio": round(
                    statistics.median(warm_times) / statistics.median(engine_times), 3
                ),
                "library_step_on_hit_s": round(statistics.median(lib_seconds), 3),
            }
            results[name] = figures
            print(
                f"{name}: engine {figures['engine_s']}s vs by hand {figures['by_hand_s']}s "
                f"-> ratio {figures['overhead_ratio']} (target <= 1.05); warm "
                f"{figures['warm_s']}s = {figures['warm_to_cold_ratio']} x cold; library "
                f"step on a cache hit {figures['library_step_on_hit_s']}s (target < 1 s)"
            )
    out = Path(__file__).parent / "results" / f"pipeline-{results['date']}.json"
    out.write_text(json.dumps(results, indent=2) + "\n")
    print(f"written: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
