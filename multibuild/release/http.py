"""A small HTTP client for the release tools: keep-alive connections per thread (parallel
downloads reuse their connections as curl does), redirects followed only within one origin,
and clear errors. Only http/https; other schemes are refused."""

from __future__ import annotations

import http.client
import ssl
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from urllib.parse import urljoin, urlsplit

from multibuild import __version__
from multibuild.errors import ReleaseError

USER_AGENT = f"scipy-wheels-release/{__version__}"
REDIRECTS = 5
CONNECTS = 4


class HttpError(ReleaseError):
    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class Response:
    url: str
    status: int
    headers: http.client.HTTPMessage
    raw: http.client.HTTPResponse
    conn: http.client.HTTPConnection

    def header(self, name: str) -> str:
        return self.headers.get(name, "") or ""

    def read(self) -> bytes:
        return self.raw.read()


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


class Http:
    """Thread-safe: each thread keeps its own connection per origin."""

    def __init__(self, timeout: float = 60.0) -> None:
        self.timeout = timeout
        self._local = threading.local()
        self._lock = threading.Lock()
        self._connecting = threading.BoundedSemaphore(CONNECTS)
        self._all: list[http.client.HTTPConnection] = []

    def _connection(self, scheme: str, netloc: str, fresh: bool) -> http.client.HTTPConnection:
        pool: dict[tuple[str, str], http.client.HTTPConnection] = self._local.__dict__.setdefault(
            "pool", {}
        )
        key = (scheme, netloc)
        conn = pool.get(key)
        if conn is not None and fresh:
            conn.close()
            conn = None
        if conn is None:
            if scheme == "https":
                conn = http.client.HTTPSConnection(
                    netloc, timeout=self.timeout, context=ssl.create_default_context()
                )
            elif scheme == "http":
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout)
            else:
                raise HttpError(f"unsupported URL scheme {scheme!r}")
            pool[key] = conn
            with self._lock:
                self._all.append(conn)
        return conn

    @contextmanager
    def open(
        self, url: str, headers: Mapping[str, str] | None = None, method: str = "GET"
    ) -> Iterator[Response]:
        """The response (any status) to a request; the body must be read inside the block."""
        start = origin(url)
        for _ in range(REDIRECTS + 1):
            response = self._send(method, url, headers or {})
            if response.status in (301, 302, 303, 307, 308) and response.header("Location"):
                response.read()
                target = urljoin(url, response.header("Location"))
                if origin(target) != start:
                    raise HttpError(f"{url} redirects to another site ({target}); not followed")
                url = target
                continue
            try:
                yield response
            except BaseException:
                # Abandoned mid-body (an error, Ctrl-C): drop the connection, not drain it.
                response.raw.close()
                response.conn.close()
                raise
            if not response.raw.isclosed():
                try:
                    response.raw.read()  # the rest of the body, so the connection is reused
                except (OSError, http.client.HTTPException):
                    response.raw.close()
                    response.conn.close()
            return
        raise HttpError(f"{url}: too many redirects")

    def _send(self, method: str, url: str, headers: Mapping[str, str]) -> Response:
        parts = urlsplit(url)
        path = parts.path or "/"
        if parts.query:
            path += "?" + parts.query
        all_headers = {"User-Agent": USER_AGENT, **headers}
        for attempt in (0, 1):
            conn = self._connection(parts.scheme.lower(), parts.netloc, fresh=attempt == 1)
            try:
                if conn.sock is None:
                    # New connections wait for their first response a few at a time: small
                    # servers (http.server: listen backlog 5, one accepting thread) drop SYNs
                    # past their backlog, and each drop costs a 1 s retransmission.
                    with self._connecting:
                        conn.connect()
                        conn.request(method, path, headers=all_headers)
                        raw = conn.getresponse()
                else:
                    conn.request(method, path, headers=all_headers)
                    raw = conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                if attempt == 0:  # a kept connection the server closed: once more, fresh
                    continue
                raise HttpError(f"{url}: the server closed the connection") from None
            except (OSError, http.client.HTTPException) as error:
                conn.close()
                raise HttpError(f"{url}: {error}") from None
            return Response(url, raw.status, raw.headers, raw, conn)
        raise AssertionError("unreachable")

    def get_bytes(
        self, url: str, headers: Mapping[str, str] | None = None
    ) -> tuple[int, str, bytes]:
        """(status, content type, body) of a GET."""
        with self.open(url, headers) as response:
            try:
                body = response.read()
            except (OSError, http.client.HTTPException) as error:
                raise HttpError(f"{url}: {error}") from None
            return response.status, response.header("Content-Type"), body

    def close(self) -> None:
        with self._lock:
            for conn in self._all:
                conn.close()
            self._all.clear()
