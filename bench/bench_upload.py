"""Figures for the upload side, against real servers on 127.0.0.1 (not part of the tests).

    python bench/bench_upload.py [--quick]

0. `first-run`: `python -m multibuild upload` of 50 wheels (5 of them segmented / multipart)
   with their records and logs through the fault proxy, 5 % of requests for each of its nine
   kinds of fault, three seeds, Swift and S3 (s3api): everything lands on the first run, the
   sha256 of every object is its file's, index.html lists exactly them, no segment is left
   that no manifest references; times against the same upload without faults;
1. uploads through the fault proxy at a 20 % fault rate (Swift and S3 via s3api): all land,
   hashes match; faults seen and retries made;
2. 8 concurrent `python -m multibuild upload` processes into one Swift container;
3. a container of 20,000 objects (10,000 wheels + their markers): full listing (Swift pages of
   10,000, S3 pages of 1,000) and the index filter;
4. upload throughput to loopback Swift: multibuild vs `swift upload`, single PUT and segmented.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from multibuild.options import UploadTuning  # noqa: E402
from multibuild.publish.containers import open_container  # noqa: E402
from multibuild.publish.containers.base import digest_file  # noqa: E402
from multibuild.publish.containers.retry import RetryPolicy  # noqa: E402
from multibuild.publish.index import INDEX, MARKERS, index_entries  # noqa: E402
from tests.servers.faultproxy import FAULTS, FaultProxyProcess  # noqa: E402
from tests.servers.swift import SwiftServer  # noqa: E402
from tests.servers.wheelhouse import make_build  # noqa: E402

MiB = 1 << 20
PER_FAULT = 0.05  # of all requests, for each kind of fault


def _wheelhouse(root: Path, count: int, big: int) -> dict[str, str]:
    """`count` builds of one wheel each (record and log too), `big` of them 6 MiB."""
    made = {}
    for i in range(count):
        size = 6 * MiB if i < big else 100_000 + 5_000 * i
        record = make_build(
            root,
            plat=f"x86_64_{i}",
            payload=os.urandom(size // 2).hex(),
            started=datetime(2026, 11, 23, tzinfo=timezone.utc) + timedelta(minutes=i),
        )
        for build in record["builds"]:
            for wheel in build["wheels"]:
                made[wheel["name"]] = wheel["sha256"]
    return made


def _upload(settings: Path, house: Path, env: dict[str, str]) -> tuple[float, str]:
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TRAVIS", "APPVEYOR", "MB_", "ST_", "OS_", "AWS_"))
    }
    clean.update(env)
    clean.update(
        {
            "GITHUB_ACTIONS": "true",
            "GITHUB_EVENT_NAME": "push",
            "GITHUB_REF": "refs/heads/main",
            "GITHUB_REF_NAME": "main",
            "PYTHONPATH": str(REPO),
        }
    )
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "multibuild", "upload", "--settings", str(settings), str(house)],
        env=clean,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if done.returncode != 0:
        return elapsed, f"FAILED ({done.returncode}): {done.stderr.strip().splitlines()[-1]}"
    return elapsed, done.stdout.strip().splitlines()[-3]


def _check(kind: str, url: str, root: Path, env: dict[str, str], expected: dict[str, str]) -> str:
    container = open_container(url, base_dir=root, environ=env)
    try:
        wrong = [
            n
            for n, sha in expected.items()
            if hashlib.sha256(container.get_bytes(n)).hexdigest() != sha
        ]
        page = container.get_bytes(INDEX).decode()
        listed = dict(re.findall(r'<a href="([^"#]+)#sha256=([0-9a-f]{64})"', page))
        orphans = 0
        if kind == "swift":
            name = url.removeprefix("swift://").split("/")[0]
            segments = open_container(f"swift://{name}_segments", base_dir=root, environ=env)
            live: set[str] = set()
            for obj in container.list():
                live |= container._live_segments(container._key(obj.name)) or set()  # type: ignore[attr-defined]
            orphans = sum(1 for o in segments.list() if o.name not in live)
            segments.close()
        else:
            client = container._client  # type: ignore[attr-defined]
            bucket = url[5:].split("/", maxsplit=1)[0]
            orphans = len(client.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
    finally:
        container.close()
    return (
        f"sha256 ok {len(expected) - len(wrong)}/{len(expected)}, index lists exactly them: "
        f"{listed == expected}, "
        + ("orphan segments" if kind == "swift" else "unfinished multipart uploads")
        + f": {orphans}"
    )


def first_run(
    server: SwiftServer,
    root: Path,
    seeds: tuple[int, ...],
    count: int,
    backends: tuple[str, ...] = ("swift", "s3"),
) -> None:
    house = root / "first-run-wheels"
    expected = _wheelhouse(house, count, big=max(1, count // 10))
    size = sum(p.stat().st_size for p in house.glob("*.whl")) / MiB
    print(f"[first-run] {len(expected)} wheels, {size:.0f} MiB, records and logs")
    tuning = {"MB_UPLOAD_BACKOFF": "0.1"}
    for kind in backends:
        segment = {"MB_SEGMENT_SIZE": str((1 if kind == "swift" else 5) * MiB)}
        url = f"{kind}://first-{kind}-clean"
        settings = root / f"first-{kind}.toml"
        settings.write_text(
            f'[project]\nname = "pkg"\nrepo = "x"\nBUILD_COMMIT = "v1"\n'
            f'[upload]\npre_release = "{url}"\n'
        )
        direct = server.env() if kind == "swift" else server.s3_env()
        base, line = _upload(settings, house, {**direct, **tuning, **segment})
        print(f"  {kind} without faults: {base:.1f} s; {line}")
        print(f"    {_check(kind, url, root, direct, expected)}")
        for seed in seeds:
            proxy = FaultProxyProcess(
                root, server.proxy_port, rate=PER_FAULT * len(FAULTS), stall_s=2.5, seed=seed
            )
            try:
                env = (
                    server.env(auth_url=f"{proxy.endpoint}/auth/v1.0")
                    if kind == "swift"
                    else server.s3_env(endpoint=proxy.endpoint)
                )
                url = f"{kind}://first-{kind}-{seed}"
                settings.write_text(
                    f'[project]\nname = "pkg"\nrepo = "x"\nBUILD_COMMIT = "v1"\n'
                    f'[upload]\npre_release = "{url}"\n'
                )
                elapsed, line = _upload(settings, house, {**env, **tuning, **segment})
                counts = proxy.counts()
            finally:
                proxy.stop()
            total = sum(counts.values())
            faults = total - counts.get("ok", 0)
            print(
                f"  {kind} seed {seed}: {elapsed:.1f} s = {elapsed / base:.1f}x; {line}\n"
                f"    {total} requests, {faults} faults ({100 * faults / total:.0f} %: "
                f"{dict(sorted((k, v) for k, v in counts.items() if k != 'ok'))})\n"
                f"    {_check(kind, url, root, direct, expected)}"
            )


def faults(server: SwiftServer, root: Path, count: int) -> None:
    for kind in ("swift", "s3"):
        proxy = FaultProxyProcess(root, server.proxy_port, rate=0.2, stall_s=2.5, seed=11)
        try:
            if kind == "swift":
                env = server.env(auth_url=f"{proxy.endpoint}/auth/v1.0")
            else:
                env = server.s3_env(endpoint=proxy.endpoint)
            policy = RetryPolicy(
                attempts=15, base_s=0.05, max_wait_s=1, deadline_s=300, timeout_s=2
            )
            container = open_container(
                f"{kind}://fault-bench-{kind}",
                base_dir=root,
                environ=env,
                policy=policy,
                tuning=UploadTuning(segment_size=256 << 10 if kind == "swift" else 5 * MiB),
            )
            started = time.monotonic()
            container.ensure()
            files = []
            for i in range(count):
                size = (i % 5 + 1) * 150_000 + (6 * MiB if kind == "s3" and i % 10 == 0 else 0)
                path = root / f"fault-{kind}-{i}-1.0-py3-none-any.whl"
                path.write_bytes(os.urandom(size))
                container.put_file(path.name, path, digest_file(path))
                files.append(path)
            elapsed = time.monotonic() - started
            ok = sum(
                hashlib.sha256(container.get_bytes(p.name)).hexdigest() == digest_file(p).sha256
                for p in files
            )
            counts = proxy.counts()
            total = sum(counts.values())
            injected = total - counts.get("ok", 0)
            print(
                f"[faults 20%] {kind}: {ok}/{count} files landed with matching sha256 in "
                f"{elapsed:.1f} s; {total} requests, {injected} faults injected "
                f"({100 * injected / total:.0f} %: {dict(sorted(counts.items()))}), "
                f"{container.stats.retries} retries"
            )
            container.close()
        finally:
            proxy.stop()


def concurrent(server: SwiftServer, root: Path, jobs: int) -> None:
    settings = root / "settings.toml"
    settings.write_text(
        '[project]\nname = "pkg"\nrepo = "x"\nBUILD_COMMIT = "v1"\n'
        '[upload]\npre_release = "swift://concurrent-bench"\n'
    )
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("GITHUB_", "TRAVIS", "APPVEYOR"))
    }
    env.update(server.env())
    env.update(
        {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "push", "GITHUB_REF": "refs/heads/main"}
    )
    env["PYTHONPATH"] = str(REPO)
    expected = set()
    houses = []
    for job in range(jobs):
        house = root / f"job{job}"
        record = make_build(
            house,
            plat=f"x86_64_{job}",
            pythons=("3.11", "3.12", "3.13"),
            started=datetime(2026, 11, 23, tzinfo=timezone.utc) + timedelta(minutes=job),
        )
        expected |= {w["name"] for b in record["builds"] for w in b["wheels"]}
        houses.append(house)
    started = time.monotonic()
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "multibuild", "upload", "--settings", str(settings), str(h)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        for h in houses
    ]
    errors = [p.communicate()[1] for p in procs]
    elapsed = time.monotonic() - started
    assert all(p.returncode == 0 for p in procs), errors
    container = open_container("swift://concurrent-bench", base_dir=root, environ=server.env())
    page = container.get_bytes("index.html").decode()
    listed = {n for n in expected if f'href="{n}#sha256=' in page}
    history = container.get_bytes("history.html").decode().count('<tr class="build')
    print(
        f"[concurrent] {jobs} uploaders, {len(expected)} wheels: {elapsed:.1f} s wall; "
        f"index lists {len(listed)}/{len(expected)}, history {history}/{len(expected)} rows"
    )


def big_container(server: SwiftServer, root: Path, wheels: int) -> None:
    """Fill with Swift's bulk middleware (one tar per 2,000 objects), then list."""
    container = open_container("swift://big-bench", base_dir=root, environ=server.env())
    container.ensure()
    conn = container._conn  # type: ignore[attr-defined]
    sha = "a" * 64
    started = time.monotonic()
    names = [f"pkg-1.0.dev{i:05d}-cp311-cp311-manylinux_2_36_x86_64.whl" for i in range(wheels)]
    objects = [(n, b"w") for n in names] + [(f"{MARKERS}{n}/1-{sha}", b"v") for n in names]
    for start in range(0, len(objects), 2000):
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            for name, data in objects[start : start + 2000]:
                info = tarfile.TarInfo(name)
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        conn.put_object(
            "big-bench",
            "",
            buffer.getvalue(),
            query_string="extract-archive=tar",
            headers={"Accept": "application/json"},
        )
    fill = time.monotonic() - started
    started = time.monotonic()
    listed = list(container.list())
    swift_list = time.monotonic() - started
    started = time.monotonic()
    entries = index_entries(listed)
    filt = time.monotonic() - started
    s3 = open_container("s3://big-bench", base_dir=root, environ=server.s3_env())
    started = time.monotonic()
    s3_listed = list(s3.list())
    s3_list = time.monotonic() - started
    print(
        f"[20,000 objects] filled in {fill:.1f} s (bulk); Swift listing {len(listed)} objects "
        f"in {swift_list:.2f} s (pages of 10,000); S3 listing (s3api) {len(s3_listed)} in "
        f"{s3_list:.2f} s (pages of 1,000); index filter -> {len(entries)} wheels in {filt:.3f} s"
    )


