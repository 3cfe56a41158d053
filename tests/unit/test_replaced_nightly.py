"""After a documented pre-release replace (a nightly reusing a file name), the listing the
release tools read agrees with the index (issue 23, item 10): the newest record's sha256 and
size, no "container contradicts itself", and wheel-uploader fetches the file."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone
from pathlib import Path

from multibuild.publish.containers.local import LocalContainer
from multibuild.publish.index import INDEX
from multibuild.publish.upload import upload_to_container
from multibuild.publish.wheelhouse import collect
from multibuild.release.fetch import Fetcher
from multibuild.release.listing import read_local
from multibuild.util.http import Http
from tests.servers.wheelhouse import make_build

NIGHT = datetime(2026, 11, 20, 3, 17, tzinfo=timezone.utc)


def test_the_release_tools_see_the_replacing_nightly(tmp_path: Path) -> None:
    directory = tmp_path / "container"
    container = LocalContainer(directory)
    made = []
    for night, payload in enumerate(["first night", "second night, longer payload"]):
        house = tmp_path / f"night{night}"
        made.append(
            make_build(
                house, version="1.1.dev0", started=NIGHT + timedelta(days=night), payload=payload
            )
        )
        upload_to_container(
            container, collect([house]), channel="pre-release",
            ci={"event": "cron", "nightly": True}, title="pkg", echo=lambda _: None,
        )  # fmt: skip
    [wheel] = made[1]["builds"][0]["wheels"]
    assert wheel["sha256"] != made[0]["builds"][0]["wheels"][0]["sha256"]
    index = (directory / INDEX).read_text()
    assert re.search(rf"{re.escape(wheel['name'])}#sha256={wheel['sha256']}", index)
    entry = read_local(directory).by_basename()[wheel["name"]]
    assert (entry.sha256, entry.size, entry.conflict) == (wheel["sha256"], wheel["size"], "")
    report = Fetcher(Http(), tmp_path / "dl", jobs=1).fetch([entry])
    assert [p.name for p in report.downloaded] == [wheel["name"]]
