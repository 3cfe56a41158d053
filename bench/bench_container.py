"""The scipy CI job through the container route against the host route, in one run: the same
job (`python -m multibuild ci --job cp311-manylinux_x86_64`, as `nox -s ci` runs it), once
with `--builder cibuildwheel` (cibuildwheel in the local image from Debian packages: glibc
2.31, GCC 10) and once with `--builder host` (the engine on this machine), each from a fresh
work dir (cold: empty library cache and ccache), one after the other.

  python bench/bench_container.py run [--sdist scipy==1.17.1] [--test-modules "scipy.linalg"]
  python bench/bench_container.py report      # the newest run's figures

Figures: wall time of each route and their ratio (target: container / host <= 1.15), wheel
tag and size, scipy's test counts in each route, the image's time (built or found by its key
before the job). --test-modules bounds scipy's test step in both routes alike (passed into
the container with MB_CONTAINER_ENV); the report says which tests ran. A cold scipy build is
15-55 minutes per route on 2 cores: run it with nohup and poll.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
ROUTES = ("cibuildwheel", "host")


def load() -> str:
    """The load average (1, 5, 15 min): the machine is shared, so each route says its own."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def newest_record(wheelhouse: Path) -> dict[str, Any] | None:
    records = sorted(wheelhouse.glob("*.json"), key=lambda p: p.stat().st_mtime)
    return json.loads(records[-1].read_text()) if records else None


def run_route(route: str, args: argparse.Namespace, base: Path) -> dict[str, Any]:
    work, wheelhouse = base / f"{route}-work", base / f"{route}-wheelhouse"
    for path in (work, wheelhouse):
        shutil.rmtree(path, ignore_errors=True)  # cold: no library cache, no ccache
    command = [
        sys.executable,
        "-m",
        "multibuild",
        "ci",
        "--job",
        args.job,
        "--builder",
        route,
        "--no-upload",
        "--sdist",
        args.sdist,
        "--test-level",
        args.test_level,
        "--work-dir",
        str(work),
        "--wheelhouse",
        str(wheelhouse),
    ]
    if route == "cibuildwheel":
        command += ["--container-engine", args.container_engine]
    env = {k: v for k, v in os.environ.items() if not k.startswith("MB_")}
    env["MB_CACHE_DIR"] = str(base / f"{route}-cache")
    if route == "cibuildwheel":
        # The local image's file stages and records (MB_CACHE_DIR/images); the image itself
        # lives in the engine's storage.
        env["MB_CACHE_DIR"] = str(args.image_cache)
    if args.test_modules:
        env["SCIPY_TEST_MODULES"] = args.test_modules
        env["MB_CONTAINER_ENV"] = "SCIPY_TEST_MODULES"
    print(f"bench: {route}: {' '.join(command)}", flush=True)
    started, load_before = time.perf_counter(), load()
    with (base / f"{route}.log").open("w") as log:
        done = subprocess.run(
            command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, check=False
        )
    wall = round(time.perf_counter() - started, 1)
    record = newest_record(wheelhouse) or {}
    build = (record.get("builds") or [{}])[0]
    wheels = build.get("wheels") or [{}]
    return {
        "route": route,
        "exit_status": done.returncode,
        "wall_s": wall,
        "load_before": load_before,
        "load_after": load(),
        "record_duration_s": record.get("duration_s"),
        "steps": build.get("steps"),
        "wheel": wheels[0].get("name"),
        "wheel_bytes": wheels[0].get("size"),
        "platform_tag": wheels[0].get("platform_tag"),
        "policy": (build.get("repair") or {}).get("policy"),
        "grafted": [Path(g).name for g in (build.get("repair") or {}).get("grafted", [])],
        "tests": build.get("tests"),
        "container": (record.get("settings") or {}).get("container"),
        "error": record.get("error"),
    }


def image_time(args: argparse.Namespace) -> dict[str, Any]:
    """The local image before the job: found by its content key (or built, cold)."""
    start = time.perf_counter()
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "multibuild",
            "image",
            "build",
            "--container-engine",
            args.container_engine,
            "--cache-dir",
            str(args.image_cache),
            "--json",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    wall = round(time.perf_counter() - start, 1)
    if done.returncode != 0:
        sys.exit(f"bench: image build failed:\n{done.stdout[-2000:]}{done.stderr[-2000:]}")
    record = json.loads(done.stdout[done.stdout.index("{") :])
    return {
        "reference": record["reference"],
        "wall_s": wall,
        "built_in_s": record.get("build_seconds"),
        "stages": record.get("stages"),
    }


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a and b else None


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("phase", nargs="?", default="report", choices=["run", "report"])
    parser.add_argument("--job", default="cp311-manylinux_x86_64")
    parser.add_argument("--sdist", default="scipy==1.17.1")
    parser.add_argument("--test-level", default="fast", choices=["fast", "full"])
    parser.add_argument("--test-modules", default="", help="e.g. 'scipy.linalg scipy.fft'")
    parser.add_argument("--container-engine", default="podman")
    parser.add_argument(
        "--base",
        type=Path,
        default=ROOT / ".multibuild" / "bench-container",
        help="work dirs and wheelhouses (default .multibuild/bench-container in the repository)",
    )
    parser.add_argument(
        "--image-cache",
        type=Path,
        help="the local image's cache (default BASE/images)",
    )
    parser.add_argument(
        "--order", default="cibuildwheel,host", help="which route first (the other follows)"
    )
    args = parser.parse_args()
    args.image_cache = args.image_cache or args.base / "images"
    if args.phase == "report":
        found = sorted(RESULTS.glob("container-*.json"))
        if not found:
            sys.exit("no result yet: python bench/bench_container.py run")
        print(found[-1].read_text())
        return 0
    args.base.mkdir(parents=True, exist_ok=True)
    image = image_time(args)
    routes = {route: run_route(route, args, args.base) for route in args.order.split(",")}
    container, host = routes["cibuildwheel"], routes["host"]
    result = {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "job": args.job,
        "sdist": args.sdist,
        "test_level": args.test_level,
        "test_modules": args.test_modules or "all",
        "image": image,
        "routes": routes,
        "container_to_host_wall": ratio(container["wall_s"], host["wall_s"]),
        "target": 1.15,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M")
    out = RESULTS / f"container-{day}.json"
    out.write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result, indent=1))
    print(f"bench: {out}")
    return 0 if all(r["exit_status"] == 0 for r in routes.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
