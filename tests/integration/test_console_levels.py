"""-q and -v through a real command: check-config --write on a copy of this repository says
what it wrote (info: gone with -q) and its verdict (a result: there at every level)."""

from __future__ import annotations

from pathlib import Path

import pytest

from multibuild.cli import main
from tests.helpers import copy_wheels_repo


@pytest.mark.parametrize(
    ("flags", "says_what_it_wrote"), [((), True), (("-q",), False), (("-v",), True)]
)
def test_quiet_keeps_the_result_and_drops_the_rest(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    flags: tuple[str, ...],
    says_what_it_wrote: bool,
) -> None:
    root = copy_wheels_repo(tmp_path / "wheels")
    argv = [
        "check-config",
        "--write",
        "--no-cibuildwheel",
        "--settings",
        str(root / "settings.toml"),
    ]
    assert main([*argv, *flags]) == 0
    *said, verdict = capsys.readouterr().out.splitlines()
    assert verdict.startswith("OK: ")
    if says_what_it_wrote:
        assert said and all(line.startswith("unchanged: ") for line in said)
    else:
        assert said == []
