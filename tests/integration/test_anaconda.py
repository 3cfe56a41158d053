"""Nightlies to anaconda.org (`[upload] nightly_indexes = ["anaconda://ORG"]`) through
anaconda-client's command line, as scipy's nightlies go to scientific-python-nightly-wheels.

anaconda.org cannot be reached from here, so `anaconda` is a minimal local stand-in on a
temporary PATH: a script that records its argv, answers `show` with the `Versions:` block
anaconda-client prints, and fails when told to. What is tested is the exact command lines the
upload gives it, the retention it asks for, the token never shown, and the errors; not
anaconda.org itself."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from multibuild.publish import anaconda
from multibuild.util.secrets import withheld
from tests.helpers import REPO_ROOT, github
from tests.servers.wheelhouse import make_build

TOKEN = "anaconda-t0ken-never-shown"
STUB = """\
#!{python}
import json, os, sys
with open(os.environ["STUB_CALLS"], "a") as calls:
    calls.write(json.dumps(sys.argv[1:]) + "\\n")
command = sys.argv[3] if len(sys.argv) > 3 else ""
if os.environ.get("STUB_FAIL") == command:
    print(f"Error: 401 Unauthorized: bad token {{sys.argv[2]}}", file=sys.stderr)
    sys.exit(1)
if command == "show":
    print("Using Anaconda API", file=sys.stderr)
    print("Versions:", file=sys.stderr)
    for version in os.environ.get("STUB_VERSIONS", "").split():
        print(f"   + {{version}}", file=sys.stderr)
"""


def settings_file(tmp: Path, keep: int = 2) -> Path:
    path = tmp / "settings.toml"
    path.write_text(
        '[project]\nname = "pkg"\nrepo = "https://example.org/x.git"\nBUILD_COMMIT = "v1.0"\n'
        '[upload]\npre_release = "containers/pre"\nrelease = "containers/rel"\n'
        f'nightly_indexes = ["anaconda://nightly-org"]\nkeep_nightlies = {keep}\n'
    )
    return path


def upload(
    tmp: Path, house: Path, *, env: dict[str, str], stub: bool = True
) -> tuple[subprocess.CompletedProcess[str], list[list[str]]]:
    bin_dir, calls = tmp / "bin", tmp / "calls.jsonl"
    bin_dir.mkdir(exist_ok=True)
    if stub:
        (bin_dir / "anaconda").write_text(STUB.format(python=sys.executable))
        (bin_dir / "anaconda").chmod(0o755)
    calls.unlink(missing_ok=True)
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TRAVIS", "APPVEYOR", "MB_", "ANACONDA")) and k != "CI"
    }
    clean.update(
        # Without the stub, no `anaconda` at all: not the venv's (anaconda-client is a test
        # dependency, for its API), which would reach the real server.
        PATH=os.pathsep.join(
            [str(bin_dir), str(Path(sys.executable).parent) if stub else "/usr/bin:/bin"]
        ),
        PYTHONPATH=str(REPO_ROOT),
        STUB_CALLS=str(calls),
        MB_LOCAL_CONTAINER_ON_CI="1",  # the pre-release container: a directory here
    )
    clean.update({**github(GITHUB_EVENT_NAME="schedule"), **env})
    done = subprocess.run(
        [sys.executable, "-m", "multibuild", "upload", "--settings", str(settings_file(tmp)),
         str(house)],
        cwd=tmp, env=clean, capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    recorded = (
        [json.loads(line) for line in calls.read_text().splitlines()] if calls.exists() else []
    )
    return done, recorded


def test_a_nightly_goes_to_anaconda_org_with_retention(tmp_path: Path) -> None:
    house = tmp_path / "wh"
    record = make_build(house, name="pkg", version="1.1.dev5", platform="linux")
    wheels = sorted(w["name"] for b in record["builds"] for w in b["wheels"])
    done, calls = upload(
        tmp_path,
        house,
        env={"ANACONDA_TOKEN": TOKEN, "STUB_VERSIONS": "1.1.dev3 1.1.dev5 1.0 1.1.dev4"},
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    upload_call, show_call, *removes = calls
    assert upload_call[:8] == ["-t", TOKEN, "upload", "--force", "-u", "nightly-org",
                               "--label", "main"]  # fmt: skip
    assert sorted(Path(p).name for p in upload_call[8:]) == wheels
    assert show_call == ["-t", TOKEN, "show", "nightly-org/pkg"]
    # keep_nightlies = 2: the newest two versions stay, the older ones go.
    assert removes == [
        ["-t", TOKEN, "remove", "--force", "nightly-org/pkg/1.1.dev3"],
        ["-t", TOKEN, "remove", "--force", "nightly-org/pkg/1.0"],
    ]
    assert TOKEN not in output and "anaconda -t *** upload --force -u nightly-org" in output
    assert "2 old version(s) removed (keep 2)" in output
    # The pre-release container has the same wheels, with their record.
    assert sorted(p.name for p in (tmp_path / "containers" / "pre").glob("*.whl")) == wheels


def test_anaconda_failures_are_clear_and_never_show_the_token(tmp_path: Path) -> None:
    house = tmp_path / "wh"
    make_build(house, name="pkg", version="1.1.dev5", platform="linux")
    done, calls = upload(tmp_path, house, env={})
    assert done.returncode == 11, done.stderr
    assert "ANACONDA_TOKEN not set" in done.stderr and calls == []

    done, _ = upload(tmp_path, house, env={"ANACONDA_TOKEN": TOKEN, "STUB_FAIL": "upload"})
    assert done.returncode == 11, done.stderr
    assert "upload to anaconda://nightly-org failed (exit status 1)" in done.stderr
    assert "check ANACONDA_TOKEN" in done.stderr
    assert TOKEN not in done.stdout + done.stderr

    (tmp_path / "bin" / "anaconda").unlink()
    done, _ = upload(tmp_path, house, env={"ANACONDA_TOKEN": TOKEN}, stub=False)
    assert done.returncode == 10, done.stderr
    assert "the `anaconda` command is missing (pip install anaconda-client)" in done.stderr

    # Pushes to main (not nightlies) and pull requests never go there.
    push, calls = upload(
        tmp_path, house, env={"ANACONDA_TOKEN": TOKEN, "GITHUB_EVENT_NAME": "push"}
    )
    assert push.returncode == 0 and calls == []


def test_command_lines_urls_and_the_withheld_token() -> None:
    assert anaconda.organisation("anaconda://scientific-python-nightly-wheels") == (
        "scientific-python-nightly-wheels"
    )
    for bad in ("anaconda://", "anaconda://org/sub", "anaconda://tok@org", "s3://org"):
        with pytest.raises(Exception, match="anaconda"):
            anaconda.organisation(bad)
    assert anaconda.versions_to_remove(["1.0", "1.2.dev1", "junk", "1.10"], keep=1) == [
        "1.2.dev1",
        "1.0",
    ]
    assert anaconda.versions_to_remove(["1.0"], keep=5) == []
    assert anaconda.versions_shown("Versions:\n   + 1.0\n   + 2.0rc1\nTo install...\n") == [
        "1.0",
        "2.0rc1",
    ]
    # Builds (the project's code) never see the token.
    assert "ANACONDA_TOKEN" not in withheld({"ANACONDA_TOKEN": TOKEN, "PATH": "/bin"})
