"""`prune` racing `upload` (issue 23, item 2) on the local, Swift and S3 (SeaweedFS) backends:
a nightly reusing an old nightly's wheel name is uploaded after prune made its plan and before
it deletes, and also with prune and upload running at the same time in threads. The new wheel,
its record and its index line survive; both runs succeed. (docs/upload.md, "Concurrent
upload and prune")"""

from __future__ import annotations

import re
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from multibuild.publish.containers import open_container
from multibuild.publish.containers.base import Container
from multibuild.publish.index import INDEX
from multibuild.publish.retention import prune
from tests.helpers import NOW, nightlies, upload_nightly


@pytest.fixture(
    params=[
        "local",
        pytest.param("swift", marks=pytest.mark.servers),
        pytest.param("s3-seaweedfs", marks=pytest.mark.servers),
    ]
)
def container(request: pytest.FixtureRequest, tmp_path: Path, container_name: str) -> Any:
    if request.param == "local":
        url, environ = str(tmp_path / "container"), {}
    elif request.param == "swift":
        url, environ = f"swift://{container_name}", request.getfixturevalue("swift_server").env()
    else:
        url = f"s3://{container_name}/pre"
        environ = request.getfixturevalue("seaweedfs_server").s3_env()
    made = open_container(url, base_dir=tmp_path, environ=environ)
    yield made
    made.close()


def upload_night(container: Container, house: Path, payload: str) -> dict[str, Any]:
    """A new nightly with the wheel names of the oldest one (`1.1.dev0`), other bytes."""
    return upload_nightly(container, house, version="1.1.dev0", started=NOW, payload=payload)


def assert_survived(container: Container, made: dict[str, Any]) -> None:
    names = {o.name for o in container.list()}
    index = container.get_bytes(INDEX).decode()
    listed = dict(re.findall(r'href="([^"#]+\.whl)#sha256=([0-9a-f]{64})', index))
    for build in made["builds"]:
        for wheel in build["wheels"]:
            assert wheel["name"] in names, f"{wheel['name']} lost"
            assert container.head(wheel["name"]).size == wheel["size"]  # type: ignore[union-attr]
            assert listed.get(wheel["name"]) == wheel["sha256"], "index and store disagree"
    assert f"builds/{made['build_id']}.json" in names


def test_an_upload_between_plan_and_delete_loses_nothing(
    tmp_path: Path, container: Container
) -> None:
    nightlies(tmp_path, container, 7)  # 1.1.dev0 and dev1 are past retention
    uploaded: list[dict[str, Any]] = []

    def upload_once(line: str) -> None:
        # prune echoes its plan before it deletes: the upload lands exactly then.
        if not uploaded and "delete" in line:
            uploaded.append(upload_night(container, tmp_path / "racing", "new bytes"))

    prune(container, keep=5, keep_days=30, title="t", now=NOW, echo=upload_once)
    assert uploaded
    assert_survived(container, uploaded[0])
    # What the plan doomed and nobody rewrote is gone (the check spares only the new).
    assert not [o.name for o in container.list() if "1.1.dev1" in o.name]


@pytest.mark.parametrize("trial", range(3))
def test_concurrent_prune_and_upload_lose_nothing(
    tmp_path: Path, container: Container, trial: int
) -> None:
    nightlies(tmp_path, container, 7)
    made: list[dict[str, Any]] = []
    errors: list[BaseException] = []

    def run(action: Any) -> None:
        try:
            action()
        except BaseException as error:
            errors.append(error)

    up = threading.Thread(
        target=run,
        args=(lambda: made.append(upload_night(container, tmp_path / "night", f"t{trial}")),),
    )
    later = NOW + timedelta(seconds=trial)
    down = threading.Thread(
        target=run,
        args=(
            lambda: prune(
                container, keep=5, keep_days=30, title="t", now=later, echo=lambda _: None
            ),
        ),
    )
    up.start()
    down.start()
    up.join(120)
    down.join(120)
    assert not errors, errors
    assert_survived(container, made[0])


def test_a_wheel_a_prune_deletes_right_after_its_upload_is_sent_again(
    tmp_path: Path, container: Container, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The window docs/upload.md leaves open on Swift and S3 (prune's HEAD saw the old object,
    its DELETE lands after the new one's PUT): the upload finds the wheel gone and sends it
    again, so it ends with the wheel there and listed."""
    nightlies(tmp_path, container, 7)
    put_file = container.put_file
    taken: list[str] = []

    def put_then_pruned(name: str, path: Path, digest: Any) -> Any:
        info = put_file(name, path, digest)
        if name.endswith(".whl") and not taken:
            taken.append(name)
            container.delete(name)  # a concurrent prune's DELETE
        return info

    monkeypatch.setattr(container, "put_file", put_then_pruned)
    made = upload_night(container, tmp_path / "night", "new bytes")
    assert taken
    assert_survived(container, made)
