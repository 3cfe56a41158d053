"""A loopback HTTP proxy that injects the faults of a flaky network and a flaky server:

- `reset`: the connection reset before anything is forwarded;
- `reset-mid`: the request cut part-way through its body (a half-sent upload);
- `503`, `500`, `429`: an error answer instead of the server's;
- `stall`: no answer at all until the client's timeout (then a reset);
- `cut`: the server's answer cut off right after its headers;
- `stall-body`: the answer's headers and 20 % of its body, then nothing (then a reset);
- `drop`: the request reaches the server, which does it (a PUT is stored, a DELETE done),
  and the answer is dropped: the client sees a reset.

One request per client connection (the request is forwarded with `Connection: close`), so
each request draws its own fault: with probability --rate the next of --faults in turn (so
each kind comes as often, and every kind comes once there are as many faults). Paths
matching --fail-path always get a 503 (a server that fails one object for good). Run as a
process (`python -m tests.servers.faultproxy`) stopped by PID; it appends one line per request
to --events (`ok`, `reset`, ...).
"""

from __future__ import annotations

import argparse
import contextlib
import random
import re
import selectors
import socket
import struct
import sys
import threading
import time
from pathlib import Path

FAULTS = ("reset", "reset-mid", "503", "500", "429", "stall", "cut", "stall-body", "drop")
# Faults on the server's answer: the request is forwarded whole first.
ANSWER_FAULTS = ("cut", "stall-body", "drop")
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


def _complete(answer: bytes, method: bytes) -> bool:
    """Whether `answer` holds the server's whole answer (its length from its headers, or the
    end of the connection, marked by a trailing NUL-EOF)."""
    if answer.endswith(b"\0EOF"):
        return True
    head, sep, body = answer.partition(b"\r\n\r\n")
    if not sep:
        return False
    lines = head.split(b"\r\n")
    status = lines[0].split(b" ")[1:2]
    if method == b"HEAD" or status in ([b"204"], [b"304"]):
        return True
    headers = {k.strip().lower(): v.strip() for k, _, v in (x.partition(b":") for x in lines[1:])}
    if b"content-length" in headers:
        return len(body) >= int(headers[b"content-length"] or 0)
    if b"chunked" in headers.get(b"transfer-encoding", b"").lower():
        return body.endswith(b"0\r\n\r\n")
    return False


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
        faults: tuple[str, ...] = FAULTS,
        fail_path: str | None = None,
    ) -> None:
        self.listen = listen
        self.upstream = upstream
        self.rate = rate
        self.stall_s = stall_s
        self.faults = faults
        self.turn = 0
        self.fail_path = re.compile(fail_path) if fail_path else None
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.events = events

    def record(self, event: str) -> None:
        with self.lock, self.events.open("a", encoding="utf-8") as out:
            out.write(event + "\n")

    def draw(self) -> str:
        with self.lock:
            if self.random.random() < self.rate:
                self.turn += 1
                return self.faults[(self.turn - 1) % len(self.faults)]
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
        method, *request_line = head.split(b"\r\n", 1)[0].split(b" ")
        path = request_line[:1]
        head, length, expect = _rewrite(head)
        fault = self.draw()
        if self.fail_path and path and self.fail_path.search(path[0].decode("latin-1")):
            fault = "503"
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
            # `rest` (sent with the head) may already be all of the body.
            remaining = length - len(rest)
            budget = self.random.randint(0, remaining // 2) if remaining > 0 else 0
            while budget > 0:
                chunk = client.recv(min(budget, 65536))
                if not chunk:
                    break
                upstream.sendall(chunk)
                budget -= len(chunk)
            _rst(upstream)
            _rst(client)
            return
        if fault in ANSWER_FAULTS:
            self._answer_fault(client, upstream, fault, method)
            return
        self._pipe(client, upstream)

    def _answer_fault(
        self, client: socket.socket, upstream: socket.socket, fault: str, method: bytes
    ) -> None:
        """Forward the request whole, take the server's whole answer (it has done the
        request), then give the client only part of it, or nothing. Interim `100 Continue`
        answers pass at once, so a client that waits for one sends its body."""
        selector = selectors.DefaultSelector()
        selector.register(client, selectors.EVENT_READ, "client")
        selector.register(upstream, selectors.EVENT_READ, "upstream")
        answer = b""
        try:
            while not _complete(answer, method):
                events = selector.select(timeout=120)
                if not events:
                    break
                for key, _ in events:
                    if key.data == "client":
                        data = client.recv(1 << 20)
                        if data:
                            upstream.sendall(data)
                        else:
                            selector.unregister(client)
                        continue
                    data = upstream.recv(1 << 20)
                    if not data:
                        selector.unregister(upstream)
                        answer += b"\0EOF"
                        break
                    answer += data
                    while answer.startswith(b"HTTP/1.1 100") and b"\r\n\r\n" in answer:
                        interim, _, answer = answer.partition(b"\r\n\r\n")
                        client.sendall(interim + b"\r\n\r\n")
        finally:
            selector.close()
            upstream.close()
        answer = answer.removesuffix(b"\0EOF")
        head, sep, body = answer.partition(b"\r\n\r\n")
        if fault == "cut":
            with contextlib.suppress(OSError):
                client.sendall(head + sep)
        elif fault == "stall-body":
            with contextlib.suppress(OSError):
                client.sendall(head + sep + body[: len(body) // 5])
            time.sleep(self.stall_s)
        _rst(client)  # "drop": the server did the request; the client hears nothing

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
    parser.add_argument("--faults", default=",".join(FAULTS), help="comma-separated")
    parser.add_argument("--fail-path", help="a regular expression: those paths always 503")
    args = parser.parse_args(argv)
    faults = tuple(f for f in args.faults.split(",") if f)
    unknown = set(faults) - set(FAULTS)
    if unknown:
        parser.error(f"unknown faults {sorted(unknown)}")
    proxy = FaultProxy(
        args.listen,
        args.upstream,
        rate=args.rate,
        stall_s=args.stall,
        seed=args.seed,
        events=args.events,
        faults=faults,
        fail_path=args.fail_path,
    )
    print(f"fault proxy 127.0.0.1:{args.listen} -> :{args.upstream}", file=sys.stderr, flush=True)
    proxy.serve()
    return 0


if __name__ == "__main__":
    sys.exit(main())


class FaultProxyProcess:
    """The proxy as a child process of the tests, stopped by its PID."""

    def __init__(
        self,
        root: Path,
        upstream: int,
        *,
        rate: float,
        stall_s: float = 3.0,
        seed: int = 1,
        faults: tuple[str, ...] = FAULTS,
        fail_path: str | None = None,
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
                f"--faults={','.join(faults)}",
                *([f"--fail-path={fail_path}"] if fail_path else []),
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
