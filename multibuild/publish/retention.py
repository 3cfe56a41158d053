"""Retention for the pre-release container: keep the newest N builds per platform and Python,
and every build younger than D days (defaults 5 and 30, as scientific-python's nightly channel).

A build is removed (record and log) once none of its Python builds is kept; a wheel once no
kept build names it. Wheels no record names (uploaded by hand) are left alone. The index drops
a wheel (its markers deleted, the page rewritten) before the wheel itself is deleted.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

from multibuild.engine.record import BuildRecord
from multibuild.publish.containers.base import Container
from multibuild.publish.index import BUILDS, MARKERS, RecordCache, rebuild_history, rebuild_index


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
) -> PrunePlan:
    """Which builds and wheels go. Pure: records in, names out."""
    groups: dict[tuple[str, str, str], list[tuple[datetime, str]]] = {}
    wheels_of: dict[tuple[str, str], set[str]] = {}  # (build_id, python) -> wheel names
    all_builds: set[str] = set()
    for record in records:
        build_id = record.build_id
        all_builds.add(build_id)
        started = record.started_at()
        for python, names in [
            (b.python, {w.name for w in b.wheels if w.name}) for b in record.builds
        ] or [("", set())]:
            key = (record.platform, record.plat, python)
            groups.setdefault(key, []).append((started, build_id))
            wheels_of.setdefault((build_id, python), set()).update(names)
    cutoff = now - timedelta(days=keep_days)
    kept: set[tuple[str, str]] = set()
    reasons: dict[str, str] = {}
    for (_, _, python), entries in groups.items():
        entries.sort(reverse=True)
        for rank, (started, build_id) in enumerate(entries):
            if rank < keep or started >= cutoff:
                kept.add((build_id, python))
    keep_builds = {build_id for build_id, _ in kept}
    delete_builds = all_builds - keep_builds
    kept_wheels = set().union(*(wheels_of.get(k, set()) for k in kept)) if kept else set()
    doomed_wheels: set[str] = set()
    for (build_id, python), names in wheels_of.items():
        if (build_id, python) not in kept:
            doomed_wheels |= names - kept_wheels
    for build_id in delete_builds:
        reasons[build_id] = f"not among the newest {keep} and older than {keep_days:g} days"
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
    echo: Callable[[str], None] = print,
) -> PrunePlan:
    objects = list(container.list())
    present = {o.name for o in objects}
    cache = RecordCache(container)
    records = cache.all(objects)
    plan = plan_prune(
        records, keep=keep, keep_days=keep_days, now=now or datetime.now(timezone.utc)
    )
    wheels = sorted(w for w in plan.delete_wheels if w in present)
    verb = "would delete" if dry_run else "delete"
    for build_id in sorted(plan.delete_builds):
        echo(f"  {verb} build {build_id} ({plan.reasons.get(build_id, '')})")
    for wheel in wheels:
        echo(f"  {verb} wheel {wheel}")
    echo(
        f"  keep {len(plan.keep_builds)} build(s); {verb} {len(plan.delete_builds)} build(s) "
        f"and {len(wheels)} wheel(s)"
    )
    if dry_run or not (plan.delete_builds or wheels):
        return plan
    # Out of the index first, then gone.
    for obj in objects:
        if obj.name.startswith(MARKERS) and obj.name[len(MARKERS) :].rpartition("/")[0] in wheels:
            container.delete(obj.name)
    rebuild_index(container, title)
    for wheel in wheels:
        container.delete(wheel)
    for build_id in plan.delete_builds:
        for obj in objects:
            if obj.name.startswith(f"{BUILDS}{build_id}."):
                container.delete(obj.name)
    rebuild_history(container, f"{title}: build history", cache)
    return plan
