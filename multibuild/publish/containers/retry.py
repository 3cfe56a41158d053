"""Retries with backoff and a deadline; transient failures are retried, permanent ones are not.

Transient: connection resets and refusals, timeouts, an answer cut off or stalled after its
headers (urllib3's ProtocolError/IncompleteRead/ReadTimeoutError, http.client's
IncompleteRead), HTTP 5xx, throttling (429, 498, S3's SlowDown). Permanent: authentication
(401, 403) and any other 4xx, which stop at once. Each backend classifies its own exceptions
into these kinds (`Classifier`), the network-level ones with `generic_kind`.
"""

from __future__ import annotations

import enum
import errno
import http.client
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import urllib3.exceptions

from multibuild.errors import ConfigurationError, CredentialsError, UploadError
from multibuild.options import UploadTuning

T = TypeVar("T")


class Kind(enum.Enum):
    TRANSIENT = "transient"
    PERMANENT = "permanent"
    AUTH = "auth"


Classifier = Callable[[BaseException], Kind]

TRANSIENT_STATUS = frozenset({408, 425, 429, 498, 500, 502, 503, 504, 507})


def status_kind(status: int | None) -> Kind:
    """The kind of failure an HTTP status (None: no response at all) means."""
    if status is None or status in TRANSIENT_STATUS or status >= 500:
        return Kind.TRANSIENT
    if status in (401, 403):
        return Kind.AUTH
    return Kind.PERMANENT


# urllib3 errors that say the URL itself is wrong: no retry mends those.
_URL_ERRORS = (urllib3.exceptions.LocationValueError, urllib3.exceptions.ProxySchemeUnknown)


def generic_kind(error: BaseException) -> Kind:
    """Network-level failures every backend shares: a reset, a timeout, an answer cut off
    after its headers (a body read straight from urllib3, as swiftclient does) are
    transient."""
    if isinstance(error, (ConnectionError, TimeoutError, http.client.HTTPException)):
        return Kind.TRANSIENT
    if isinstance(error, urllib3.exceptions.HTTPError):
        return Kind.PERMANENT if isinstance(error, _URL_ERRORS) else Kind.TRANSIENT
    if isinstance(error, OSError) and error.errno is not None:
        return Kind.TRANSIENT
    return Kind.PERMANENT


# Refused this many times in a row from the first attempt: a configuration error (exit 2)
# after seconds of backoff, not minutes of retries ending in exit 10.
REFUSED_IS_CONFIGURATION = 4


def connection_refused(error: BaseException) -> bool:
    """Whether `error` (or what caused it, however the client library wrapped it) is a
    refused TCP connection."""
    seen: list[BaseException] = [error]
    for current in seen:
        if isinstance(current, ConnectionRefusedError) or (
            isinstance(current, OSError) and current.errno == errno.ECONNREFUSED
        ):
            return True
        if "Connection refused" in str(current):
            return True
        for linked in (current.__cause__, current.__context__, *current.args):
            if isinstance(linked, BaseException) and linked not in seen and len(seen) < 20:
                seen.append(linked)
    return False


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped per wait and by an overall deadline."""

    attempts: int = 16
    base_s: float = 0.5
    max_wait_s: float = 30.0
    deadline_s: float = 600.0
    timeout_s: float = 60.0  # each request's connect/read timeout, used by the backends

    @classmethod
    def from_tuning(cls, tuning: UploadTuning) -> RetryPolicy:
        """The defaults, with what MB_UPLOAD_* (multibuild.options.EnvironmentOptions) changes."""
        policy = cls()
        return cls(
            attempts=tuning.attempts or policy.attempts,
            base_s=policy.base_s if tuning.backoff_s is None else tuning.backoff_s,
            max_wait_s=policy.max_wait_s,
            deadline_s=tuning.deadline_s or policy.deadline_s,
            timeout_s=tuning.timeout_s or policy.timeout_s,
        )

    def wait(self, attempt: int) -> float:
        return float(random.uniform(0, min(self.max_wait_s, self.base_s * 2**attempt)))


class RetryStats:
    """How many retries happened (read by the tests and the benchmark)."""

    def __init__(self) -> None:
        self.retries = 0
        self.failures: dict[str, int] = {}

    def count(self, error: BaseException) -> None:
        self.retries += 1
        name = type(error).__name__
        self.failures[name] = self.failures.get(name, 0) + 1


def call(
    action: Callable[[], T],
    *,
    what: str,
    classify: Classifier,
    policy: RetryPolicy,
    describe: Callable[[BaseException], str] = str,
    stats: RetryStats | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Run `action`, retrying transient failures until it succeeds, the attempts run out or
    the deadline passes; raise UploadError/CredentialsError with `what` in the message."""
    deadline = time.monotonic() + policy.deadline_s
    attempt = refused = 0
    while True:
        try:
            return action()
        except (UploadError, KeyboardInterrupt):
            raise
        except Exception as error:
            kind = classify(error)
            message = describe(error)
            if kind is Kind.AUTH:
                raise CredentialsError(
                    f"{what}: the server refused the credentials ({message})"
                ) from None
            if kind is Kind.PERMANENT:
                raise UploadError(f"{what}: {message}") from None
            attempt += 1
            refused = refused + 1 if connection_refused(error) else 0
            if refused >= REFUSED_IS_CONFIGURATION and refused == attempt:
                # Nothing listens there, every time: a wrong URL or endpoint, not a bad moment.
                raise ConfigurationError(
                    f"{what}: connection refused on each of {attempt} attempts: is the "
                    f"container URL or endpoint (AWS_ENDPOINT_URL, ST_AUTH, OS_AUTH_URL) "
                    f"right? ({message})"
                ) from None
            wait = policy.wait(attempt)
            if attempt >= policy.attempts or time.monotonic() + wait > deadline:
                raise UploadError(
                    f"{what}: still failing after {attempt} attempts "
                    f"({policy.deadline_s:g} s deadline): {message}"
                ) from None
            if stats is not None:
                stats.count(error)
            sleep(wait)
