"""Every command with bad input, as a table: for each case the exit code, one clear message
(argparse's usage lines before it, where argparse refuses), no traceback, nothing uploaded
(the containers stay empty; the remote ones are a port nothing listens on), and none of the
recognisable fake secrets of the environment or the command line in any output or any file
the run left."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT, engine_environ, make_repo
from tests.servers.wheelhouse import make_build, make_wheel

SECRETS = {
    "ST_KEY": "FAKE-table-st-key-0001",
    "AWS_SECRET_ACCESS_KEY": "FAKE-table-aws-0002",
    "TWINE_PASSWORD": "FAKE-table-twine-0003",
    "GITHUB_TOKEN": "FAKE-table-github-0004",
    "OS_PASSWORD": "FAKE-table-os-0005",
}
URL_SECRET = "FAKE-table-url-0006"  # in URLs given on the command line or in variables
ALL_SECRETS = (*SECRETS.values(), URL_SECRET)
NOWHERE = "127.0.0.1:9"  # nothing listens there
GITHUB_MAIN = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_REF_NAME": "main",
}

SETTINGS = """\
[project]
name = "pkg"
repo = "{repo}"
BUILD_COMMIT = "v1.0"
config = "config.sh"

[matrix]
python = ["3.11"]
linux = ["x86_64"]

