"""Fixtures shared by the suites (tests/unit, tests/integration, tests/servers), and the rule
that with MB_REQUIRE_SERVERS=1 (.ci/run sets it) a test skipped for a missing server, tool or
package fails instead: on CI nothing the suite needs may be missing."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import config_copy, make_repo

# Real servers on 127.0.0.1 (Swift, SeaweedFS, a fault-injecting proxy, static HTTP,
# pypiserver, devpi, a throwaway GPG home) as fixtures.
pytest_plugins = ["tests.servers.fixtures", "tests.servers.release"]

REQUIRE = os.environ.get("MB_REQUIRE_SERVERS", "") not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    if REQUIRE and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"MB_REQUIRE_SERVERS=1: skipped where it must run: {reason}"


@pytest.fixture
def hello_repo(tmp_path: Path) -> Path:
    return make_repo("hello-c", tmp_path / "hello-repo")


@pytest.fixture
def hello_config(tmp_path: Path) -> Path:
    return config_copy("hello-c", tmp_path / "hello-config")
