"""Retention for the pre-release container: keep the newest N builds per platform (and variant:
musllinux and Accelerate builds are lines of their own) and Python,
the newest N *successful* ones as well (failed nightlies never push out the last good wheel),
and every build younger than D days (defaults 5 and 30, as scientific-python's nightly
channel).

A build's time is the one its record gives, but never later than the store's Last-Modified of
the record object (the store's own clock: an uploader's clock, or a record dated 2099, cannot
make a build look newer than its upload and push the real newest builds out).

A build is removed (its record and log, by their exact names) once none of its Python builds
is kept; a wheel once no kept build names it. Wheels no record names (uploaded by hand) are
left alone. The index drops a wheel (its markers deleted, the page rewritten) before the
wheel itself is deleted. What killed uploads left (Container.sweep) goes too. The dry run
lists every file that would go.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from multibuild import console
from multibuild.engine.record import BuildRecord
from multibuild.publish.containers.base import ORPHAN_GRACE_S, Container
from multibuild.publish.index import (
    BUILDS,
    RecordCache,
    parse_marker,
    rebuild_history,
    rebuild_index,
)


@dataclass(frozen=True)
class PrunePlan:
    keep_builds: frozenset[str]
    delete_builds: frozenset[str]
    delete_wheels: frozenset[str]
    reasons: Mapping[str, str] = field(default_factory=dict)


def plan_prune(
    records: Iterable[BuildRecord],
    *,
    keep: int,
    keep_days: float,
    now: datetime,
    stored: Mapping[str, datetime] | None = None,
) -> PrunePlan:
    """Which builds and wheels go. Pure: records (and the store's time of each record
    object, by build id) in, names out."""
    # (platform, plat, variant, python) -> [(started, build_id, succeeded)]
    groups: dict[tuple[str, str, str, str], list[tuple[datetime, str, bool]]] = {}
    wheels_of: dict[tuple[str, str], set[str]] = {}  # (build_id, python) -> wheel names
    all_builds: set[str] = set()
    for record in records:
        build_id = record.build_id
        all_builds.add(build_id)
        started = record.started_at()
        if stored is not None and build_id in stored:
            started = min(started, stored[build_id])
        for python, names, ok in [
            (
                b.python,
                {w.name for w in b.wheels if w.name},
                (b.status or record.status) == "success" and bool(b.wheels),
            )
            for b in record.builds
        ] or [("", set(), False)]:
            key = (record.platform, record.plat, record.variant, python)
            groups.setdefault(key, []).append((started, build_id, ok))
            wheels_of.setdefault((build_id, python), set()).update(names)
    cutoff = now - timedelta(days=keep_days)
    kept: set[tuple[str, str]] = set()
    reasons: dict[str, str] = {}
    for (_, _, _, python), entries in groups.items():
        entries.sort(reverse=True)
        for rank, (started, build_id, _) in enumerate(entries):
            if rank < keep or started >= cutoff:
                kept.add((build_id, python))
        # The newest good builds stay too, however many failed after them.
        for _, build_id, _ in [e for e in entries if e[2]][:keep]:
            kept.add((build_id, python))
    keep_builds = {build_id for build_id, _ in kept}
    delete_builds = all_builds - keep_builds
    kept_wheels = set().union(*(wheels_of.get(k, set()) for k in kept)) if kept else set()
    doomed_wheels: set[str] = set()
    for (build_id, python), names in wheels_of.items():
        if (build_id, python) not in kept:
            doomed_wheels |= names - kept_wheels
    for build_id in delete_builds:
        reasons[build_id] = (
            f"not among the newest {keep}, nor the newest {keep} successful, and older than "
            f"{keep_days:g} days"
        )
    return PrunePlan(
        keep_builds=frozenset(keep_builds),
        delete_builds=frozenset(delete_builds),
        delete_wheels=frozenset(doomed_wheels),
        reasons=reasons,
    )


def prune(
    container: Container,
    *,
    keep: int,
    keep_days: float,
    title: str,
    dry_run: bool = False,
    now: datetime | None = None,
    echo: Callable[[str], None] = console.info,
    orphan_grace_s: float = ORPHAN_GRACE_S,
) -> PrunePlan:
    objects = list(container.list())
    present = {o.name for o in objects}
    by_name = {o.name: o for o in objects}
    cache = RecordCache(container)
    records = cache.all(objects)
    known = {record.build_id for record in records}
    stored = {
        r.build_id: obj.last_modified
        for r in records
        if (obj := by_name.get(f"{BUILDS}{r.build_id}.json")) is not None
    }
    plan = plan_prune(
        records,
        keep=keep,
        keep_days=keep_days,
        now=now or datetime.now(timezone.utc),
        stored=stored,
    )
    wheels = sorted(w for w in plan.delete_wheels if w in present)
    markers = sorted(
        o.name for o in objects if (m := parse_marker(o.name)) is not None and m[0] in wheels
    )
    # A build's files by their exact names (build `n1` is not build `n1.x`).
    build_files = sorted(
        name
        for record in records
        if record.build_id in plan.delete_builds
        for name in (f"{BUILDS}{record.build_id}.json", f"{BUILDS}{record.log_name}")
        if name in present
    )
    verb = "would delete" if dry_run else "delete"
    for build_id in sorted(plan.delete_builds):
        echo(f"  {verb} build {build_id} ({plan.reasons.get(build_id, '')})")
    for name in [*markers, *wheels, *build_files]:
        echo(f"  {verb} {name}")
    echo(
        f"  keep {len(plan.keep_builds)} build(s); {verb} {len(plan.delete_builds)} build(s): "
        f"{len(wheels)} wheel(s), {len(markers) + len(build_files)} other file(s)"
    )
    if not dry_run and (markers or wheels or build_files):
        seen = {o.name: o for o in objects}
        # A wheel a build recorded since the listing names is an upload's, not the plan's.
        newer = [r for r in cache.all(container.list(BUILDS)) if r.build_id not in known]
        claimed = {w.name for r in newer for b in r.builds for w in b.wheels}
        spared = sorted(
            name for name in [*markers, *wheels] if (parse_marker(name) or (name,))[0] in claimed
        )
        # Out of the index first, then gone; each only while it is the object the plan saw.
        for name in markers:
            if name not in spared and not container.delete_unchanged(seen[name]):
                spared.append(name)
        rebuild_index(container, title)
        for name in [*wheels, *build_files]:
            if name not in spared and not container.delete_unchanged(seen[name]):
                spared.append(name)
        for name in sorted(spared):
            echo(f"  kept {name}: written since the plan (a concurrent upload)")
        rebuild_index(container, title)
        rebuild_history(container, f"{title}: build history", cache)
    for leftover in container.sweep(orphan_grace_s, dry_run=dry_run):
        echo(f"  {verb} {leftover} (left by an interrupted upload)")
    return plan
