"""Build hooks see no credential, by `build` and by `ci`; and a secret a hook prints anyway
(as it is, line by line, URL-encoded) stays out of the console, the build log and the failed
build's record, all of which CI keeps."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import urllib.parse
from pathlib import Path

from multibuild.errors import HookError
from tests.helpers import (
    CI_EVENTS,
    build_args,
    config_copy,
    engine_environ,
    git,
    make_repo,
    run_multibuild,
)

# The name of the process the hook leaves running.
LEFTOVER = f"mb-leftover-{os.getpid()}"


def leftovers() -> list[int]:
    """The PIDs of processes named LEFTOVER (killed here, by PID: they are this test's)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        with contextlib.suppress(OSError):
            if cmdline.read_bytes().startswith(LEFTOVER.encode()):
                found.append(int(cmdline.parent.name))
    for pid in found:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    return found


# Recognisable fake secrets.
SECRETS = {
    "ST_KEY": "FAKE-st-key-hook-0001",
    "AWS_SECRET_ACCESS_KEY": "FAKE/aws+hook=0002",
    "TWINE_PASSWORD": "pypi-FAKE-twine-hook-0003",
    "GITHUB_TOKEN": "ghp_FAKEgithubhook0004",
    "ANACONDA_API_TOKEN": "FAKE-anaconda-hook-0005",
    "OS_PASSWORD": "FAKE-line-one-hook-0006\nFAKE-line-two-hook-0007",
}
PIECES = [v for value in SECRETS.values() for v in value.splitlines()]


def leaky_config(directory: Path) -> Path:
    """A config.sh whose pre_build writes its environment down, prints secrets it somehow got
    (a tool that echoes a URL with a token, a key printed line by line), then fails."""
    prints = [
        f"echo 'token in a URL: https://x:{SECRETS['GITHUB_TOKEN']}@example.org/'",
        f"echo 'key: {SECRETS['ST_KEY']}'",
        f"echo 'encoded: {urllib.parse.quote(SECRETS['AWS_SECRET_ACCESS_KEY'], safe='')}'",
        *(f"echo '{line}'" for line in SECRETS["OS_PASSWORD"].splitlines()),
        f"echo '{SECRETS['TWINE_PASSWORD']} {SECRETS['ANACONDA_API_TOKEN']}'",
    ]
    # The environment blocks of every process it can see, its parents' too, hex-encoded past
    # the Redactor; and a process left running for the upload to come.
    snoop = [
        'for f in /proc/[0-9]*/environ; do tr "\\0" "\\n" < "$f" 2>/dev/null || true; done'
        ' | od -An -v -tx1 | tr -d " \\n" > "$MB_WORK_DIR/hook-proc"',
        'ls -d /proc/[0-9]* | wc -l > "$MB_WORK_DIR/hook-proc-count"',
        f"(setsid bash -c 'exec -a {LEFTOVER} sleep 600' > /dev/null 2>&1 &)",
    ]
    body = "\n    ".join(['env > "$MB_WORK_DIR/hook-env"', *snoop, *prints, "return 1"])
    return config_copy(
        "hello-c", directory, edit={"pre_build() {\n": f"pre_build() {{\n    {body}\n"}
    )


def assert_no_secret(texts: list[str], hook_env: str, work_dir: Path) -> None:
    for name in SECRETS:
        assert f"{name}=" not in hook_env, name
    # What the hook read from /proc: its own processes only, no credential of any ancestor.
    seen = bytes.fromhex((work_dir / "hook-proc").read_text()).decode("utf-8", "replace")
    assert "PATH=" in seen  # it did read environment blocks
    for piece in PIECES:
        assert piece not in seen, piece
    assert int((work_dir / "hook-proc-count").read_text()) < 10
    assert not leftovers(), "a process the hook started outlived the build"
    for text in [*texts, hook_env]:
        for piece in PIECES:
            assert piece not in text, piece
    assert any("***" in text for text in texts)


def test_build_hooks_get_no_credentials_and_logs_keep_no_secret(tmp_path: Path) -> None:
    repo = make_repo("hello-c", tmp_path / "repo")
    config = leaky_config(tmp_path / "cfg")
    run = run_multibuild(tmp_path, *build_args(repo, config), env=SECRETS)
    assert run.returncode == HookError.return_code, run.output
    [record] = run.records()
    assert record["status"] == "failed"
    logs = [p.read_text() for p in run.wheelhouse.glob("*.log")]
    assert logs
    record_text = json.dumps(record)
    assert_no_secret(
        [run.output, record_text, *logs], (run.work_dir / "hook-env").read_text(), run.work_dir
    )
    assert "hook pre_build failed" in record["error"]


def test_ci_hooks_get_no_credentials_and_logs_keep_no_secret(tmp_path: Path) -> None:
    project = make_repo("hello-c", tmp_path / "hello-repo")
    root = tmp_path / "wheels"
    leaky_config(root / "cfg")
    (root / "settings.toml").write_text(
        f'[project]\nname = "hello-c"\nrepo = "{project}"\nBUILD_COMMIT = "v1.0"\n'
        'DAILY_COMMIT = "main"\nconfig = "cfg/config.sh"\n'
        '[build]\nsystem_tools = ["git"]\n[matrix]\npython = ["3.11"]\nlinux = ["x86_64"]\n'
    )
    git("init", "-q", "-b", "main", cwd=root)
    # The settings' default containers are local directories: accepted on this "runner".
    env = {
        **engine_environ(),
        **CI_EVENTS["github"]["push"],
        **SECRETS,
        "MB_LOCAL_CONTAINER_ON_CI": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", "multibuild", "ci", "--job", "cp311-manylinux_x86_64",
         "--builder", "host", "--no-upload"],
        cwd=root, env=env, capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == HookError.return_code, output
    wheelhouse = root / "wheelhouse"
    texts = [output, *(p.read_text() for p in wheelhouse.iterdir())]
    assert_no_secret(texts, (root / ".multibuild" / "hook-env").read_text(), root / ".multibuild")
