"""Repair the wheel so it needs nothing outside the platform's baseline
(auditwheel on Linux, delocate on macOS, delvewheel on Windows)."""

from __future__ import annotations

import re
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import parse_wheel_filename

from multibuild.errors import RepairError
from multibuild.log import Logger
from multibuild.platforms import Platform
from multibuild.util.cmd import excerpt, stream
from multibuild.util.files import remove_tree

SHARED_LIBRARY = re.compile(r"\.(so(\.\d+)*|dylib|dll)$")
# The repair tool names the wheel after the policies it meets; PEP 600 names and aliases.
GLIBC_POLICY = re.compile(r"^(many|musl)linux_(\d+)_(\d+)_")
LEGACY_ALIASES = {"manylinux1": (2, 5), "manylinux2010": (2, 12), "manylinux2014": (2, 17)}


@dataclass(frozen=True, kw_only=True)
class RepairResult:
    wheel: Path
    tool: str
    requested_plat: str | None = None
    grafted: tuple[str, ...] = ()
    policy: str | None = None

    def to_record(self) -> dict[str, object]:
        return {
            "tool": self.tool,
            "requested_plat": self.requested_plat,
            "policy": self.policy,
            "grafted": list(self.grafted),
        }


def is_pure(wheel: Path) -> bool:
    _, _, _, tags = parse_wheel_filename(wheel.name)
    return all(tag.platform == "any" for tag in tags)


def best_policy(wheel: Path) -> str:
    """The most recent policy among the wheel's platform tags: the one the repair chose
    (auditwheel adds the older ones it also meets), or the only tag off Linux."""
    platforms = sorted({tag.platform for tag in parse_wheel_filename(wheel.name)[3]})

    def age(platform: str) -> tuple[int, int, bool]:
        found = GLIBC_POLICY.match(platform)
        if found:  # on a tie the PEP 600 name wins over its legacy alias
            return int(found.group(2)), int(found.group(3)), True
        return (*LEGACY_ALIASES.get(platform.partition("_")[0], (0, 0)), False)

    return max(platforms, key=age)


def shared_libraries(wheel: Path) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return {name for name in zf.namelist() if SHARED_LIBRARY.search(name)}


def repair_wheel(
    wheel: Path,
    dest_dir: Path,
    platform: Platform,
    *,
    prefix: Path,
    plat: str | None,
    environ: Mapping[str, str],
    logger: Logger,
) -> RepairResult:
    if is_pure(wheel):
        logger.info(f"{wheel.name} is a pure-Python wheel: nothing to repair")
        return RepairResult(wheel=wheel, tool="none")
    remove_tree(dest_dir)
    dest_dir.mkdir(parents=True)
    plan = platform.repair_plan(wheel, dest_dir, prefix=prefix, plat=plat, environ=environ)
    tool = platform.repair_tool
    done = stream(plan.command, logger, env={**environ, **plan.env}, label="repair")
    if done.returncode != 0:
        tail = excerpt(done.tail, 15)
        raise RepairError(
            f"{tool} could not repair {wheel.name} (exit status {done.returncode}):\n{tail}"
        )
    repaired = sorted(dest_dir.glob("*.whl"))
    if len(repaired) != 1:
        raise RepairError(f"{tool} left {len(repaired)} wheels in {dest_dir}, expected one")
    grafted = tuple(sorted(shared_libraries(repaired[0]) - shared_libraries(wheel)))
    policy = best_policy(repaired[0])
    logger.info(
        f"repaired: {repaired[0].name}; policy {policy}; grafted: "
        f"{', '.join(Path(g).name for g in grafted) or 'nothing'}"
    )
    return RepairResult(
        wheel=repaired[0], tool=tool, requested_plat=plat, grafted=grafted, policy=policy
    )
