"""The fixture libraries' tarballs are exactly what their sources in tests/fixtures/libsrc make
(tests/fixtures/make_tarballs.py), so a source change cannot go unnoticed behind a pinned
sha256."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from tests.helpers import FIXTURES

spec = importlib.util.spec_from_file_location("make_tarballs", FIXTURES / "make_tarballs.py")
assert spec is not None and spec.loader is not None
make_tarballs = importlib.util.module_from_spec(spec)
sys.modules["make_tarballs"] = make_tarballs
spec.loader.exec_module(make_tarballs)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (FIXTURES / "libsrc").iterdir() if p.is_dir())
)
def test_tarball_is_made_from_its_source(name: str) -> None:
    made = make_tarballs.tarball_bytes(FIXTURES / "libsrc" / name)
    assert (FIXTURES / "tarballs" / f"{name}.tar.gz").read_bytes() == made, (
        f"run python tests/fixtures/make_tarballs.py and update the pinned sha256 of {name}"
    )
