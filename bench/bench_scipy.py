"""scipy for real: cold, warm and one-file-changed builds through the engine, and the same
work typed by hand, on this machine. Each phase is one long run (a cold build is ~40 min on
2 cores), so phases run one at a time and write bench/results/scipy-<phase>-<date>.json;
`report` turns the newest result of each phase into ratios.

Phases (`python bench/bench_scipy.py PHASE [options]`):
  cold     a fresh work dir (empty library cache and ccache) -> tested wheel
  warm     the same sdist again, same work dir (the kept build dir: ninja decides what is stale)
  changed  an sdist with one C file changed (a function appended), same work dir
  repro    the same sdist in another fresh work dir with its own caches: is the wheel the
           cold one, byte for byte? If not, which members differ
  byhand   the raw commands: scipy-openblas32 + its .pc, `python -m build --wheel`,
           `auditwheel repair`, a fresh venv, the same scipy.test() call; no ccache
  ingest   store the record of an engine run made without this script (--record, --phase)
  report   ratios from the newest result of each phase (bench/results/scipy-report-*.json)

Targets: cold / byhand <= 1.05; the build step of an unchanged commit (warm) <= 0.03 x the
cold one, one changed C file <= 0.05 x; repro: the same sha256. The report compares only
results of one series: warm, changed and repro made after the newest cold; by hand within
three hours of it (the machine's load changes over a day).
Use --test-modules to bound the test step of warm/changed runs (and say so: the report shows
what each phase tested). Runs the engine as `nox -s build` does.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import zipfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
CHANGED_FILE = "scipy/ndimage/src/ni_filters.c"  # one C file of one extension


def machine() -> dict[str, Any]:
    model = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    return {
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "nproc": os.cpu_count(),
        "cpu": model,
        "platform": platform.platform(),
        "python": platform.python_version(),
    }


def save(phase: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    day = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H%M")
    path = RESULTS / f"scipy-{phase}-{day}.json"
    path.write_text(json.dumps({"phase": phase, "machine": machine(), **data}, indent=1) + "\n")
    print(f"{phase}: {path}")
    return path


def newest(phase: str) -> dict[str, Any] | None:
    found = sorted(RESULTS.glob(f"scipy-{phase}-*.json"))
    return json.loads(found[-1].read_text()) if found else None


def engine_sdist(work_dir: Path) -> Path:
    """The sdist the engine downloaded and verified (kept in its cache by the cold phase)."""
    for downloads in (work_dir / "cache" / "sdists", work_dir / "sdists"):
        found = sorted(downloads.glob("scipy-*.tar.gz"))
        if found:
            return found[-1]
    sys.exit(f"no sdist in {work_dir / 'cache' / 'sdists'}: run the cold phase first")


# -- the engine ------------------------------------------------------------------------------------


def summarize_record(record: dict[str, Any], work_dir: Path | None) -> dict[str, Any]:
    build = record["builds"][0]
    out: dict[str, Any] = {
        "status": record["status"],
        "record_id": record["build_id"],
        "engine_duration_s": record["duration_s"],
        "steps": build["steps"],
        "ccache": build.get("ccache"),
        "libraries": build.get("libraries"),
        "tests": build.get("tests"),
        "grafted": [Path(g).name for g in build.get("repair", {}).get("grafted", [])],
        "policy": build.get("repair", {}).get("policy"),
        "wheel_repaired_bytes": build["wheels"][0]["size"] if build.get("wheels") else None,
        "wheel_sha256": build["wheels"][0]["sha256"] if build.get("wheels") else None,
        "wheel_name": build["wheels"][0]["name"] if build.get("wheels") else None,
        "inputs": record.get("inputs"),
    }
    if work_dir is not None:
        unrepaired = sorted((work_dir / "dist").glob("cp*/*.whl"))
        if unrepaired:
            out["wheel_unrepaired_bytes"] = unrepaired[-1].stat().st_size
    return out


def run_engine(args: argparse.Namespace, sdist: str, env_extra: dict[str, str]) -> dict[str, Any]:
    wheelhouse = Path(args.wheelhouse)
    before = set(wheelhouse.glob("*.json"))
    command = [
        sys.executable,
        "-m",
        "multibuild",
        "build",
        "--install-system-deps",
        "--sdist",
        sdist,
        "--python",
        args.python,
        "--work-dir",
        args.work_dir,
        "--wheelhouse",
        args.wheelhouse,
        "--test-level",
        args.test_level,
    ]
    env = dict(os.environ, **env_extra)
    if args.test_modules:
        env["SCIPY_TEST_MODULES"] = args.test_modules
    start = time.perf_counter()
    done = subprocess.run(command, cwd=ROOT, env=env, check=False)
    wall = time.perf_counter() - start
    records = sorted(set(wheelhouse.glob("*.json")) - before)
    if not records:
        sys.exit(f"the engine left no record (exit status {done.returncode})")
    record = json.loads(records[-1].read_text())
    return {
        "command": " ".join(command),
        "wall_s": round(wall, 1),
        "test_modules": args.test_modules or "all",
        "test_level": args.test_level,
        "exit_status": done.returncode,
        **summarize_record(record, Path(args.work_dir)),
    }


def changed_sdist(work_dir: Path, dest: Path) -> Path:
    """The engine's downloaded sdist with one C file changed; same top directory, so the
    unpacked tree has the same paths (ccache hits for everything else)."""
    original = engine_sdist(work_dir)
    dest.mkdir(parents=True, exist_ok=True)
    out = dest / original.name
    with tempfile.TemporaryDirectory() as tmp:
        with tarfile.open(original) as tar:
            tar.extractall(tmp, filter="data")
        (top,) = Path(tmp).iterdir()
        target = top / CHANGED_FILE
        # Code, not a comment: a comment leaves the preprocessed text as it was, and ccache
        # (preprocessor mode) would still hit.
        marker = int(time.time())
        target.write_text(
            target.read_text()
            + "\nstatic int __attribute__((unused)) mb_bench_changed(void)"
            + f" {{ return {marker}; }}\n"
        )
        with tarfile.open(out, "w:gz") as tar:
            tar.add(top, arcname=top.name)
    return out


# -- by hand ---------------------------------------------------------------------------------------


def byhand(args: argparse.Namespace) -> dict[str, Any]:
    """The same work as the engine's, typed as a release manager would, timed step by step."""
    base = Path(args.byhand_dir)
    shutil.rmtree(base, ignore_errors=True)
    base.mkdir(parents=True)
    sdist = engine_sdist(Path(args.work_dir))
    python = shutil.which(f"python{args.python}") or sys.executable
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CCACHE", "MB_", "SCIPY_TEST"))}
    env["CCACHE_DISABLE"] = "1"  # by hand: a plain compiler
    steps: dict[str, float] = {}

    failures: list[str] = []

    def step(name: str, command: list[str], cwd: Path = base, **extra: str) -> None:
        print(f"byhand: {name}: {' '.join(command)}", flush=True)
        start = time.perf_counter()
        done = subprocess.run(command, cwd=cwd, env={**env, **extra}, check=False)
        steps[name] = round(steps.get(name, 0.0) + time.perf_counter() - start, 1)
        if done.returncode != 0:
            failures.append(f"{name}: exit status {done.returncode}")
            if name != "test":  # a failing test suite still has a time worth keeping
                save("byhand", {"steps": steps, "failures": failures})
                sys.exit(f"byhand: {name} failed")

    start = time.perf_counter()
    with tarfile.open(sdist) as tar:
        tar.extractall(base / "src", filter="data")
    (source,) = (base / "src").iterdir()
    bvenv = base / "venv-build"
    step("build env", [python, "-m", "venv", str(bvenv)])
    bpy = str(bvenv / "bin" / "python")
    version = args.openblas_wheel_version
    step("pre_build", [bpy, "-m", "pip", "install", "-q", "build", f"scipy-openblas32=={version}"])
    pc_dir = base / "openblas"
    pc_dir.mkdir()
    step(
        "pre_build",
        [
            bpy,
            "-c",
            "import scipy_openblas32 as o, sys; open(sys.argv[1], 'w').write(o.get_pkg_config())",
            str(pc_dir / "scipy-openblas.pc"),
        ],
    )
    lib_dir = subprocess.run(
        [bpy, "-c", "import scipy_openblas32 as o; print(o.get_lib_dir())"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    step(
        "build",
        [bpy, "-m", "build", "--wheel", "--outdir", str(base / "dist"), str(source)],
        PKG_CONFIG_PATH=str(pc_dir),
    )
    (wheel,) = (base / "dist").glob("*.whl")
    step(
        "repair",
        ["auditwheel", "repair", "-w", str(base / "repaired"), str(wheel)],
        LD_LIBRARY_PATH=lib_dir,
    )
    (repaired,) = (base / "repaired").glob("*.whl")
    tvenv = base / "venv-test"
    step("test env", [python, "-m", "venv", str(tvenv)])
    tpy = str(tvenv / "bin" / "python")
    step("test", [tpy, "-m", "pip", "install", "-q", str(repaired), *args.test_requires.split()])
    modules = repr(args.test_modules.split()) if args.test_modules else "None"
    run_dir = base / "test-run"
    run_dir.mkdir()
    step(
        "test",
        [
            tpy,
            "-c",
            "import os, sys, scipy; sys.exit(0 if scipy.test("
            f"label={args.test_level!r}, extra_argv=['-k', 'not TestDatasets', "
            "'--ignore=' + os.path.join(os.path.dirname(scipy.__file__), 'datasets', 'tests')], "
            f"tests={modules}, parallel={os.cpu_count()}) else 1)",
        ],
        cwd=run_dir,
    )
    return {
        "wall_s": round(time.perf_counter() - start, 1),
        "steps": steps,
        "failures": failures,
        "test_modules": args.test_modules or "all",
        "test_level": args.test_level,
        "wheel_unrepaired_bytes": wheel.stat().st_size,
        "wheel_repaired_bytes": repaired.stat().st_size,
        "grafted": sorted(
            Path(n).name
            for n in zipfile.ZipFile(repaired).namelist()
            if n.startswith("scipy.libs/")
        ),
    }


# -- reproducibility ---------------------------------------------------------------------------


def differing_members(first: Path, second: Path) -> list[dict[str, Any]]:
    """The members of two wheels whose bytes (or zip metadata) differ."""
    with zipfile.ZipFile(first) as a, zipfile.ZipFile(second) as b:
        infos_a = {i.filename: i for i in a.infolist()}
        infos_b = {i.filename: i for i in b.infolist()}
        out: list[dict[str, Any]] = []
        for name in sorted(set(infos_a) | set(infos_b)):
            ia, ib = infos_a.get(name), infos_b.get(name)
            if ia is None or ib is None:
                out.append({"member": name, "only_in": "first" if ib is None else "second"})
                continue
            what = []
            if a.read(name) != b.read(name):
                what.append("content")
            if ia.date_time != ib.date_time:
                what.append("date")
            if ia.external_attr != ib.external_attr:
                what.append("permissions")
            if what:
                out.append({"member": name, "differs": what, "sizes": [ia.file_size, ib.file_size]})
        if [i.filename for i in a.infolist()] != [i.filename for i in b.infolist()]:
            out.append({"member": "(order)", "differs": ["member order"]})
    return out


def repro(args: argparse.Namespace) -> dict[str, Any]:
    """The cold phase's sdist built again in another fresh work dir, with its own caches."""
    cold = newest("cold")
    if cold is None or not cold.get("wheel_sha256"):
        sys.exit("no cold result with a wheel: run the cold phase first")
    sdist = engine_sdist(Path(args.work_dir))
    other = argparse.Namespace(**vars(args))
    other.work_dir = f"{args.work_dir}-repro"
    other.wheelhouse = f"{args.wheelhouse}-repro"
    shutil.rmtree(other.work_dir, ignore_errors=True)
    shutil.rmtree(other.wheelhouse, ignore_errors=True)
    result = run_engine(other, str(sdist), {})
    first = Path(args.wheelhouse) / cold["wheel_name"] if cold.get("wheel_name") else None
    second = sorted(Path(other.wheelhouse).glob("*.whl"))
    same = result.get("wheel_sha256") == cold["wheel_sha256"]
    out = {
        "work_dir": other.work_dir,
        "same_sha256": same,
        "cold_sha256": cold["wheel_sha256"],
        **result,
    }
    if not same and first is not None and first.is_file() and second:
        out["differing_members"] = differing_members(first, second[-1])
    return out


# -- report ----------------------------------------------------------------------------------------


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None


def _date(result: dict[str, Any]) -> datetime:
    return datetime.strptime(result["machine"]["date"], "%Y-%m-%dT%H:%M:%SZ")


def report() -> dict[str, Any]:
    cold = newest("cold")
    if cold is None:
        sys.exit("no cold result yet")
    # One series: what ran after this cold build (same work dir), by hand close to it.
    warm, changed, made = (newest(p) for p in ("warm", "changed", "repro"))
    warm, changed, made = (
        r if r is not None and _date(r) >= _date(cold) else None for r in (warm, changed, made)
    )
    hand = newest("byhand")
    if hand is not None and abs((_date(hand) - _date(cold)).total_seconds()) > 3 * 3600:
        hand = None
    cold_build = cold["steps"]["build"]
    out: dict[str, Any] = {
        "cold_e2e_s": cold["wall_s"],
        "cold_build_s": cold_build,
        "cold_steps": cold["steps"],
        "cold_tests": cold.get("tests"),
        "cold_ccache": cold.get("ccache"),
        "repair_s": cold["steps"].get("repair"),
        "wheel_unrepaired_bytes": cold.get("wheel_unrepaired_bytes"),
        "wheel_repaired_bytes": cold.get("wheel_repaired_bytes"),
        "grafted": cold.get("grafted"),
    }
    for name, result in (("warm", warm), ("changed", changed)):
        if result is not None:
            out[f"{name}_build_s"] = result["steps"]["build"]
            out[f"{name}_build_ratio_to_cold"] = ratio(result["steps"]["build"], cold_build)
            out[f"{name}_ccache"] = result.get("ccache")
            out[f"{name}_e2e_s"] = result["wall_s"]
            out[f"{name}_tests"] = result.get("test_modules")
    if made is not None:
        out["repro_same_sha256"] = made["same_sha256"]
        out["repro_differing_members"] = made.get("differing_members", [])
    if hand is not None:
        out["byhand_e2e_s"] = hand["wall_s"]
        out["byhand_steps"] = hand["steps"]
        same_tests = hand.get("test_modules") == cold.get("test_modules")
        out["cold_to_byhand_ratio"] = ratio(cold["wall_s"], hand["wall_s"]) if same_tests else None
        out["cold_to_byhand_build_plus_repair_ratio"] = ratio(
            cold["steps"]["build"] + cold["steps"].get("repair", 0),
            hand["steps"]["build"] + hand["steps"].get("repair", 0),
        )
    for key, value in out.items():
        print(f"{key:40} {value}")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "phase",
        nargs="?",
        default="report",  # what `nox -s bench -- bench/bench_scipy.py` runs (no arguments)
        choices=["cold", "warm", "changed", "repro", "byhand", "ingest", "report"],
    )
    parser.add_argument("--sdist", default="scipy==1.17.1")
    parser.add_argument("--python", default="3.11")
    parser.add_argument(
        "--work-dir",
        default=str(ROOT / ".multibuild" / "bench-scipy" / "work"),
        help="the engine's work dir (default .multibuild/bench-scipy/work in the repository)",
    )
    parser.add_argument(
        "--wheelhouse",
        default=str(ROOT / ".multibuild" / "bench-scipy" / "wheelhouse"),
        help="(default .multibuild/bench-scipy/wheelhouse in the repository)",
    )
    parser.add_argument(
        "--byhand-dir",
        default=str(ROOT / ".multibuild" / "bench-scipy" / "byhand"),
        help="the by-hand build's directory (default .multibuild/bench-scipy/byhand)",
    )
    parser.add_argument("--test-level", default="fast", choices=["fast", "full"])
    parser.add_argument("--test-modules", default="", help="e.g. 'scipy.linalg scipy.fft'")
    parser.add_argument("--test-requires", default="pytest pytest-xdist hypothesis")
    parser.add_argument("--openblas-wheel-version", default="0.3.31.22.1")
    parser.add_argument("--record", help="ingest: the engine's record JSON")
    parser.add_argument("--as-phase", default="cold", help="ingest: which phase it was")
    parser.add_argument("--wall", type=float, help="ingest: wall time if measured outside")
    args = parser.parse_args()
    work_dir = Path(args.work_dir)
    if args.phase == "cold":
        shutil.rmtree(work_dir, ignore_errors=True)  # an empty library cache and ccache
        save("cold", run_engine(args, args.sdist, {}))
    elif args.phase == "warm":
        save("warm", run_engine(args, args.sdist, {}))
    elif args.phase == "changed":
        sdist = changed_sdist(work_dir, work_dir.parent / "scipy-changed-sdist")
        save("changed", {"changed_file": CHANGED_FILE, **run_engine(args, str(sdist), {})})
    elif args.phase == "repro":
        save("repro", repro(args))
    elif args.phase == "byhand":
        save("byhand", byhand(args))
    elif args.phase == "ingest":
        if not args.record:
            sys.exit("ingest needs --record")
        record = json.loads(Path(args.record).read_text())
        data = summarize_record(record, work_dir)
        data["wall_s"] = args.wall or record["duration_s"]
        data["test_modules"] = args.test_modules or "all"
        save(args.as_phase, data)
    else:
        save("report", report())
    return 0


if __name__ == "__main__":
    sys.exit(main())
