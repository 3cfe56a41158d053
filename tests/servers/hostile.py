"""A hostile (or broken) container server on 127.0.0.1, in a thread of the test process: what
the release tools and the object-store backends must survive without hanging or looping.

- `/same/...`: a Swift listing that ignores `marker` (the same full page for ever), as JSON
  or plain text;
- `/v1/AUTH_x/same`: the same as Swift's API answers it (for a SwiftContainer);
- `/s3same?list-type=2...`: an S3 ListObjectsV2 answer that repeats its continuation token;
- `/huge/`: a listing page far bigger than any real one;
- `/endless/`: a page that never ends (a chunk every few milliseconds, for ever).
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from tests.servers.common import LOOPBACK

PAGE = [f"scipy-1.17.1-cp311-cp311-linux_{i}.whl" for i in range(3)]


class _Handler(BaseHTTPRequestHandler):
    server_version = "hostile"
    protocol_version = "HTTP/1.1"
    requests_seen: list[str]

    def log_message(self, format: str, *args: object) -> None:
        pass

    def _send(self, body: bytes, ctype: str, status: int = 200) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_HEAD(self) -> None:
        self._send(b"", "text/plain", 204)

    def do_GET(self) -> None:
        parts = urlsplit(self.path)
        query = parse_qs(parts.query)
        type(self).requests_seen.append(self.path)
        if parts.path.startswith(("/same/", "/v1/AUTH_x/same")):
            items = [{"name": n, "bytes": 10, "hash": "0" * 32,
                      "last_modified": "2026-11-30T00:00:00.000000"} for n in PAGE]  # fmt: skip
            if query.get("format") == ["json"] or parts.path.startswith("/v1/"):
                self._send(json.dumps(items).encode(), "application/json; charset=utf-8")
            else:
                self._send("\n".join(PAGE).encode() + b"\n", "text/plain; charset=utf-8")
        elif parts.path == "/s3same":
            keys = "".join(
                f"<Contents><Key>{n}</Key><Size>10</Size><ETag>&quot;{'0' * 32}&quot;</ETag>"
                "<LastModified>2026-11-30T00:00:00.000Z</LastModified></Contents>"
                for n in PAGE
            )
            body = (
                '<?xml version="1.0" encoding="UTF-8"?>\n<ListBucketResult '
                'xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Name>s3same</Name>'
                f"<KeyCount>{len(PAGE)}</KeyCount><IsTruncated>true</IsTruncated>"
                f"<NextContinuationToken>again</NextContinuationToken>{keys}</ListBucketResult>"
            )
            self._send(body.encode(), "application/xml")
        elif parts.path.startswith("/huge/"):
            size = 64 << 20
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(size))
            self.end_headers()
            chunk = b"[" + b" " * ((1 << 20) - 1)
            sent = 0
            try:
                while sent < size:
                    self.wfile.write(chunk[: size - sent])
                    sent += len(chunk)
                    chunk = b" " * (1 << 20)
            except OSError:
                return
        elif parts.path.startswith("/endless/"):
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            try:
                while True:
                    piece = b"<a href='x'>x</a>\n"
                    self.wfile.write(f"{len(piece):x}\r\n".encode() + piece + b"\r\n")
                    self.wfile.flush()
                    time.sleep(0.005)
            except OSError:
                return
        else:
            self._send(b"not here\n", "text/plain", 404)


@contextmanager
def hostile_server() -> Iterator[tuple[str, list[str]]]:
    """(base URL, the paths asked for), for the block."""
    seen: list[str] = []
    handler = type("Handler", (_Handler,), {"requests_seen": seen})
    server = ThreadingHTTPServer((LOOPBACK, 0), handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{LOOPBACK}:{server.server_address[1]}", seen
    finally:
        server.shutdown()
        server.server_close()
