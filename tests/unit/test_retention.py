"""Retention of the pre-release container: which builds and wheels go (newest N per platform and
Python, and every young one), and pruning a local container."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from multibuild.engine.record import BuildRecord
from multibuild.publish.containers import open_container
from multibuild.publish.retention import plan_prune
from tests.helpers import NOW, prune_and_check


def record(
    build_id: str,
    days_ago: float,
    pythons: tuple[str, ...] = ("3.11",),
    plat: str = "x86_64",
    status: str = "success",
    *,
    variant: str = "",
) -> BuildRecord:
    started = NOW - timedelta(days=days_ago)
    data = {
        "schema": 1,
        "build_id": build_id,
        "started": started.isoformat().replace("+00:00", "Z"),
        "platform": "linux",
        "plat": plat,
        "variant": variant,
        "status": status,
        "builds": [
            {
                "python": p,
                "status": status,
                "wheels": []
                if status != "success"
                else [{"name": f"{build_id}-cp{p.replace('.', '')}.whl"}],
            }
            for p in pythons
        ],
    }
    read = BuildRecord.from_json(data)
    assert read is not None
    return read


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


def test_variants_are_lines_of_their_own() -> None:
    """musllinux beside manylinux, Accelerate beside OpenBLAS: each keeps its own newest N
    (one line for both would keep N of the two together, and lose one variant's last wheel)."""
    records = [record(f"many{i}", days_ago=100 + i) for i in range(3)]
    records += [record(f"musl{i}", days_ago=200 + i, variant="musllinux") for i in range(3)]
    plan = plan_prune(records, keep=2, keep_days=30, now=NOW)
    assert plan.delete_builds == {"many2", "musl2"}
    assert records[3].variant == "musllinux"
    written = BuildRecord(project="scipy", platform="macos", plat="arm64", variant="accelerate")
    assert "macos_arm64_accelerate" in written.build_id
    assert BuildRecord.from_json(written.to_json()) is not None
    again = BuildRecord.from_json(written.to_json())
    assert again is not None and again.variant == "accelerate"


def test_nothing_to_prune() -> None:
    plan = plan_prune([record("x", 1)], keep=5, keep_days=30, now=NOW)
    assert not plan.delete_builds
    assert not plan.delete_wheels


def test_prune_local_container(tmp_path: Path) -> None:
    prune_and_check(tmp_path, open_container(str(tmp_path / "pre"), base_dir=tmp_path, environ={}))


def test_failed_nightlies_never_push_out_the_last_good_wheels() -> None:
    """The newest N successful builds stay too: six failed nightlies after two good ones."""
    records = [record(f"good{i}", days_ago=60 + i) for i in range(3)]
    records += [record(f"failed{i}", days_ago=40 + i, status="failed") for i in range(6)]
    plan = plan_prune(records, keep=2, keep_days=30, now=NOW)
    assert plan.keep_builds == {"failed0", "failed1", "good0", "good1"}
    assert plan.delete_wheels == {"good2-cp311.whl"}


def test_prune_matches_exact_build_ids_and_the_dry_run_lists_every_file(tmp_path: Path) -> None:
    """Pruning build `n1` leaves build `n1.x`'s files alone; the dry run names each file."""
    from multibuild.publish.retention import prune
    from multibuild.publish.upload import upload_to_container
    from multibuild.publish.wheelhouse import collect
    from tests.servers.wheelhouse import make_build

    container = open_container(str(tmp_path / "pre"), base_dir=tmp_path, environ={})
    made = {}
    for build_id, days, version in (("n1", 50, "1.0"), ("n1.x", 1, "1.1")):
        house = tmp_path / build_id
        made[build_id] = make_build(house, version=version, started=NOW - timedelta(days=days))
        path = next(house.glob("*.json"))
        data = path.read_text().replace(made[build_id]["build_id"], build_id)
        path.unlink()
        (house / f"{build_id}.json").write_text(data)
        next(house.glob("*.log")).rename(house / f"{build_id}.log")
        upload_to_container(
            container, collect([house]), channel="pre-release", ci={}, title="t", echo=print
        )
    lines: list[str] = []
    plan = prune(container, keep=0, keep_days=30, title="t", dry_run=True, now=NOW,
                 echo=lines.append)  # fmt: skip
    assert plan.delete_builds == {"n1"}
    old_wheel = made["n1"]["builds"][0]["wheels"][0]["name"]
    listed = {line.split("would delete ", 1)[1] for line in lines if "would delete " in line}
    marker = next(o.name for o in container.list(f".verified/{old_wheel}/"))
    assert {"builds/n1.json", "builds/n1.log", old_wheel, marker} <= listed
    assert not any("n1.x" in name for name in listed)
    prune(container, keep=0, keep_days=30, title="t", now=NOW, echo=lines.append)
    names = {o.name for o in container.list()}
    assert {"builds/n1.x.json", "builds/n1.x.log"} <= names
    assert not {"builds/n1.json", "builds/n1.log", old_wheel, marker} & names


def test_a_record_dated_2099_never_pushes_out_the_newest_good_build(tmp_path: Path) -> None:
    """Issue 23 item 9: a build's time is never later than the store's Last-Modified of its
    record (here the local filesystem's mtime, set as the store would have set it on
    upload), so a record dated 2099 uploaded two days ago ranks as two days old."""
    import os
    from datetime import datetime, timezone

    from multibuild.publish.retention import prune
    from multibuild.publish.upload import upload_to_container
    from multibuild.publish.wheelhouse import collect
    from tests.servers.wheelhouse import make_build

    container = open_container(str(tmp_path / "pre"), base_dir=tmp_path, environ={})
    ids, wheels = {}, {}
    for name, version, started, uploaded in (
        ("old", "1.0", NOW - timedelta(days=3), 3),
        ("liar", "1.1", datetime(2099, 1, 1, tzinfo=timezone.utc), 2),
        ("new", "1.2", NOW - timedelta(days=1), 1),
    ):
        made = make_build(tmp_path / name, version=version, started=started)
        upload_to_container(
            container, collect([tmp_path / name]), channel="pre-release", ci={}, title="t",
            echo=print,
        )  # fmt: skip
        ids[name] = made["build_id"]
        wheels[name] = made["builds"][0]["wheels"][0]["name"]
        stamp = (NOW - timedelta(days=uploaded)).timestamp()
        os.utime(tmp_path / "pre" / "builds" / f"{made['build_id']}.json", (stamp, stamp))
    plan = prune(container, keep=1, keep_days=0.5, title="t", now=NOW, echo=print)
    assert plan.keep_builds == {ids["new"]}
    assert plan.delete_builds == {ids["old"], ids["liar"]}
    names = {o.name for o in container.list()}
    assert wheels["new"] in names
    assert not {wheels["old"], wheels["liar"]} & names


def test_a_build_is_never_newer_than_its_record_object() -> None:
    """plan_prune: the store's time of a record caps the time the record claims."""
    records = [record("liar", days_ago=-365 * 70), record("real", days_ago=1)]
    stored = {"liar": NOW - timedelta(days=2), "real": NOW - timedelta(days=1)}
    plan = plan_prune(records, keep=1, keep_days=0.5, now=NOW, stored=stored)
    assert plan.keep_builds == {"real"}
    assert plan_prune(records, keep=1, keep_days=0.5, now=NOW).keep_builds == {"liar"}
