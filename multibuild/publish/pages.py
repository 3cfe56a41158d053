"""The container's two HTML pages, generated from listings and build records (all escaped).

- index.html: every verified wheel (name, size, date, sha256), links that
  `pip install --find-links URL` follows and checks (`#sha256=`), in the table format of
  Swift's and Rackspace's listings (`<td class="colname"><a href=...>NAME</a>`).
- history.html: one row per build and Python (version; source: git ref and commit, or sdist and
  sha256; branch, event, platform, Python, status with the failure's reason, duration, test
  counts, the commit of this repository that built it, links to its wheels, log and record).
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import quote

from multibuild.engine.record import BuildRecord, PythonBuild
from multibuild.util.sizes import format_size

STYLE = """
body { font-family: sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; }
table { border-collapse: collapse; }
th, td { text-align: left; padding: 0.2em 0.8em; border-bottom: 1px solid #ddd; }
th { background: #f0f0f0; }
td.colsize, td.duration { text-align: right; }
td.sha256, td.source, td.recipe { font-family: monospace; font-size: 0.85em; }
tr.success td.status { color: #1a7f37; font-weight: bold; }
tr.failed td.status { color: #cf222e; font-weight: bold; }
tr.skipped td.status { color: #6e7781; font-weight: bold; }
div.reason { font-weight: normal; font-size: 0.85em; max-width: 30em; }
a { text-decoration: none; }
"""


@dataclass(frozen=True)
class WheelEntry:
    name: str
    size: int
    date: datetime
    sha256: str


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _href(name: str) -> str:
    return _e(quote(name))


def _page(title: str, body: str) -> str:
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(title)}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n"
        f'<h1 id="title">{_e(title)}</h1>\n{body}</body>\n</html>\n'
    )


def index_html(title: str, wheels: Iterable[WheelEntry]) -> str:
    rows = []
    for wheel in sorted(wheels, key=lambda w: w.name):
        rows.append(
            '<tr class="item">'
            f'<td class="colname"><a href="{_href(wheel.name)}#sha256={_e(wheel.sha256)}">'
            f"{_e(wheel.name)}</a></td>"
            f'<td class="colsize" data-bytes="{wheel.size}">{_e(format_size(wheel.size))}</td>'
            f'<td class="coldate">{_e(wheel.date.strftime("%Y-%m-%d %H:%M:%S"))} UTC</td>'
            f'<td class="sha256">{_e(wheel.sha256)}</td></tr>\n'
        )
    body = (
        '<p><a href="history.html">Build history</a> · '
        f"{len(rows)} wheel{'s' if len(rows) != 1 else ''} · "
        "<code>pip install --find-links URL-of-this-page PACKAGE</code></p>\n"
        '<table id="listing">\n<tr id="heading"><th class="colname">Name</th>'
        '<th class="colsize">Size</th><th class="coldate">Date</th>'
        '<th class="sha256">sha256</th></tr>\n' + "".join(rows) + "</table>\n"
    )
    return _page(title, body)


def _duration(seconds: Any) -> str:
    try:
        total = int(float(seconds))
    except (TypeError, ValueError):
        return ""
    minutes, secs = divmod(total, 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def _source_cell(source: dict[str, str]) -> str:
    """A git build: the ref and its commit; an sdist build: the sdist and its sha256, both
    labelled (a sha256 alone looks like a git hash)."""
    if source.get("kind") == "sdist":
        name = source.get("path") or source.get("spec") or ""
        digest = source.get("sha256", "")
        shown = f"sdist {_e(name)}" + (f"<br>sha256 {_e(digest[:12])}…" if digest else "")
        return f'<td class="source sdist" title="{_e(digest)}">{shown}</td>'
    commit, ref = source.get("commit", ""), source.get("ref", "")
    shown = _e(ref) + (f" @ {_e(commit[:12])}" if commit else "")
    return f'<td class="source git" title="{_e(commit)}">{shown}</td>'


def _recipe_cell(record: BuildRecord) -> str:
    """The commit of this repository (the recipe) that built it."""
    commit = record.recipe.get("commit") or str(record.ci.get("commit") or "")
    modified = record.recipe.get("modified") == "yes"
    shown = _e(commit[:12]) + (" +changes" if modified else "")
    return f'<td class="recipe" title="{_e(commit)}">{shown}</td>'


def _tests_cell(build: PythonBuild) -> str:
    counts = build.tests.get("counts")
    if not isinstance(counts, dict):
        return '<td class="tests"></td>'
    shown = ", ".join(f"{_e(n)} {_e(kind)}" for kind, n in counts.items())
    return f'<td class="tests">{shown}</td>'


def history_html(title: str, records: Iterable[BuildRecord], present: set[str]) -> str:
    """`records` are build records with their `ci`; `present` the object names in the
    container, so links only point at what is there."""
    rows = []
    ordered = sorted(records, key=lambda r: r.started, reverse=True)
    for record in ordered:
        build_id = record.build_id
        ci = record.ci
        branch = str(ci.get("branch") or "")
        event = str(ci.get("event", ""))
        if ci.get("nightly"):
            event = f"{event} (nightly)" if event else "nightly"
        variant = f" ({_e(record.variant)})" if record.variant else ""
        log_name = f"builds/{record.log_name}"
        record_name = f"builds/{build_id}.json"
        links = []
        if log_name in present:
            links.append(f'<a class="log" href="{_href(log_name)}">log</a>')
        if record_name in present:
            links.append(f'<a class="record" href="{_href(record_name)}">record</a>')
        # A build that failed before any Python build started has no Python row: one row
        # for the record, saying so.
        for build in record.builds or [PythonBuild(python="", status="")]:
            status = build.status or record.status
            wheels = []
            for wheel in build.wheels:
                if wheel.name in present:
                    wheels.append(
                        f'<a class="wheel" href="{_href(wheel.name)}">{_e(wheel.name)}</a>'
                    )
                elif wheel.name:
                    wheels.append(f'<span class="gone">{_e(wheel.name)}</span>')
            css = {"success": "success", "skipped": "skipped"}.get(status, "failed")
            reason = ""
            if status != "success":
                # The message's first lines: the first often ends in a colon before the cause.
                why = " ".join(
                    line.strip()
                    for line in (build.error or record.error or "").strip().splitlines()[:3]
                )
                if why:
                    reason = f'<div class="reason">{_e(why[:240])}</div>'
            python = _e(build.python) if build.python else "(none started)"
            seconds = build.duration_s or record.duration_s
            started = record.started[:16].replace("T", " ")
            rows.append(
                f'<tr class="build {css}" data-build="{_e(build_id)}">'
                f'<td class="started">{_e(started)}</td>'
                f'<td class="version">{_e(record.version or "")}</td>'
                f"{_source_cell(record.source)}"
                f'<td class="branch">{_e(branch)}</td>'
                f'<td class="event">{_e(event)}</td>'
                f'<td class="platform">{_e(record.platform)} {_e(record.plat)}{variant}</td>'
                f'<td class="python">{python}</td>'
                f'<td class="status">{_e(status)}{reason}</td>'
                f'<td class="duration">{_e(_duration(seconds))}</td>'
                f"{_tests_cell(build)}"
                f"{_recipe_cell(record)}"
                f'<td class="wheels">{"<br>".join(wheels)}</td>'
                f'<td class="links">{" ".join(links)}</td></tr>\n'
            )
    body = (
        f'<p><a href="index.html">Wheels</a> · {len(ordered)} '
        f"build{'s' if len(ordered) != 1 else ''}</p>\n"
        '<table id="history">\n<tr id="heading"><th>Started (UTC)</th><th>Version</th>'
        "<th>Source</th><th>Branch</th><th>Event</th><th>Platform</th><th>Python</th>"
        "<th>Status</th><th>Duration</th><th>Tests</th><th>Built by</th><th>Wheels</th>"
        "<th>Files</th></tr>\n" + "".join(rows) + "</table>\n"
    )
    return _page(title, body)
