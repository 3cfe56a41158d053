"""index.html and history.html: every value from a name or a record escaped, links with hashes."""

from __future__ import annotations

from datetime import datetime, timezone

from multibuild.engine.record import BuildRecord
from multibuild.publish.pages import WheelEntry, history_html, human_size, index_html

EVIL = '<script>alert("x")</script>&'


def test_index_escapes_and_links_with_hashes() -> None:
    entry = WheelEntry(
        f"a{EVIL}.whl", 2048, datetime(2026, 1, 2, 3, 4, 5, tzinfo=timezone.utc), "f" * 64
    )
    page = index_html(f"t{EVIL}", [entry])
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "#sha256=" + "f" * 64 in page
    assert "2026-01-02 03:04:05 UTC" in page
    assert human_size(2048) == "2.0 KiB"
    assert human_size(5) == "5 B"


def test_history_escapes_everything_from_records() -> None:
    record = BuildRecord.from_json(
        {
            "schema": 1,
            "build_id": f"b{EVIL}",
            "started": "2026-11-23T23:52:00Z",
            "platform": EVIL,
            "source": {"ref": EVIL, "commit": EVIL},
            "ci": {"branch": EVIL, "event": "push", "nightly": True},
            "builds": [{"python": EVIL, "status": EVIL, "wheels": [{"name": EVIL}]}],
        }
    )
    assert record is not None
    page = history_html("h", [record], present=set())
    assert "<script>" not in page
    assert "(nightly)" in page
