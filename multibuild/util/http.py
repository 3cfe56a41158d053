"""The one HTTP client: a requests session with urllib3's Retry, for every download and page
read (sdists, library tarballs, index pages, container listings, release downloads).

Connection failures, resets and 429/5xx answers are retried with backoff by urllib3; a body
cut off or stalled mid-way is read again by `read` (pages) and resumed by `download` (a Range
request where the server honours it). A page is bounded in size (`max_page_bytes`) and in
time (`deadline_s` for the whole read, retries included, however slowly the server sends): a
page that never ends is an error, not a hang. Redirects are followed only within one origin
unless a call allows more (a container listing must not send the release tools elsewhere);
only http and https.
"""

from __future__ import annotations

import functools
import http.client
import threading
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import requests
import requests.adapters
import urllib3.exceptions
from urllib3.util.retry import Retry

from multibuild import __version__
from multibuild.errors import ReleaseError

USER_AGENT = f"scipy-wheels/{__version__}"
REDIRECTS = 5
CHUNK = 64 << 10  # what a slow link delivers at a time: progress and resumes stay fine-grained
RETRY_STATUS = (429, 500, 502, 503, 504)
MAX_PAGE_BYTES = 16 << 20  # a listing page of 10,000 objects is about 3 MiB
PAGE_DEADLINE_S = 300.0
# A body that failed on the way (cut, reset, stalled): read it again.
_BODY_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


class HttpError(ReleaseError):
    """A request failed for good (after retries) or was refused; callers that fetch sources
    or libraries turn it into their own error class."""

    def __init__(self, message: str, status: int = 0) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class Page:
    status: int
    content_type: str
    body: bytes


def origin(url: str) -> tuple[str, str]:
    parts = urlsplit(url)
    return parts.scheme.lower(), parts.netloc.lower()


def retry_policy(attempts: int = 5, backoff: float = 0.3) -> Retry:
    return Retry(
        total=attempts,
        connect=attempts,
        read=attempts,
        status=attempts,
        other=attempts,
        backoff_factor=backoff,
        status_forcelist=RETRY_STATUS,
        allowed_methods=frozenset({"GET", "HEAD"}),
        respect_retry_after_header=True,
        raise_on_status=False,  # the last answer is returned; the caller says what it means
    )


