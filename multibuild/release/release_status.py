"""release-status: the build matrix against the container, as a table (present or missing,
size, sha256); exit status 0 only when every wheel of the matrix is there (and no cell has two).
When it passes, the release is complete: the moment to push the release tag.

    release-status VERSION [-u URL] [--name NAME] [-t TYPE] [--wait DURATION]
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Sequence

from multibuild.errors import ConfigurationError
from multibuild.release import matrix
from multibuild.release.common import parse_duration, read_listing, run, settings
from multibuild.release.http import Http
from multibuild.release.listing import Entry

PROG = "release-status"
INCOMPLETE = 1


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG,
        description="Compare the CI matrix (settings.toml) with the wheels in a container.",
    )
    parser.add_argument("version", metavar="VERSION")
    parser.add_argument(
        "-u", "--url", help="container URL (default: the release container of settings.toml)"
    )
    parser.add_argument("--name", help="project name (default: settings.toml's)")
    parser.add_argument("-t", "--type", choices=matrix.TYPES, default="all", dest="kind")
    parser.add_argument("--wait", metavar="DURATION", help="poll until complete (e.g. 15m)")
    parser.add_argument("--json", action="store_true", help="the table as JSON")
    parser.add_argument("--settings", help="settings.toml (default: found)")
    parser.add_argument("-v", "--verbose", action="store_true")
    parser.add_argument("--debug-traceback", action="store_true")
    return parser


def _rows(
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
                    "platform": f"{cell.os} {cell.plat}",
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
                    "platform": f"{cell.os} {cell.plat}",
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


def _main(args: argparse.Namespace) -> int:
    config = settings(args.settings)
    if config is None:
        raise ConfigurationError("no settings.toml found (the matrix lives there); --settings")
    name = args.name or config.project.name
    url = args.url or config.upload.release
    cells = matrix.cells(config.matrix)
    deadline = time.monotonic() + (parse_duration(args.wait) if args.wait else 0.0)
    http = Http()
    try:
        while True:
            listing = read_listing(url, http, project=name, base_dir=config.root)
            entries = listing.by_basename()
            wheels = matrix.select(
                [n for n in entries if n.endswith(".whl")], name, args.version, args.kind
            )
            done = matrix.check(cells, wheels, args.kind)
            if done.complete or time.monotonic() >= deadline:
                break
            time.sleep(min(30.0, max(deadline - time.monotonic(), 0.1)))
    finally:
        http.close()
    rows = _rows(done, entries, name, args.version)
    if args.json:
        print(json.dumps({"complete": done.complete, "url": url, "wheels": rows}, indent=2))
    else:
        print(f"{name} {args.version} in {url} ({listing.kind})")
        print(table(rows))
        present = len(done.cells) - len(done.missing)
        verdict = "COMPLETE" if done.complete else "INCOMPLETE"
        extra = f", {len(done.conflicts)} with two wheels" if done.conflicts else ""
        print(f"{verdict}: {present}/{len(done.cells)} wheels of the matrix{extra}")
    return 0 if done.complete else INCOMPLETE


def main(argv: Sequence[str] | None = None) -> int:
    args = make_parser().parse_args(argv)
    return run(PROG, lambda: _main(args), args.debug_traceback)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
