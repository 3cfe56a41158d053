"""A CI nightly on the container route as the workflow runs it, in one run: the job's command
(`python -m multibuild ci --job cp311-manylinux_x86_64 --builder cibuildwheel`) in the local
image, three times, each from a fresh work dir:

  cold      an empty build cache (ccache and the library cache)
  warm      the same sdist, the build cache the cold run saved restored (what actions/cache does
            between two nightlies: a copy of <cache>/container)
  changed   one C file of the sdist changed (code, not a comment), the same restored cache

then, with --host, the host route: a cold build, and the same again in the same work dir while
another process holds the first numbered prefix link (/tmp/mb-prefix-0's flock).

  python bench/bench_nightly.py run [--host] [--test-modules scipy.ndimage]
  python bench/bench_nightly.py report        # the newest run's figures

Figures per phase: wall time, the load average before and after, the record's ccache hits and
misses (and its note), and the job's time split as cibuildwheel's own step lines give it
(build / repair / tests / the rest). Target: warm and changed build steps <= 0.10 x cold.
"""

from __future__ import annotations

import argparse
import fcntl
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench_container import load, newest_record, ratio
from bench_scipy import changed_sdist

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ANSI = re.compile(r"\x1b\[[0-9;]*m")
STEP_START = re.compile(r"^\s*([A-Z][A-Za-z _/-]+)\.\.\.\s*$")
STEP_END = re.compile(r"(?:✓|✕|done|failed)\s+(\d+(?:\.\d+)?)s\s*$")
SPLIT = {"Building wheel": "build", "Repairing wheel": "repair", "Testing wheel": "tests"}


def cibuildwheel_steps(log: Path) -> dict[str, float]:
    """cibuildwheel's step durations from its output (`Building wheel...` ... `✓ 612.34s`)."""
    steps: dict[str, float] = {}
    current = None
    for raw in log.read_text(errors="replace").splitlines():
        line = ANSI.sub("", raw)
        # The engine's log prefixes each line of a tool's output; keep the text after it.
        line = line.split(" | ", 1)[-1]
        started = STEP_START.match(line)
        if started:
            current = started.group(1)
            continue
        ended = STEP_END.search(line)
        if ended and current:
            steps[current] = steps.get(current, 0.0) + float(ended.group(1))
            current = None
    return steps


def split(steps: dict[str, float], wall: float) -> dict[str, float]:
    parts = {name: round(steps.get(step, 0.0), 1) for step, name in SPLIT.items()}
    parts["other"] = round(wall - sum(parts.values()), 1)
    return parts


