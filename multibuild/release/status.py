"""release-status's domain: the build matrix against a container's listing, as rows and a
table; complete only when every cell of the matrix has exactly one wheel."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from multibuild import console, matrix
from multibuild.errors import ConfigurationError
from multibuild.release.listing import Entry, Listing, read_container_listing
from multibuild.util.http import Http


def status_rows(
    done: matrix.Completeness, entries: dict[str, Entry], name: str, version: str
) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for cell in done.cells:
        found = done.found.get(cell, [])
        if not found:
            rows.append(
                {
                    "cell": cell.label,
                    "python": cell.python,
                    "platform": cell.description,
                    "status": "missing",
                    "wheel": matrix.describe_missing([cell], name, version).split(" (")[0],
                    "size": None,
                    "sha256": "",
                }
            )
        for wheel in found:
            entry = entries[wheel.filename]
            rows.append(
                {
                    "cell": cell.label,
                    "python": cell.python,
                    "platform": cell.description,
                    "status": "present" if len(found) == 1 else "duplicate",
                    "wheel": wheel.filename,
                    "size": entry.size,
                    "sha256": entry.sha256,
                }
            )
    for wheel in done.extra:
        entry = entries[wheel.filename]
        rows.append(
            {
                "cell": "",
                "python": "",
                "platform": "",
                "status": "extra",
                "wheel": wheel.filename,
                "size": entry.size,
                "sha256": entry.sha256,
            }
        )
    return rows


def table(rows: Sequence[dict[str, object]]) -> str:
    headers = ("status", "python", "platform", "size", "sha256", "wheel")
    cells = [
        (
            str(row["status"]),
            str(row["python"]),
            str(row["platform"]),
            "" if row["size"] is None else str(row["size"]),
            str(row["sha256"])[:16] + ("…" if row["sha256"] else ""),
            str(row["wheel"]),
        )
        for row in rows
    ]
    widths = [
        max(len(h), *(len(c[i]) for c in cells)) if cells else len(h) for i, h in enumerate(headers)
    ]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines.append("  ".join("-" * w for w in widths))
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


@dataclass(frozen=True)
class Status:
    listing: Listing
    entries: dict[str, Entry]
    done: matrix.Completeness


def release_status(
    *,
    url: str,
    name: str,
    version: str,
    kind: str,
    cells: list[matrix.Cell],
    base_dir: Path,
    environ: dict[str, str],
    wait_s: float = 0.0,
    poll_s: float = 30.0,
) -> Status:
    """The container's wheels of NAME VERSION against the matrix, polled until complete or
    `wait_s` has passed."""
    if not any(kind == "all" or matrix.type_wanted(kind, c.platform_pattern) for c in cells):
        # As cibuildwheel fails on an empty selection: "COMPLETE: 0/0" would release nothing.
        raise ConfigurationError(
            f"the matrix holds no {'' if kind == 'all' else kind + ' '}wheel: nothing to check"
        )
    deadline = time.monotonic() + wait_s
    http = Http()
    try:
        while True:
            listing = read_container_listing(
                url, http, project=name, base_dir=base_dir, environ=environ
            )
            entries = listing.by_basename()
            wheels = matrix.select([n for n in entries if n.endswith(".whl")], name, version, kind)
            done = matrix.completeness(cells, wheels, kind)
            if done.complete or time.monotonic() >= deadline:
                return Status(listing, entries, done)
            remaining = deadline - time.monotonic()
            console.wait(  # stderr: stdout is the table a script reads
                f"waiting for {len(done.missing)} wheel(s) ({remaining / 60:.1f} min left)",
                min(poll_s, max(remaining, 0.1)),
                to_stderr=True,
            )
    finally:
        http.close()