def throughput(server: SwiftServer, root: Path, size: int) -> None:
    path = root / "big-1.0-py3-none-any.whl"
    with path.open("wb") as out:
        block = os.urandom(MiB)
        for _ in range(size // MiB):
            out.write(block)
    swift_cli = shutil.which("swift")
    env = {**os.environ, **server.env()}
    for segment in (0, 64 * MiB):
        label = f"segments of {segment // MiB} MiB" if segment else "single PUT"
        container = open_container(
            "swift://tp-bench",
            base_dir=root,
            environ=server.env(),
            tuning=UploadTuning(segment_size=segment or 2 * size),
        )
        container.ensure()
        started = time.monotonic()
        digest = digest_file(path)
        hashed = time.monotonic() - started
        container.put_file(path.name, path, digest)
        ours = time.monotonic() - started
        container.delete(path.name)
        container.close()
        theirs = float("nan")
        if swift_cli:
            argv = [swift_cli, "upload", "tp-cli", str(path), "--object-name", path.name]
            if segment:
                argv += ["--segment-size", str(segment), "--use-slo"]
            started = time.monotonic()
            subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
            theirs = time.monotonic() - started
        mb = size / MiB
        sent = ours - hashed
        print(
            f"[throughput] {mb:.0f} MiB, {label}: multibuild {mb / ours:.0f} MiB/s "
            f"({ours:.1f} s: {hashed:.1f} s sha256+md5 of the file, {sent:.1f} s upload + "
            f"verify = {mb / sent:.0f} MiB/s), `swift upload` {mb / theirs:.0f} MiB/s "
            f"({theirs:.1f} s)"
        )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="smaller figures")
    parser.add_argument(
        "--only",
        choices=["first-run", "faults", "concurrent", "listing", "throughput"],
        action="append",
    )
    parser.add_argument("--seeds", default="1,2,3", help="fault proxy seeds for first-run")
    parser.add_argument("--backend", choices=["swift", "s3"], action="append", help="first-run")
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="bench-upload-"))
    server = SwiftServer(root / "swift")
    server.start()
    print(f"[swift] single-node Swift up in {server.startup_s:.1f} s")
    try:
        only = set(args.only or ["first-run", "faults", "concurrent", "listing", "throughput"])
        if "first-run" in only:
            seeds = tuple(int(s) for s in args.seeds.split(","))
            backends = tuple(args.backend or ("swift", "s3"))
            first_run(server, root, seeds, 20 if args.quick else 50, backends)
        if "faults" in only:
            faults(server, root, 20 if args.quick else 60)
        if "concurrent" in only:
            concurrent(server, root, 8)
        if "listing" in only:
            big_container(server, root, 2000 if args.quick else 10_000)
        if "throughput" in only:
            throughput(server, root, (64 if args.quick else 256) * MiB)
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
