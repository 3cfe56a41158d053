"""A container endpoint nothing listens on (issue 23, item 5): a configuration error within
seconds (exit 2), not minutes of silent retries ending in exit 10. A real socket on
127.0.0.1, bound and closed, so every connection is refused."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from multibuild.errors import ConfigurationError
from multibuild.publish.containers import open_container
from multibuild.publish.containers.retry import connection_refused


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


@pytest.mark.parametrize("kind", ["s3", "swift"])
def test_a_refused_endpoint_is_a_configuration_error_early(tmp_path: Path, kind: str) -> None:
    endpoint = f"http://127.0.0.1:{closed_port()}"
    if kind == "s3":
        url = "s3://bucket/pre"
        environ = {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ACCESS_KEY_ID": "id",
            "AWS_SECRET_ACCESS_KEY": "secret",
            "AWS_DEFAULT_REGION": "us-east-1",
        }
    else:
        url = "swift://wheels"
        environ = {"ST_AUTH": f"{endpoint}/auth/v1.0", "ST_USER": "a:u", "ST_KEY": "k"}
    started = time.monotonic()
    with pytest.raises(ConfigurationError, match="connection refused on each of 4 attempts"):
        container = open_container(url, base_dir=tmp_path, environ=environ)
        list(container.list())
    assert time.monotonic() - started < 30


def test_refusals_are_found_however_they_are_wrapped() -> None:
    try:
        try:
            raise ConnectionRefusedError(111, "refused")
        except OSError as inner:
            raise RuntimeError("wrapped") from inner
    except RuntimeError as outer:
        assert connection_refused(outer)
    assert not connection_refused(TimeoutError("slow"))