class Http:
    """Thread-safe for the calls below (requests' connection pool is)."""

    def __init__(
        self,
        *,
        timeout: float = 60.0,
        pool_size: int = 16,
        attempts: int = 5,
        backoff: float = 0.3,
        deadline_s: float = PAGE_DEADLINE_S,
        max_page_bytes: int = MAX_PAGE_BYTES,
    ) -> None:
        self.timeout = timeout
        self.attempts = attempts
        self.backoff = backoff
        self.deadline_s = deadline_s
        self.max_page_bytes = max_page_bytes
        self.session = requests.Session()
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = requests.adapters.HTTPAdapter(
            pool_connections=pool_size,
            pool_maxsize=pool_size,
            max_retries=retry_policy(attempts, backoff),
        )
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self._lock = threading.Lock()

    @contextmanager
    def get(
        self,
        url: str,
        headers: Mapping[str, str] | None = None,
        *,
        any_origin: bool = False,
        stream: bool = True,
        timeout: float | None = None,
    ) -> Iterator[requests.Response]:
        """The answer (any status) to a GET; redirects within the origin (or, with
        `any_origin`, to any http/https URL). The body is read inside the block."""
        current = url
        for _ in range(REDIRECTS + 1):
            scheme = urlsplit(current).scheme.lower()
            if scheme not in ("http", "https"):
                raise HttpError(f"unsupported URL scheme {scheme!r} in {current}")
            try:
                response = self.session.get(
                    current,
                    headers=dict(headers or {}),
                    timeout=timeout or self.timeout,
                    stream=stream,
                    allow_redirects=False,
                )
            except requests.RequestException as error:
                raise HttpError(f"{current}: {_reason(error)}") from None
            location = response.headers.get("Location")
            if response.is_redirect and location:
                response.close()
                target = urljoin(current, location)
                if not any_origin and origin(target) != origin(url):
                    raise HttpError(f"{url} redirects to another site ({target}); not followed")
                current = target
                continue
            try:
                yield response
            finally:
                response.close()
            return
        raise HttpError(f"{url}: too many redirects")

    def read(
        self, url: str, headers: Mapping[str, str] | None = None, *, any_origin: bool = False
    ) -> Page:
        """Status, content type and body of a GET (bodies of pages, not big files): a body
        cut off or stalled is read again, within the attempts and the deadline; one bigger
        than `max_page_bytes`, or not whole by the deadline, is an error."""
        deadline = time.monotonic() + self.deadline_s
        for attempt in range(1, self.attempts + 1):
            try:
                timeout = self._attempt_timeout(deadline)
                with self.get(url, headers, any_origin=any_origin, timeout=timeout) as response:
                    body = self._body(response, url, deadline)
                    return Page(
                        response.status_code, response.headers.get("Content-Type", ""), body
                    )
            except (*_BODY_ERRORS, _Unfinished) as error:
                wait = min(5.0, self.backoff * 2**attempt)
                if attempt == self.attempts or time.monotonic() + wait > deadline:
                    raise HttpError(
                        f"{url}: no whole answer after {attempt} attempt(s) ({_reason(error)})"
                    ) from None
                time.sleep(wait)
        raise AssertionError("unreachable")

    def _attempt_timeout(self, deadline: float) -> float:
        """Each try's connect/read timeout: urllib3 tries `attempts + 1` times, backing off
        between tries, so a server that accepts and never answers is given up on by the
        deadline, not after `attempts + 1` full timeouts."""
        backoffs = sum(self.backoff * 2.0**k for k in range(self.attempts))
        tries = self.attempts + 1
        return float(max(0.5, min(self.timeout, (deadline - time.monotonic() - backoffs) / tries)))

    def _body(self, response: requests.Response, url: str, deadline: float) -> bytes:
        """The body as it arrives (each read returns what is there, so a slow trickle is
        still held to the deadline), at most `max_page_bytes`."""
        parts: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise HttpError(
                    f"{url}: the answer did not end within {self.deadline_s:g} s "
                    f"({size} bytes so far): a page that never ends, or a far too slow server"
                )
            try:
                chunk = response.raw.read1(CHUNK, decode_content=True)
            except _BODY_ERRORS as error:
                raise _Unfinished(f"{url}: {_reason(error)}") from None
            if not chunk:
                return b"".join(parts)
            size += len(chunk)
            if size > self.max_page_bytes:
                raise HttpError(
                    f"{url}: the answer is larger than {self.max_page_bytes >> 20} MiB: not a "
                    "page to read (stopped)"
                )
            parts.append(chunk)

    def download(
        self, url: str, target: Path, *, any_origin: bool = True, resume: bool = False
    ) -> None:
        """The body of `url` into `target` (a partial file the caller renames once checked).
        A transfer cut off mid-body is resumed (Range) or started again, within the attempts."""
        for attempt in range(1, self.attempts + 1):
            offset = target.stat().st_size if resume and target.exists() else 0
            headers = {"Range": f"bytes={offset}-"} if offset else {}
            try:
                with self.get(url, headers, any_origin=any_origin) as response:
                    if response.status_code == 416 and offset:
                        return  # already whole
                    if response.status_code not in (200, 206):
                        raise HttpError(f"{url}: HTTP {response.status_code}", response.status_code)
                    mode = "ab" if response.status_code == 206 and offset else "wb"
                    with target.open(mode) as out:
                        for chunk in response.iter_content(CHUNK):
                            out.write(chunk)
                return
            except (requests.RequestException, OSError) as error:
                if attempt == self.attempts:
                    raise HttpError(f"{url}: {_reason(error)}") from None
                resume = True
                time.sleep(min(5.0, 0.3 * 2**attempt))

    def close(self) -> None:
        with self._lock:
            self.session.close()


class _Unfinished(HttpError):
    """A body that broke off on the way: read again."""


@functools.cache
def shared() -> Http:
    """The process's one client (created on first use)."""
    return Http()


def _reason(error: BaseException) -> str:
    """One line for a requests/urllib3 failure (urllib3's nested reasons unwrapped)."""
    cause = error
    while True:
        inner = getattr(cause, "reason", None)
        if isinstance(inner, BaseException) and inner is not cause:
            cause = inner
            continue
        break
    text = str(cause) or type(cause).__name__
    return text.splitlines()[0] if text else type(cause).__name__
