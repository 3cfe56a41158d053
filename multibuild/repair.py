"""Step 4: repair the wheel so it needs nothing outside the platform's baseline
(auditwheel on Linux, delocate on macOS, delvewheel on Windows)."""

from __future__ import annotations

import os
import re
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import parse_wheel_filename

from multibuild.errors import RepairError
from multibuild.log import Logger
from multibuild.platforms import Platform
from multibuild.util.cmd import excerpt, run
from multibuild.util.files import remove_tree

SHARED_LIBRARY = re.compile(r"\.(so(\.\d+)*|dylib|dll)$")
POLICY = re.compile(r'platform tag:\s*"([^"]+)"')


@dataclass(frozen=True, kw_only=True)
class RepairResult:
    wheel: Path
    tool: str
    requested_plat: str | None = None
    grafted: tuple[str, ...] = ()
    policy: str | None = None
    report: list[str] = field(default_factory=list)

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
    logger: Logger,
) -> RepairResult:
    if is_pure(wheel):
        logger.info(f"{wheel.name} is a pure-Python wheel: nothing to repair")
        return RepairResult(wheel=wheel, tool="none")
    remove_tree(dest_dir)
    dest_dir.mkdir(parents=True)
    plan = platform.repair_plan(wheel, dest_dir, prefix=prefix, plat=plat)
    tool = Path(plan.command[2] if plan.command[1] == "-m" else plan.command[0]).name
    done = run(plan.command, logger, env={**os.environ, **plan.env}, label="repair")
    if done.returncode != 0:
        tail = excerpt(done.tail, 15)
        raise RepairError(
            f"{tool} could not repair {wheel.name} (exit status {done.returncode}):\n{tail}"
        )
    repaired = sorted(dest_dir.glob("*.whl"))
    if len(repaired) != 1:
        raise RepairError(f"{tool} left {len(repaired)} wheels in {dest_dir}, expected one")
    grafted = tuple(sorted(shared_libraries(repaired[0]) - shared_libraries(wheel)))
    policy = None
    report: list[str] = []
    inspect = platform.inspect_command(repaired[0])
    if inspect:
        shown = run(inspect, logger, label="inspect")
        report = shown.tail.splitlines()
        found = POLICY.search(shown.tail.replace("\n", " "))
        policy = found.group(1) if found else None
    if policy is None:
        policy = next(iter(parse_wheel_filename(repaired[0].name)[3])).platform
    logger.info(
        f"repaired: {repaired[0].name}; policy {policy}; grafted: "
        f"{', '.join(Path(g).name for g in grafted) or 'nothing'}"
    )
    return RepairResult(
        wheel=repaired[0],
        tool=tool,
        requested_plat=plat,
        grafted=grafted,
        policy=policy,
        report=report,
    )