def run_ci(
    args: argparse.Namespace,
    phase: str,
    work: Path,
    *,
    sdist: str,
    builder: str,
    cache: Path,
    fresh: bool = True,
) -> dict[str, Any]:
    wheelhouse = args.base / f"{phase}-wheelhouse"
    shutil.rmtree(wheelhouse, ignore_errors=True)
    if fresh:
        shutil.rmtree(work, ignore_errors=True)
    command = [
        sys.executable,
        "-m",
        "multibuild",
        "ci",
        "--job",
        args.job,
        "--builder",
        builder,
        "--no-upload",
        "--sdist",
        sdist,
        "--test-level",
        args.test_level,
        "--work-dir",
        str(work),
        "--wheelhouse",
        str(wheelhouse),
    ]
    if builder == "cibuildwheel":
        command += ["--container-engine", args.container_engine]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MB_")}
    env["MB_CACHE_DIR"] = str(cache)
    if args.test_modules:
        env["SCIPY_TEST_MODULES"] = args.test_modules
        env["MB_CONTAINER_ENV"] = "SCIPY_TEST_MODULES"
    print(f"bench: {phase}: {' '.join(command)}", flush=True)
    started, load_before = time.perf_counter(), load()
    with (args.base / f"{phase}.log").open("w") as log:
        done = subprocess.run(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    wall = round(time.perf_counter() - started, 1)
    record = newest_record(wheelhouse) or {}
    build = (record.get("builds") or [{}])[0]
    logs = sorted(wheelhouse.glob("*.log"), key=lambda p: p.stat().st_mtime)
    steps = cibuildwheel_steps(logs[-1]) if logs and builder == "cibuildwheel" else {}
    engine_steps = build.get("steps") or {}
    if builder == "host":
        parts = {
            "build": engine_steps.get("build", 0.0),
            "repair": engine_steps.get("repair", 0.0),
            "tests": engine_steps.get("test", 0.0),
        }
        parts["other"] = round(wall - sum(parts.values()), 1)
    else:
        parts = split(steps, wall)
    result = {
        "phase": phase,
        "builder": builder,
        "exit_status": done.returncode,
        "wall_s": wall,
        "load_before": load_before,
        "load_after": load(),
        "split_s": parts,
        "cibuildwheel_steps_s": steps,
        "engine_steps_s": engine_steps,
        "ccache": build.get("ccache"),
        "ccache_note": build.get("ccache_note"),
        "build_dir": build.get("build_dir"),
        "prefix": (record.get("inputs") or {}).get("prefix"),
        "wheel": (build.get("wheels") or [{}])[0].get("name"),
        "wheel_sha256": (build.get("wheels") or [{}])[0].get("sha256"),
        "tests": build.get("tests"),
        "error": record.get("error"),
    }
    print(json.dumps(result, indent=1), flush=True)
    return result


def restore(saved: Path, cache: Path) -> None:
    """What actions/cache's restore does: the saved directory at its path again."""
    target = cache / "container"
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(saved, target, symlinks=True)


def container_phases(args: argparse.Namespace, cache: Path) -> dict[str, Any]:
    phases: dict[str, Any] = {}
    saved = args.base / "saved-build-cache"
    shutil.rmtree(cache / "container", ignore_errors=True)
    shutil.rmtree(saved, ignore_errors=True)
    phases["cold"] = run_ci(
        args,
        "cold",
        args.base / "work-cold",
        sdist=args.sdist,
        builder="cibuildwheel",
        cache=cache,
    )
    # actions/cache's save after the job: the build cache as the cold job left it.
    shutil.move(cache / "container", saved)
    phases["cold"]["saved_cache_mb"] = {
        part.name: round(sum(f.stat().st_size for f in part.rglob("*") if f.is_file()) / 2**20)
        for libc in saved.iterdir()
        for part in libc.iterdir()
    }
    restore(saved, cache)
    phases["warm"] = run_ci(
        args,
        "warm",
        args.base / "work-warm",
        sdist=args.sdist,
        builder="cibuildwheel",
        cache=cache,
    )
    restore(saved, cache)
    changed = changed_sdist(cache, args.base / "changed-sdist")  # the sdist in <cache>/sdists
    phases["changed"] = run_ci(
        args,
        "changed",
        args.base / "work-changed",
        sdist=str(changed),
        builder="cibuildwheel",
        cache=cache,
    )
    return phases


def host_phases(args: argparse.Namespace) -> dict[str, Any]:
    """The host route: cold, then the same in the same work dir while another process holds
    the first numbered link (as a build through the link route does). Cold: no compiler
    cache, no build dir; the library cache stays (OpenBLAS is the library step, not the
    build step the ratio compares)."""
    cache = args.base / "host-cache"
    shutil.rmtree(cache / "ccache", ignore_errors=True)
    work = args.base / "work-host"
    phases = {
        "host_cold": run_ci(args, "host_cold", work, sdist=args.sdist, builder="host", cache=cache)
    }
    base = Path(os.environ.get("TMPDIR", "/tmp"))
    with (base / "mb-prefix-0.lock").open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except OSError:
            held = False  # already held: by another build, which is the point too
        phases["host_warm"] = run_ci(
            args, "host_warm", work, sdist=args.sdist, builder="host", cache=cache, fresh=False
        )
        phases["host_warm"]["slot_0_held_by"] = "this bench" if held else "another build"
    return phases


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("phase", nargs="?", default="report", choices=["run", "report"])
    parser.add_argument("--job", default="cp311-manylinux_x86_64")
    parser.add_argument("--sdist", default="scipy==1.17.1")
    parser.add_argument("--test-level", default="fast", choices=["fast", "full"])
    parser.add_argument("--test-modules", default="", help="e.g. 'scipy.ndimage'")
    parser.add_argument("--container-engine", default="podman")
    parser.add_argument(
        "--base",
        type=Path,
        default=ROOT / ".multibuild" / "bench-nightly",
        help="work dirs, wheelhouses and logs (default .multibuild/bench-nightly here)",
    )
    parser.add_argument(
        "--cache",
        type=Path,
        help="the cache dir: the local image's records (images/) and the build cache "
        "(default BASE/cache)",
    )
    parser.add_argument("--host", action="store_true", help="also the host route's phases")
    parser.add_argument("--skip-container", action="store_true")
    args = parser.parse_args()
    args.cache = args.cache or args.base / "cache"
    if args.phase == "report":
        found = sorted(RESULTS.glob("nightly-*.json"))
        if not found:
            sys.exit("no result yet: python bench/bench_nightly.py run")
        print(found[-1].read_text())
        return 0
    args.base.mkdir(parents=True, exist_ok=True)
    phases: dict[str, Any] = {}
    if not args.skip_container:
        phases.update(container_phases(args, args.cache))
    if args.host:
        phases.update(host_phases(args))

    def build_s(phase: str) -> float | None:
        found = phases.get(phase)
        return found["split_s"]["build"] if found else None

    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "job": args.job,
        "sdist": args.sdist,
        "test_level": args.test_level,
        "test_modules": args.test_modules or "all",
        "phases": phases,
        "warm_to_cold_build": ratio(build_s("warm"), build_s("cold")),
        "changed_to_cold_build": ratio(build_s("changed"), build_s("cold")),
        "host_warm_to_cold_build": ratio(build_s("host_warm"), build_s("host_cold")),
        "target": 0.10,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    out = RESULTS / f"nightly-{datetime.now(timezone.utc).strftime('%Y-%m-%dT%H%M')}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(f"bench: {out}")
    return 0 if all(p["exit_status"] == 0 for p in phases.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
