"""A loopback HTTP proxy that injects faults: connection resets (also mid-upload), 5xx and
throttling responses, and stalls longer than the client's timeout.

One request per client connection (the request is forwarded with `Connection: close`), so
each request draws its own fault. Run as a process (`python -m tests.servers.faultproxy`)
stopped by PID; it appends one line per request to --events (`ok`, `reset`, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import selectors
import socket
import struct
import sys
import threading
import time
from pathlib import Path

FAULTS = ("reset", "reset-mid", "503", "500", "429", "stall")
LOOPBACK = "127.0.0.1"


def _rst(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def _read_head(sock: socket.socket) -> tuple[bytes, bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            return None
        data += chunk
        if len(data) > 1 << 20:
            return None
    head, _, rest = data.partition(b"\r\n\r\n")
    return head, rest


def _rewrite(head: bytes) -> tuple[bytes, int, bool]:
    lines = head.split(b"\r\n")
    kept = [lines[0]]
    length = 0
    expect = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        key = name.strip().lower()
        if key in (b"connection", b"keep-alive", b"proxy-connection"):
            continue
        if key == b"content-length":
            length = int(value.strip() or 0)
        if key == b"expect" and b"100-continue" in value.lower():
            expect = True
        kept.append(line)
    kept.append(b"Connection: close")
    return b"\r\n".join(kept) + b"\r\n\r\n", length, expect


class FaultProxy:
    def __init__(
        self,
        listen: int,
        upstream: int,
        *,
        rate: float,
        stall_s: float,
        seed: int,
        events: Path,
    ) -> None:
        self.listen = listen
        self.upstream = upstream
        self.rate = rate
        self.stall_s = stall_s
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.events = events

    def record(self, event: str) -> None:
        with self.lock, self.events.open("a", encoding="utf-8") as out:
            out.write(event + "\n")

    def draw(self) -> str:
        with self.lock:
            if self.random.random() < self.rate:
                return self.random.choice(FAULTS)
            return "ok"

    def serve(self) -> None:
        server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((LOOPBACK, self.listen))
        server.listen(256)
        while True:
            client, _ = server.accept()
            threading.Thread(target=self.handle, args=(client,), daemon=True).start()

    def handle(self, client: socket.socket) -> None:
        try:
            self._handle(client)
        except OSError:
            _rst(client)

    def _handle(self, client: socket.socket) -> None:
        client.settimeout(60)
        got = _read_head(client)
        if got is None:
            client.close()
            return
        head, rest = got
        head, length, expect = _rewrite(head)
        fault = self.draw()
        self.record(fault)
        if fault == "stall":
            time.sleep(self.stall_s)
            _rst(client)
            return
        if fault in ("503", "500", "429"):
            if not expect:  # drain the body so the client reads our answer, not a reset
                remaining = length - len(rest)
                while remaining > 0:
                    chunk = client.recv(min(remaining, 1 << 20))
                    if not chunk:
                        break
                    remaining -= len(chunk)
            reason = {"503": "Service Unavailable", "500": "Internal Server Error"}.get(
                fault, "Too Many Requests"
            )
            body = f"injected {fault}\n".encode()
            client.sendall(
                f"HTTP/1.1 {fault} {reason}\r\nContent-Length: {len(body)}\r\n"
                "Content-Type: text/plain\r\nRetry-After: 0\r\nConnection: close\r\n\r\n".encode()
                + body
            )
            client.close()
            return
        if fault == "reset":
            _rst(client)
            return
        upstream = socket.create_connection((LOOPBACK, self.upstream), timeout=60)
        upstream.sendall(head + rest)
        if fault == "reset-mid":
            # Forward part of the body, then drop both sides: a half-sent upload.
            budget = self.random.randint(0, max(length // 2, 1))
            while budget > 0:
                chunk = client.recv(min(budget, 65536))
                if not chunk:
                    break
                upstream.sendall(chunk)
                budget -= len(chunk)
            _rst(upstream)
            _rst(client)
            return
        self._pipe(client, upstream)

    def _pipe(self, client: socket.socket, upstream: socket.socket) -> None:
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, upstream)
        selector.register(upstream, selectors.EVENT_READ, client)
        open_ends = 2
        try:
            while open_ends:
                events = selector.select(timeout=120)
                if not events:
                    break
                for key, _ in events:
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    target: socket.socket = key.data
                    data = source.recv(1 << 20)
                    if data:
                        target.sendall(data)
                        continue
                    selector.unregister(source)
                    open_ends -= 1
                    if source is upstream:
                        open_ends = 0  # the answer is complete
                        break
                    with contextlib.suppress(OSError):
                        target.shutdown(socket.SHUT_WR)
        finally:
            selector.close()
            upstream.close()
            client.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--listen", type=int, required=True)
    parser.add_argument("--upstream", type=int, required=True)
    parser.add_argument("--rate", type=float, default=0.2)
    parser.add_argument("--stall", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--events", type=Path, required=True)
    args = parser.parse_args(argv)
    proxy = FaultProxy(
        args.listen,
        args.upstream,
        rate=args.rate,
        stall_s=args.stall,
        seed=args.seed,
        events=args.events,
    )
    print(f"fault proxy 127.0.0.1:{args.listen} -> :{args.upstream}", file=sys.stderr, flush=True)
    proxy.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())


class FaultProxyProcess:
    """The proxy as a child process of the tests, stopped by its PID."""

    def __init__(
        self, root: Path, upstream: int, *, rate: float, stall_s: float = 3.0, seed: int = 1
    ) -> None:
        import subprocess

        from tests.servers.common import free_port, wait_for_port

        self.port = free_port()
        self.events = root / f"faults-{self.port}.txt"
        self.events.touch()
        repo = Path(__file__).resolve().parents[2]
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.servers.faultproxy",
                f"--listen={self.port}",
                f"--upstream={upstream}",
                f"--rate={rate}",
                f"--stall={stall_s}",
                f"--seed={seed}",
                f"--events={self.events}",
            ],
            cwd=repo,
            stdin=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_for_port(self.port, 20, self.process)

    @property
    def endpoint(self) -> str:
        return f"http://{LOOPBACK}:{self.port}"

    def counts(self) -> dict[str, int]:
        result: dict[str, int] = {}
        for line in self.events.read_text(encoding="utf-8").split():
            result[line] = result.get(line, 0) + 1
        return result

    def stop(self) -> None:
        from tests.servers.common import stop_process

        stop_process(self.process)
