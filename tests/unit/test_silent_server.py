"""A server that accepts and never answers (issue 23, item 5): a page read gives up by its
deadline (documented 300 s; here a few seconds), not after every urllib3 retry's full
timeout. The server is a real listening socket on 127.0.0.1 that never accepts: the kernel
completes the handshake, nothing is ever sent."""

from __future__ import annotations

import socket
import time

import pytest

from multibuild.util.http import Http, HttpError


def test_a_silent_server_is_given_up_on_by_the_deadline() -> None:
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(64)
        port = silent.getsockname()[1]
        http = Http(timeout=10.0, attempts=2, backoff=0.1, deadline_s=3.0)
        started = time.monotonic()
        with pytest.raises(HttpError):
            http.read(f"http://127.0.0.1:{port}/listing/")
        elapsed = time.monotonic() - started
        http.close()
    # Before: (attempts + 1) x timeout = 30 s.
    assert elapsed < 5.0, elapsed