[upload]
pre_release = "containers/pre"
release = "containers/rel"
"""


@dataclass(frozen=True)
class Case:
    id: str
    argv: tuple[str, ...]
    code: int
    message: str  # a regular expression the one message line matches
    env: dict[str, str] = field(default_factory=dict)
    settings: Callable[[str], str] | None = None  # the default settings.toml -> this case's
    usage: bool = False  # argparse refuses it: its usage lines come first
    marker: str = ""  # a file that must not exist afterwards (a command that ran)


def edit(old: str, new: str) -> Callable[[str], str]:
    return lambda text: text.replace(old, new)


def append(extra: str) -> Callable[[str], str]:
    return lambda text: text + extra


CASES = [
    # settings.toml
    Case(
        "settings-project-not-a-table",
        ("build",),
        2,
        r"settings\.toml: \[project\] must be a table",
        settings=lambda _: "project = 1\n",
    ),
    Case(
        "settings-type-names-the-file",
        ("prune", "--dry-run"),
        2,
        r"settings\.toml: \[upload\] keep_nightlies must be a whole number, not '5'",
        settings=append('keep_nightlies = "5"\n'),
    ),
    Case(
        "settings-bool-is-no-number",
        ("prune", "--dry-run"),
        2,
        r"settings\.toml: \[upload\] keep_nightlies must be a whole number, not True",
        settings=append("keep_nightlies = true\n"),
    ),
    Case(
        "settings-misspelt-table",
        ("upload", "wh"),
        2,
        r"settings\.toml: unknown table \[uplod\] \(did you mean 'upload'\?\)",
        settings=edit("[upload]", "[uplod]"),
    ),
    Case(
        "settings-misspelt-key",
        ("upload", "wh"),
        2,
        r"unknown setting \[upload\] 'pre_relase' \(did you mean 'pre_release'\?\)",
        settings=edit("pre_release =", "pre_relase ="),
    ),
    Case(
        "settings-option-as-commit",
        ("build",),
        2,
        r"settings\.toml: \[project\] BUILD_COMMIT '--upload-pack=touch MARKER' .*begins with '-'",
        settings=edit('"v1.0"', '"--upload-pack=touch MARKER"'),
        marker="MARKER",
    ),
    Case(
        "settings-glob-release-branches",
        ("upload", "wh"),
        2,
        r"release_branches 'v\[0-9\]\*\.\[0-9\]\*': an unescaped '\.'",
        settings=append('release_branches = ["v[0-9]*.[0-9]*"]\n'),
    ),
    # build
    Case(
        "build-wheelhouse-is-a-file",
        ("build", "--wheelhouse", "afile"),
        2,
        r"--wheelhouse .*afile is a file, not a directory",
    ),
    Case(
        "build-option-as-commit",
        ("build", "--commit=--upload-pack=touch MARKER"),
        3,
        r"ref '--upload-pack=touch MARKER' is not a branch, tag or commit name",
        marker="MARKER",
    ),
    Case(
        "build-ext-transport",
        ("build", "--repo", "ext::sh -c touch% MARKER"),
        3,
        r"cannot use repository ext::sh .*remote helper",
        marker="MARKER",
    ),
    Case(
        "build-plain-http",
        ("build", "--repo", f"http://u:{URL_SECRET}@{NOWHERE}/x.git"),
        3,
        r"cannot use repository http://\*\*\*@127\.0\.0\.1:9/x\.git: plain http",
    ),
    # upload
    Case(
        "upload-container-is-a-file",
        ("upload", "--container", "afile", "wh"),
        2,
        r"container afile is a file, not a directory",
    ),
    Case(
        "upload-threads-not-a-number",
        ("upload", "wh"),
        2,
        r"MB_UPLOAD_THREADS must be a number, not 'four'",
        env={"MB_UPLOAD_THREADS": "four"},
    ),
    Case(
        "upload-attempts-zero",
        ("upload", "wh"),
        2,
        r"MB_UPLOAD_ATTEMPTS must be a positive number",
        env={"MB_UPLOAD_ATTEMPTS": "0"},
    ),
    Case(
        "upload-grace-negative",
        ("upload", "wh"),
        2,
        r"MB_ORPHAN_GRACE must be 0 or more seconds",
        env={"MB_ORPHAN_GRACE": "-1"},
    ),
    Case(
        "upload-swift-dotdot",
        ("upload", "--container", "swift://..", "wh"),
        2,
        r"container URL 'swift://\.\.': not a container name",
    ),
    Case(
        "upload-s3-bad-bucket",
        ("upload", "--container", "s3://Bad_Bucket", "wh"),
        2,
        r"not an S3 bucket name",
    ),
    Case(
        "upload-s3-prefix-dotdot",
        ("upload", "--container", "s3://bucket/../x", "wh"),
        2,
        r"its prefix holds an empty, '\.' or '\.\.' part",
    ),
    Case(
        "upload-not-a-wheel-name",
        ("upload", "notawheel.whl"),
        10,
        r"REFUSED: notawheel\.whl: not a valid wheel file name.*nothing was uploaded",
    ),
    Case(
        "upload-three-part-name",
        ("upload", "a-b-c.whl"),
        10,
        r"REFUSED: a-b-c\.whl: not a valid wheel file name",
    ),
    Case(
        "upload-html-name",
        ("upload", 'x-1.0-py3-none-any"><script>.whl'),
        10,
        r"not a valid wheel file name",
    ),
    Case(
        "upload-random-bytes",
        ("upload", "junk-1.0-py3-none-any.whl"),
        10,
        r"junk-1\.0-py3-none-any\.whl: not a readable zip archive",
    ),
    Case(
        "upload-escaping-build-id",
        ("upload", "evil"),
        10,
        r"build id '\.\./\.\./escape': a build id is letters",
    ),
    Case(
        "upload-endpoint-with-credentials",
        ("upload", "--container", "s3://bucket-x", "wh"),
        2,
        r"AWS_ENDPOINT_URL holds credentials",
        env={
            **GITHUB_MAIN,
            "AWS_ACCESS_KEY_ID": "FAKEID",
            "AWS_ENDPOINT_URL": f"http://k:{URL_SECRET}@{NOWHERE}",
        },
    ),
    Case(
        "upload-endpoint-bad-ipv6",
        ("upload", "--container", "s3://bucket-x", "wh"),
        2,
        r"AWS_ENDPOINT_URL is not a valid URL \(Invalid IPv6 URL\)",
        env={**GITHUB_MAIN, "AWS_ACCESS_KEY_ID": "FAKEID", "AWS_ENDPOINT_URL": "http://[::1"},
    ),
    Case(
        "upload-swift-missing-credentials",
        ("upload", "--container", "swift://c", "wh"),
        11,
        r"Swift upload needs credentials in the environment: ST_AUTH, ST_USER not set",
        env=GITHUB_MAIN,
    ),
    Case(
        "upload-release-from-main",
        ("upload", "--channel", "release", "wh"),
        10,
        r"REFUSED: a release upload must come from a push to a release branch",
        env=GITHUB_MAIN,
    ),
    # prune
    *(
        Case(
            f"prune-keep-days-{value}",
            ("prune", "--keep-days", value),
            2,
            r"--keep must be at least 1 and --keep-days 0 to 36500",
        )
        for value in ("nan", "inf", "1e12", "-1")
    ),
    Case("prune-keep-zero", ("prune", "--keep", "0"), 2, r"--keep must be at least 1"),
    Case(
        "prune-missing-directory",
        ("prune", "--container", "nowhere"),
        10,
        r"no container nowhere to prune \(nothing was deleted\)",
    ),
    Case(
        "prune-swift-missing-credentials",
        ("prune", "--container", "swift://c"),
        11,
        r"Swift prune needs credentials in the environment: ST_AUTH, ST_USER not set .*; "
        r"nothing was deleted",
    ),
    Case(
        "prune-release-container",
        ("prune", "--container", "containers/rel"),
        10,
        r"REFUSED: containers/rel is the release container",
    ),
    # release-status
    Case(
        "status-bad-ipv6",
        ("release-status", "1.0", "-u", "http://[::1/x/"),
        2,
        r"container URL 'http://\[::1/x/' is not a valid URL \(Invalid IPv6 URL\)",
    ),
    Case(
        "status-swift-missing-credentials",
        ("release-status", "1.0", "-u", "swift://c"),
        11,
        r"reading a Swift container by its URL .*needs credentials in the environment: "
        r"ST_AUTH, ST_USER not set",
    ),
    Case(
        "status-credentials-in-url",
        ("release-status", "1.0", "-u", f"http://u:{URL_SECRET}@{NOWHERE}/x/"),
        12,
        r"http://\*\*\*@127\.0\.0\.1:9/x/",
    ),
    Case("status-bad-wait", ("release-status", "1.0", "--wait", "soon"), 2, r"bad duration 'soon'"),
    # wheel-uploader
    Case(
        "uploader-bad-ipv6",
        ("wheel-uploader", "-u", "http://[::1/", "-w", "dl", "pkg", "1.0"),
        2,
        r"not a valid URL \(Invalid IPv6 URL\)",
    ),
    Case(
        "uploader-wheelhouse-is-a-file",
        ("wheel-uploader", "-u", "release", "-w", "afile", "pkg", "1.0"),
        2,
        r"-w .*afile is a file, not a directory",
    ),
    Case(
        "uploader-credentials-in-repository-url",
        (
            "wheel-uploader",
            "-u",
            "release",
            "-w",
            "dl",
            "--repository-url",
            f"https://u:{URL_SECRET}@{NOWHERE}/legacy/",
            "pkg",
            "1.0",
        ),
        2,
        r"found no simple index for https://\*\*\*@127\.0\.0\.1:9/legacy/ \(tried "
        r"https://\*\*\*@127\.0\.0\.1:9/simple/\)",
    ),
    Case(
        "uploader-bad-repository-url",
        (
            "wheel-uploader",
            "-u",
            "release",
            "-w",
            "dl",
            "--repository-url",
            "https://[::1/",
            "pkg",
            "1.0",
        ),
        2,
        r"--repository-url 'https://\[::1/' is not a valid URL",
    ),
    Case(
        "uploader-no-jobs",
        ("wheel-uploader", "-u", "release", "-j", "0", "pkg", "1.0"),
        2,
        r"--jobs must be at least 1",
        usage=True,
    ),
    # the other commands
    Case(
        "trigger-build-missing-directory",
        ("trigger-build", "-C", "nowhere"),
        2,
        r"-C nowhere: no such directory",
    ),
    Case(
        "trigger-build-option-as-remote",
        ("trigger-build", "--remote=--receive-pack=x"),
        2,
        r"--remote '--receive-pack=x': a remote name, not an option",
    ),
    Case(
        "set-build-commit-option-as-ref",
        ("set-build-commit", "--root", ".", "--", "--upload-pack=touch MARKER"),
        2,
        r"'--upload-pack=touch MARKER' is not a commit these files can name",
        marker="MARKER",
    ),
    Case(
        "ci-unknown-job",
        ("ci", "--job", "cp99-nothing"),
        2,
        r"no job 'cp99-nothing' in the matrix of settings\.toml",
    ),
    Case(
        "ci-bad-builder", ("ci", "--builder", "docker"), 2, r"invalid choice: 'docker'", usage=True
    ),
    Case(
        "sdist-option-as-ref",
        ("sdist", "--commit=--upload-pack=touch MARKER"),
        3,
        r"ref '--upload-pack=touch MARKER' is not a branch, tag or commit name: it begins with '-'",
        marker="MARKER",
    ),
    Case(
        "image-python-debian-lacks",
        ("image", "build", "--python", "3.12", "--container-engine", "podman"),
        2,
        r"CPython 3\.12 cannot go into the local image: Debian has no python3\.12 source package",
    ),
    Case(
        "init-into-a-non-empty-directory",
        ("init", ".", "--name", "foo", "--repo", "https://example.org/foo.git", "--commit", "v1"),
        2,
        r"exists and is not an empty directory",
    ),
    Case(
        "init-option-as-commit",
        ("init", "new", "--name", "foo", "--repo", "r", "--commit=--upload-pack=touch MARKER"),
        2,
        r"'--upload-pack=touch MARKER' is not a commit these files can name",
        marker="MARKER",
    ),
    Case(
        "init-without-a-project",
        ("init", "new"),
        2,
        r"--name and either --repo and --commit or --sdist NAME==VERSION are needed",
        usage=True,
    ),
    Case(
        "check-config-missing-settings",
        ("check-config", "--settings", "nowhere.toml"),
        2,
        r"settings file nowhere\.toml does not exist",
    ),
]


def _prepare(tmp: Path, case: Case) -> None:
    repo = make_repo("hello-c", tmp / "repo")
    text = SETTINGS.format(repo=repo)
    (tmp / "settings.toml").write_text(case.settings(text) if case.settings else text)
    (tmp / "config.sh").write_text("pre_build() { :; }\nrun_tests() { :; }\n")
    (tmp / "afile").write_text("a file\n")
    make_build(tmp / "wh")
    make_build(tmp / "release")
    wheel = make_wheel(tmp / "src", "x", "1.0", "py3-none-any")
    for name in ("notawheel.whl", "a-b-c.whl", 'x-1.0-py3-none-any"><script>.whl'):
        (tmp / name).write_bytes(wheel.read_bytes())
    (tmp / "junk-1.0-py3-none-any.whl").write_bytes(os.urandom(4096))
    record = make_build(tmp / "evil")
    path = tmp / "evil" / f"{record['build_id']}.json"
    path.write_text(path.read_text().replace(record["build_id"] + '"', '../../escape"'))


def _files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and ".git" not in p.parts]


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(tmp_path: Path, case: Case) -> None:
    _prepare(tmp_path, case)
    before = {p: p.stat().st_mtime_ns for p in _files(tmp_path)}
    env = {
        **{k: v for k, v in engine_environ().items() if not k.startswith(("ST_", "OS_", "AWS_"))},
        **SECRETS,
        "PIP_INDEX_URL": f"https://reader:{URL_SECRET}@{NOWHERE}/simple",
        **case.env,
    }
    command, *args = case.argv
    if command in ("build", "ci", "sdist", "upload", "prune", "release-status", "wheel-uploader"):
        args = [*args, "--settings", str(tmp_path / "settings.toml")]
        if command == "build":
            args += ["--python", "3.11", "--work-dir", "work"]
    done = subprocess.run(
        [sys.executable, "-m", "multibuild", command, *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    output = done.stdout + done.stderr
    assert done.returncode == case.code, output
    assert "Traceback" not in output
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert lines, output
    assert re.search(r": error: ", lines[-1]), output
    assert re.search(case.message, lines[-1]), lines[-1]
    if not case.usage:  # one line, nothing else on stderr
        assert lines == [lines[-1]] and lines[-1].startswith("multibuild: error: "), output
    # Nothing uploaded, nothing ran that should not.
    containers = tmp_path / "containers"
    assert not containers.exists() or not _files(containers), _files(containers)
    if case.marker:
        assert not list(tmp_path.rglob(case.marker))
    # No secret in any output or in any file the run left (new or changed).
    for secret in ALL_SECRETS:
        assert secret not in output, secret
    for path in _files(tmp_path):
        if before.get(path) != path.stat().st_mtime_ns:
            data = path.read_bytes()
            assert not any(s.encode() in data for s in ALL_SECRETS), path


def test_every_command_is_in_the_table() -> None:
    from multibuild.commands import COMMANDS

    assert {c.argv[0] for c in CASES} == set(COMMANDS)
    assert REPO_ROOT.is_dir()


@pytest.mark.skipif(sys.platform == "darwin", reason="the guard is for every other OS")
def test_install_gfortran_macos_helps_and_refuses_other_oses(tmp_path: Path) -> None:
    """--help answers; elsewhere than macOS it refuses before fetching anything (it would put
    a macOS toolchain over /usr/local/bin/gfortran). No network here: a stub curl records
    any call."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("curl", "sudo", "tar"):
        (bin_dir / tool).write_text(f'#!/bin/sh\necho {tool} >> "{tmp_path}/called"\nexit 1\n')
        (bin_dir / tool).chmod(0o755)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}"}
    script = str(REPO_ROOT / "scripts" / "install-gfortran-macos")
    shown = subprocess.run(["bash", script, "--help"], capture_output=True, text=True, env=env,
                           check=False)  # fmt: skip
    assert shown.returncode == 0 and "macOS only" in shown.stdout
    refused = subprocess.run(["bash", script], capture_output=True, text=True, env=env,
                             check=False)  # fmt: skip
    assert refused.returncode == 2 and "this machine runs Linux" in refused.stderr
    assert not (tmp_path / "called").exists()


def test_a_clone_without_the_engines_dependencies_fails_in_the_first_second(
    tmp_path: Path,
) -> None:
    """The engine run by a Python without its dependencies (a clone, not installed): exit 4
    at once with the way in, not a traceback or a failed repair after the build."""
    import venv

    from multibuild.errors import SystemDependencyError
    from multibuild.util.system import check_engine_modules

    venv.create(tmp_path / "bare", with_pip=False)
    done = subprocess.run(
        [str(tmp_path / "bare" / "bin" / "python"), "-m", "multibuild", "build", "--repo",
         str(tmp_path / "nowhere"), "--commit", "v1", "--python", "3.11"],
        cwd=tmp_path, env={**engine_environ(), "PYTHONPATH": str(REPO_ROOT)},
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert done.returncode == 4, done.stderr
    assert "the engine's dependencies are not installed" in done.stderr
    assert "pip install -e ." in done.stderr and "Traceback" not in done.stderr
    assert not (tmp_path / ".multibuild").exists()  # nothing was fetched or built
    with pytest.raises(SystemDependencyError, match=r": no_such_module_mb; install the engine"):
        check_engine_modules(["packaging", "no_such_module_mb"])
