"""Download figures for wheel-uploader, against real servers on 127.0.0.1 (not part of the tests).

    python bench/bench_fetch.py [--wheels 200] [--mib 2] [--jobs 8] [--rounds 3] [--quick]
                                [--only http|swift|wan] [--rtt-ms 20] [--window-kib 256]

One container of N wheels (M MiB each, random content, with a build record giving every
sha256), served by `python -m http.server` and by a loopback Swift (public container, JSON
listing). For each server, in one run:

- sequential: one `urllib.request.urlretrieve` after another (what the old script did);
- wheel-uploader's download: listing + parallel download + sha256 check + rename;
- `curl --parallel --parallel-immediate --parallel-max JOBS` over the same URLs (no checks).

Then the same through a loopback relay modelling a long-haul link (`--rtt-ms`, `--window-kib`:
each request waits a round trip, each connection moves one window per round trip), where one
connection is slow for the reason it is slow on a real network.

Targets: wheel-uploader >= 4x faster than sequential, >= 0.7x curl's throughput.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from multibuild.release.fetch import Fetcher  # noqa: E402
from multibuild.release.listing import Reader  # noqa: E402
from multibuild.util.http import Http  # noqa: E402
from tests.servers.release import ShapingProxy, StaticServer  # noqa: E402
from tests.servers.swift import ACCOUNT, KEY, USER, SwiftServer  # noqa: E402

MiB = 1 << 20
NAME = "benchpkg"


def make_container(root: Path, count: int, size: int) -> list[Path]:
    """`count` wheels of about `size` bytes (stored, incompressible) and one build record."""
    root.mkdir(parents=True, exist_ok=True)
    wheels, record_wheels = [], []
    for i in range(count):
        tag = f"{i + 1}-cp311-cp311-manylinux_2_17_x86_64"
        path = root / f"{NAME}-1.0-{tag}.whl"
        with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED) as archive:
            archive.writestr(f"{NAME}/data.bin", os.urandom(size))
            archive.writestr(f"{NAME}-1.0.dist-info/METADATA", f"Name: {NAME}\nVersion: 1.0\n")
        data = path.read_bytes()
        record_wheels.append(
            {"name": path.name, "size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
        )
        wheels.append(path)
    record = {"schema": 1, "build_id": "bench", "builds": [{"wheels": record_wheels}]}
    (root / "bench.json").write_text(json.dumps(record))
    return wheels


def sequential(urls: list[str], dest: Path) -> float:
    dest.mkdir()
    started = time.monotonic()
    for url in urls:
        urllib.request.urlretrieve(url, dest / url.rsplit("/", 1)[-1])
    return time.monotonic() - started


def ours(url: str, dest: Path, jobs: int) -> tuple[float, int]:
    started = time.monotonic()
    http = Http()
    try:
        listing = Reader(http).read(url, NAME)
        entries = [
            e for e in listing.entries.values() if "/" not in e.name and e.name.endswith(".whl")
        ]
        report = Fetcher(http, dest, jobs=jobs).fetch(entries)
    finally:
        http.close()
    assert not report.unverified, "every wheel must be checked by sha256"
    return time.monotonic() - started, len(report.downloaded)


def curl(urls: list[str], dest: Path, jobs: int) -> float:
    dest.mkdir()
    config = dest.parent / f"{dest.name}.curlrc"
    config.write_text(
        "".join(f'url = "{u}"\noutput = "{dest / u.rsplit("/", 1)[-1]}"\n' for u in urls)
    )
    started = time.monotonic()
    subprocess.run(
        [
            "curl",
            "--parallel",
            "--parallel-immediate",
            "--parallel-max",
            str(jobs),
            "--no-progress-meter",
            "--fail",
            "-K",
            str(config),
        ],
        check=True,
    )
    return time.monotonic() - started


def same(dest: Path, wheels: list[Path]) -> None:
    for wheel in wheels:
        got = dest / wheel.name
        assert got.stat().st_size == wheel.stat().st_size, got


def measure(
    label: str, url: str, urls: list[str], wheels: list[Path], work: Path, *, jobs: int, rounds: int
) -> dict[str, float]:
    """Each method `rounds` times, interleaved (the machine's load changes); the medians."""
    total = sum(w.stat().st_size for w in wheels) / MiB
    runs: dict[str, list[float]] = {"sequential": [], "curl": [], "wheel-uploader": []}
    for index in range(rounds):
        work.mkdir()
        runs["sequential"].append(sequential(urls, work / "seq"))
        same(work / "seq", wheels)
        runs["curl"].append(curl(urls, work / "curl", jobs))
        same(work / "curl", wheels)
        seconds, count = ours(url, work / "ours", jobs)
        assert count == len(wheels), index
        runs["wheel-uploader"].append(seconds)
        same(work / "ours", wheels)
        shutil.rmtree(work)
    figures = {name: statistics.median(values) for name, values in runs.items()}
    print(
        f"\n{label}: {len(wheels)} wheels, {total:.0f} MiB, {jobs} parallel downloads, "
        f"median of {rounds} interleaved rounds"
    )
    for name, seconds in figures.items():
        spread = ", ".join(f"{v:.2f}" for v in runs[name])
        print(f"  {name:<15} {seconds:7.2f} s  {total / seconds:8.1f} MiB/s   ({spread})")
    speedup = figures["sequential"] / figures["wheel-uploader"]
    vs_curl = figures["curl"] / figures["wheel-uploader"]
    print(
        f"  speed-up vs sequential: {speedup:.2f}x (target >= 4x) "
        f"{'PASS' if speedup >= 4 else 'MISS'}"
    )
    print(
        f"  throughput vs curl:     {vs_curl:.2f}x (target >= 0.7x) "
        f"{'PASS' if vs_curl >= 0.7 else 'MISS'}"
    )
    return figures


def wan(args: argparse.Namespace, root: Path) -> None:
    """The same comparison through the shaping proxy (http.server behind it)."""
    container = root / "wan"
    wheels = make_container(container, args.wan_wheels, int(args.mib * MiB))
    server = StaticServer(container)
    server.start()
    proxy = ShapingProxy(server.port, args.rtt_ms / 1000, args.window_kib * 1024)
    proxy.start()
    try:
        urls = [proxy.url + w.name for w in wheels]
        label = (
            f"http.server behind a {args.rtt_ms:.0f} ms round trip, {args.window_kib} KiB "
            "in flight per connection"
        )
        measure(label, proxy.url, urls, wheels, root / "w3", jobs=args.jobs, rounds=1)
    finally:
        proxy.stop()
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--wheels", type=int, default=200)
    parser.add_argument("--mib", type=float, default=2.0)
    parser.add_argument("--jobs", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="40 wheels of 1 MiB")
    parser.add_argument("--only", choices=("http", "swift", "wan"), help="one part only")
    parser.add_argument("--rtt-ms", type=float, default=20.0, help="round trip of --only wan")
    parser.add_argument("--window-kib", type=int, default=256, help="in flight per connection")
    parser.add_argument("--wan-wheels", type=int, default=60, help="wheels through the proxy")
    args = parser.parse_args()
    if args.quick:
        args.wheels, args.mib = 40, 1.0
    if shutil.which("curl") is None:
        print("curl is not installed (.ci/apt-packages.txt)")
        return 1
    with tempfile.TemporaryDirectory(prefix="bench-fetch-") as tmp:
        root = Path(tmp)
        container = root / "container"
        wheels = make_container(container, args.wheels, int(args.mib * MiB))
        print(f"cores: {os.cpu_count()}, load average: {os.getloadavg()[0]:.2f}")
        if args.only in (None, "http"):
            server = StaticServer(container)
            server.start()
            try:
                urls = [server.url + w.name for w in wheels]
                label = "python -m http.server"
                work = root / "w1"
                measure(label, server.url, urls, wheels, work, jobs=args.jobs, rounds=args.rounds)
            finally:
                server.stop()
        if args.only in (None, "swift"):
            swift = SwiftServer(root / "swift")
            swift.start()
            try:
                from swiftclient.client import Connection

                conn = Connection(authurl=swift.auth_url, user=f"{ACCOUNT}:{USER}", key=KEY)
                conn.put_container("bench", headers={"X-Container-Read": ".r:*,.rlistings"})
                for path in [*wheels, container / "bench.json"]:
                    with path.open("rb") as stream:
                        conn.put_object(
                            "bench", path.name, stream, content_length=path.stat().st_size
                        )
                base = f"{conn.get_auth()[0]}/bench/"
                conn.close()
                urls = [base + w.name for w in wheels]
                work = root / "w2"
                measure("Swift", base, urls, wheels, work, jobs=args.jobs, rounds=args.rounds)
            finally:
                swift.stop()
        if args.only in (None, "wan"):
            wan(args, root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
