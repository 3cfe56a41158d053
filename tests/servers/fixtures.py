"""pytest fixtures for the real servers (loaded by tests/conftest.py as a plugin)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.servers import seaweedfs, swift
from tests.servers.seaweedfs import SeaweedFS
from tests.servers.swift import SwiftServer


@pytest.fixture(scope="session")
def swift_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SwiftServer]:
    """A single-node Swift (tempauth, s3api, staticweb, SLO) for the whole session."""
    missing = swift.missing_tools()
    if missing:
        pytest.skip(f"Swift not installed: {', '.join(missing)} (.ci/apt-packages.txt)")
    server = SwiftServer(tmp_path_factory.mktemp("swift"))
    try:
        server.start()
    except Exception as error:
        pytest.fail(f"Swift did not start: {error}\n{server.logs()}")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def seaweedfs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SeaweedFS]:
    missing = seaweedfs.missing_tools()
    if missing:
        pytest.skip(f"SeaweedFS not installed: {', '.join(missing)}")
    server = SeaweedFS(tmp_path_factory.mktemp("seaweedfs"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def container_name() -> str:
    """A fresh container/bucket name for one test (S3 bucket-name rules)."""
    return f"t-{uuid.uuid4().hex[:16]}"


@pytest.fixture
def servers_root(tmp_path: Path) -> Path:
    return tmp_path
