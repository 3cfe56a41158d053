"""Build ids name the CI job: the six Python jobs of one PLAT that write their records in the
same second keep six records and logs when the upload job merges their artifacts."""

from __future__ import annotations

from multibuild.engine.record import BuildRecord
from multibuild.publish.wheelhouse import build_id_problem

STAMP = "20261204T101500Z"


def test_jobs_of_one_plat_in_one_second_have_their_own_ids() -> None:
    jobs = ["cp311-manylinux_x86_64", "cp313t-manylinux_x86_64", "cp313-macosx_arm64-accelerate"]
    records = [
        BuildRecord(project="scipy", platform="linux", plat="x86_64", job=job, stamp=STAMP)
        for job in jobs
    ]
    ids = [r.build_id for r in records]
    assert len(set(ids)) == len(jobs)
    assert ids[0] == "scipy-unknown-linux_x86_64-cp311_manylinux_x86_64-20261204T101500Z"
    assert all(build_id_problem(i) is None for i in ids)
    back = BuildRecord.from_json(records[1].to_json())
    assert back is not None and back.job == jobs[1] and back.build_id == ids[1]


def test_a_run_by_hand_keeps_the_old_form() -> None:
    record = BuildRecord(project="p", platform="linux", plat="x86_64", stamp="S")
    assert record.build_id == "p-unknown-linux_x86_64-S"
