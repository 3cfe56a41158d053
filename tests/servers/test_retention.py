"""Pruning a real Swift container on 127.0.0.1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from multibuild.publish.containers import open_container
from tests.helpers import prune_and_check


@pytest.mark.servers
def test_prune_swift_container(tmp_path: Path, swift_server: Any, container_name: str) -> None:
    container = open_container(
        f"swift://{container_name}", base_dir=tmp_path, environ=swift_server.env()
    )
    prune_and_check(tmp_path, container)
    container.close()
