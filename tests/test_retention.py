"""Retention of nightly builds in the pre-release container."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from multibuild.containers import open_container
from multibuild.containers.base import Container
from multibuild.retention import plan_prune, prune
from multibuild.upload import INDEX, collect, upload
from tests.servers.wheelhouse import make_build

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)
REPO = Path(__file__).resolve().parent.parent


def record(
    build_id: str, days_ago: float, pythons: tuple[str, ...] = ("3.11",), plat: str = "x86_64"
) -> dict[str, Any]:
    started = NOW - timedelta(days=days_ago)
    return {
        "build_id": build_id,
        "started": started.isoformat().replace("+00:00", "Z"),
        "platform": "linux",
        "plat": plat,
        "builds": [
            {"python": p, "wheels": [{"name": f"{build_id}-cp{p.replace('.', '')}.whl"}]}
            for p in pythons
        ],
    }


def test_keeps_newest_n_per_platform_and_python_and_young_ones() -> None:
    records = [record(f"b{i}", days_ago=40 + i) for i in range(8)]  # all old
    records += [record(f"young{i}", days_ago=i) for i in range(3)]  # all young
    plan = plan_prune(records, keep=5, keep_days=30, now=NOW)
    assert plan.keep_builds == {"young0", "young1", "young2", "b0", "b1"}
    assert plan.delete_builds == {f"b{i}" for i in range(2, 8)}
    assert plan.delete_wheels == {f"b{i}-cp311.whl" for i in range(2, 8)}


def test_groups_are_per_platform_and_python() -> None:
    records = [record(f"a{i}", days_ago=100 + i, plat="x86_64") for i in range(3)]
    records += [record(f"m{i}", days_ago=100 + i, plat="arm64") for i in range(3)]
    plan = plan_prune(records, keep=2, keep_days=30, now=NOW)
    assert plan.delete_builds == {"a2", "m2"}
    # A build for two Pythons stays while either of them is kept.
    records = [
        record("both", days_ago=100, pythons=("3.11", "3.12")),
        record("newer311", days_ago=50, pythons=("3.11",)),
    ]
    plan = plan_prune(records, keep=1, keep_days=30, now=NOW)
    assert plan.keep_builds == {"both", "newer311"}
    assert plan.delete_wheels == {"both-cp311.whl"}


def test_nothing_to_prune() -> None:
    plan = plan_prune([record("x", 1)], keep=5, keep_days=30, now=NOW)
    assert not plan.delete_builds
    assert not plan.delete_wheels


def _nightlies(tmp: Path, container: Container, count: int) -> list[dict[str, Any]]:
    made = []
    for night in range(count):
        house = tmp / f"night{night}"
        started = NOW - timedelta(days=40 - night)
        made.append(
            make_build(house, version=f"1.1.dev{night}", started=started, pythons=("3.11", "3.12"))
        )
        upload(
            container,
            collect([house]),
            channel="pre-release",
            ci={"event": "cron", "nightly": True},
            title="pkg pre-release",
            echo=lambda _: None,
        )
    return made


def _prune_and_check(tmp: Path, container: Container) -> None:
    made = _nightlies(tmp, container, 7)
    lines: list[str] = []
    plan = prune(
        container, keep=5, keep_days=30, title="t", dry_run=True, now=NOW, echo=lines.append
    )
    assert plan.delete_builds == {made[0]["build_id"], made[1]["build_id"]}
    assert any("would delete wheel pkg-1.1.dev0-cp311" in line for line in lines)
    assert len([o for o in container.list() if o.name.endswith(".whl")]) == 14  # dry run
    prune(container, keep=5, keep_days=30, title="t", now=NOW, echo=lines.append)
    names = {o.name for o in container.list()}
    wheels = {n for n in names if n.endswith(".whl")}
    assert len(wheels) == 10
    assert not any("dev0" in n or "dev1" in n for n in names if not n.endswith(".html"))
    index = container.get_bytes(INDEX).decode()
    assert set(re.findall(r'href="([^"#]+\.whl)#', index)) == wheels
    history = container.get_bytes("history.html").decode()
    assert made[0]["build_id"] not in history
    assert made[6]["build_id"] in history


def test_prune_local_container(tmp_path: Path) -> None:
    _prune_and_check(tmp_path, open_container(str(tmp_path / "pre"), base_dir=tmp_path))


@pytest.mark.servers
def test_prune_swift_container(tmp_path: Path, swift_server: Any, container_name: str) -> None:
    container = open_container(
        f"swift://{container_name}", base_dir=tmp_path, environ=swift_server.env()
    )
    _prune_and_check(tmp_path, container)
    container.close()


def test_prune_command_refuses_the_release_container(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        '[project]\nname = "pkg"\nrepo = "x"\nBUILD_COMMIT = "v1"\n'
        '[upload]\npre_release = "pre"\nrelease = "rel"\n'
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    base = [sys.executable, "-m", "multibuild", "prune", "--settings", str(settings)]
    done = subprocess.run(
        [*base, "--container", "rel"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 10
    assert "REFUSED" in done.stderr
    done = subprocess.run(
        [*base, "--dry-run"], env=env, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "keep 5 per platform and Python, and 30 days" in done.stdout
