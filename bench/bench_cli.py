"""Start-up of the command line: `python -m multibuild --help` wall time and the modules it
imports, for this tree and (with --before REF) another commit of this repository, measured
alternately in one run (the machine is shared and noisy: ratios, not timings, compare).

    python bench/bench_cli.py [--before REF] [--runs N]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
COUNT = (
    "import sys, io, contextlib, runpy\n"
    "sys.argv = ['multibuild', '--help']\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    try:\n"
    "        runpy.run_module('multibuild', run_name='__main__')\n"
    "    except SystemExit:\n"
    "        pass\n"
    "mods = list(sys.modules)\n"
    "print(len(mods), len([m for m in mods if m.split('.')[0] == 'multibuild']))\n"
)


def tree_of(ref: str, into: Path) -> Path:
    archive = subprocess.run(
        ["git", "-C", str(ROOT), "archive", ref, "multibuild"], capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def run(tree: Path, argv: list[str]) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(tree)}
    return subprocess.run(
        [sys.executable, *argv], cwd=tree, env=env, capture_output=True, text=True, check=True
    )


def measure(trees: dict[str, Path], runs: int) -> dict[str, dict[str, float]]:
    times: dict[str, list[float]] = {name: [] for name in trees}
    for _ in range(runs):
        for name, tree in trees.items():  # alternately: load drifts hit both alike
            start = time.perf_counter()
            run(tree, ["-m", "multibuild", "--help"])
            times[name].append(time.perf_counter() - start)
    result = {}
    for name, tree in trees.items():
        modules, ours = map(int, run(tree, ["-c", COUNT]).stdout.split())
        result[name] = {
            "median_s": round(statistics.median(times[name]), 4),
            "modules": modules,
            "multibuild_modules": ours,
            "top_level_modules": len(
                [p for p in (tree / "multibuild").glob("*.py") if p.name != "__main__.py"]
            ),
        }
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--before", help="a commit to compare with (git archive of it)")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        trees = {"now": ROOT}
        if args.before:
            trees["before"] = tree_of(args.before, Path(tmp))
        result = measure(trees, args.runs)
    if "before" in result:
        result["ratio_now_to_before"] = {
            "wall": round(result["now"]["median_s"] / result["before"]["median_s"], 3),
            "modules": round(result["now"]["modules"] / result["before"]["modules"], 3),
        }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
