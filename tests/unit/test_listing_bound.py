"""A listing whose pages keep advancing (issue 23, item 5): bounded in total bytes, not only
in pages, so memory stays bounded. A real HTTP server on 127.0.0.1 (a thread of the test)
answers Swift JSON pages of ~0.5 MiB that always start after the marker, for 40 pages."""

from __future__ import annotations

import json
import threading
import tracemalloc
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest

from multibuild.errors import ReleaseError
from multibuild.release import listing
from multibuild.release.listing import Reader
from multibuild.util.http import Http

PAGES = 40
PER_PAGE = 2000


class _Advancing(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        marker = parse_qs(urlsplit(self.path).query).get("marker", [""])[0]
        page = int(marker[1:5]) + 1 if marker else 0
        items = (
            [
                {"name": f"p{page:04d}-{i:05d}-" + "x" * 200 + ".whl", "bytes": 1}
                for i in range(PER_PAGE)
            ]
            if page < PAGES
            else []
        )
        body = json.dumps(items).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def advancing() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Advancing)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/v1/AUTH_x/c/"
    server.shutdown()
    server.server_close()


def test_a_listing_that_keeps_advancing_is_bounded_in_total(
    advancing: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(listing, "MAX_LISTING_BYTES", 4 << 20)  # ~9 pages here
    http = Http(deadline_s=30)
    tracemalloc.start()
    try:
        with pytest.raises(ReleaseError, match="the listing passed 4 MiB"):
            Reader(http).read(advancing)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
        http.close()
    assert peak < 96 << 20, peak
