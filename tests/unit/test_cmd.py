"""util/cmd's captured runs and util/git's one git runner, with real commands: one failure
text (the command, its exit status, the end of its output), a command that cannot start told
apart from one that failed, git always with its safe configuration."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from multibuild.errors import LibraryError
from multibuild.util.cmd import check, run
from multibuild.util.git import run_git


def test_a_failed_command_is_named_with_its_exit_status_and_output() -> None:
    script = "import sys; print('line one'); sys.exit('it broke')"
    with pytest.raises(LibraryError) as raised:
        check([sys.executable, "-c", script], error=LibraryError, shown="probe --flag")
    message = str(raised.value)
    assert message.startswith("`probe --flag` failed with exit status 1:\n")
    assert "    line one\n    it broke" in message


def test_a_command_that_cannot_start_is_not_a_failed_run(tmp_path: Path) -> None:
    missing = run([str(tmp_path / "no-such-program")])
    assert not missing.started and missing.returncode == 127 and not missing.ok
    assert "cannot run" in missing.failure()
    no_dir = run([sys.executable, "-c", "pass"], cwd=tmp_path / "no-such-dir")
    assert not no_dir.started
    done = run([sys.executable, "-c", "print('out')"])
    assert done.started and done.ok and done.stdout == "out\n"
    assert check([sys.executable, "-c", "print('out')"], error=LibraryError) == "out\n"


def test_git_runs_with_its_safe_configuration(tmp_path: Path) -> None:
    assert run_git(["init", "-q", "--", str(tmp_path)]).ok
    setting = run_git(["config", "--get", "protocol.ext.allow"], tmp_path)
    assert setting.ok and setting.stdout.strip() == "never"
    assert not run_git(["rev-parse", "--verify", "--end-of-options", "HEAD"], tmp_path).ok
