"""index.html and history.html: every value from a name or a record escaped, links with hashes."""

from __future__ import annotations

from datetime import datetime, timezone

from multibuild.engine.record import BuildRecord
from multibuild.publish.pages import WheelEntry, history_html, index_html
from multibuild.util.sizes import format_size

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
    assert format_size(2048) == "2.0 KiB"
    assert format_size(5) == "5 B"


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


def _row(page: str, build_id: str) -> str:
    [row] = [r for r in page.split("<tr ")[1:] if f'data-build="{build_id}"' in r]
    return row


def test_history_rows_say_what_was_built_by_what_and_why_it_failed() -> None:
    good = BuildRecord.from_json(
        {
            "schema": 1,
            "build_id": "good",
            "version": "1.17.1",
            "started": "2026-11-23T23:52:00Z",
            "status": "success",
            "source": {"kind": "git", "ref": "v1.17.1", "commit": "a" * 40},
            "recipe": {"commit": "b" * 40, "modified": "yes"},
            "builds": [
                {
                    "python": "3.12",
                    "status": "success",
                    "duration_s": 754,
                    "tests": {"counts": {"passed": 69873, "skipped": 3}},
                }
            ],
        }
    )
    failed = BuildRecord.from_json(
        {
            "schema": 1,
            "build_id": "failed",
            "started": "2026-11-24T01:00:00Z",
            "status": "failed",
            "duration_s": 2.5,
            "error": "cannot clone https://github.com/scipy/scipy.git:\n  fatal: unreachable",
            "source": {"kind": "git", "ref": "v1.17.1", "commit": ""},
            "ci": {"commit": "c" * 40, "branch": "main"},
            "builds": [],
        }
    )
    skipped = BuildRecord.from_json(
        {
            "schema": 1,
            "build_id": "skipped",
            "started": "2026-11-24T02:00:00Z",
            "status": "skipped",
            "source": {"kind": "sdist", "path": "scipy-1.17.1.tar.gz", "sha256": "d" * 64},
            "builds": [{"python": "3.10", "status": "skipped", "error": "requires-python >=3.11"}],
        }
    )
    assert good and failed and skipped
    page = history_html("h", [good, failed, skipped], present=set())
    row = _row(page, "good")
    assert '<td class="version">1.17.1</td>' in row
    assert f'<td class="source git" title="{"a" * 40}">v1.17.1 @ {"a" * 12}</td>' in row
    assert '<td class="tests">69873 passed, 3 skipped</td>' in row
    assert f'<td class="recipe" title="{"b" * 40}">{"b" * 12} +changes</td>' in row
    assert '<td class="duration">12:34</td>' in row
    assert "reason" not in row
    row = _row(page, "failed")
    # No Python build started: the row says so, with the cause; the recipe is the CI commit.
    assert '<td class="python">(none started)</td>' in row
    assert (
        '<td class="status">failed<div class="reason">'
        "cannot clone https://github.com/scipy/scipy.git: fatal: unreachable</div></td>"
    ) in row
    assert '<td class="duration">0:02</td>' in row
    assert f'<td class="recipe" title="{"c" * 40}">{"c" * 12}</td>' in row
    assert '<td class="branch">main</td>' in row
    row = _row(page, "skipped")
    assert '<tr class="build skipped"' in "<tr " + row
    assert '<div class="reason">requires-python &gt;=3.11</div>' in row
    assert (
        f'<td class="source sdist" title="{"d" * 64}">sdist scipy-1.17.1.tar.gz'
        f"<br>sha256 {'d' * 12}…</td>"
    ) in row
