"""What the tests share (no test module imports another): fixture projects as real local git
repos, copies of this repository's CI files, the engine run as users run it, and the small
matrix of wheels the release tests use."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from multibuild.ci import configs
from multibuild.publish.containers.base import Container
from multibuild.publish.index import INDEX
from multibuild.publish.retention import prune
from multibuild.publish.upload import upload_to_container
from multibuild.publish.wheelhouse import collect
from tests.servers.wheelhouse import HASH, make_build

FIXTURES = Path(__file__).parent / "fixtures"
REPO_ROOT = Path(__file__).parent.parent


def git(*args: str, cwd: Path) -> str:
    env = dict(
        os.environ,
        GIT_AUTHOR_NAME="t",
        GIT_AUTHOR_EMAIL="t@example.org",
        GIT_COMMITTER_NAME="t",
        GIT_COMMITTER_EMAIL="t@example.org",
    )
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def make_repo(fixture: str, dest: Path, tag: str = "v1.0") -> Path:
    """Copy tests/fixtures/<fixture>/project into a fresh git repo with one tagged commit."""
    shutil.copytree(FIXTURES / fixture / "project", dest)
    git("init", "-q", "-b", "main", cwd=dest)
    git("add", "-A", cwd=dest)
    git("commit", "-q", "-m", "fixture", cwd=dest)
    git("tag", tag, cwd=dest)
    return dest


def config_copy(fixture: str, dest_dir: Path, edit: dict[str, str] | None = None) -> Path:
    """A copy of the fixture's config.sh beside a link to the tarballs, optionally edited."""
    dest_dir.mkdir(parents=True, exist_ok=True)
    text = (FIXTURES / fixture / "config.sh").read_text()
    for old, new in (edit or {}).items():
        assert old in text, old
        text = text.replace(old, new)
    config = dest_dir / "config.sh"
    config.write_text(text)
    tarballs = dest_dir.parent / "tarballs"
    if not tarballs.exists():
        tarballs.symlink_to(FIXTURES / "tarballs")
    return config


def copy_wheels_repo(root: Path) -> Path:
    """settings.toml, the generated files and every path they name, copied to `root`."""
    names = set(configs.ALL_FILES) | set(configs.GENERATED)
    for path in configs.GENERATED:
        names |= configs.referenced_paths((REPO_ROOT / path).read_text())
    for name in sorted(names):
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        if (REPO_ROOT / name).is_dir():
            shutil.copytree(REPO_ROOT / name, root / name, dirs_exist_ok=True)
        else:
            shutil.copyfile(REPO_ROOT / name, root / name)
    return root


_COMMIT_LINE = re.compile(
    r'^\s*(?:-\s*)?(?P<key>BUILD_COMMIT|DAILY_COMMIT)\s*[:=]\s*"?(?P<value>[^"\s]*)"?\s*$'
)


def shown_commits(text: str) -> dict[str, str]:
    """BUILD_COMMIT and DAILY_COMMIT as a file shows them to a reader (one line each)."""
    found: dict[str, list[str]] = {"BUILD_COMMIT": [], "DAILY_COMMIT": []}
    for line in text.splitlines():
        match = _COMMIT_LINE.match(line)
        if match:
            found[match["key"]].append(match["value"])
    assert all(len(values) == 1 for values in found.values()), found
    return {key: values[0] for key, values in found.items()}


def engine_environ(**extra: str) -> dict[str, str]:
    """The environment the engine runs with in tests: no CI provider's variables, no MB_*
    knobs from outside, and this tree's engine first on PYTHONPATH."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TRAVIS", "APPVEYOR", "MB_")) and k != "CI"
    }
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO_ROOT), *filter(None, [os.environ.get("PYTHONPATH")])]
    )
    env.update(extra)
    return env


@dataclass
class Run:
    returncode: int
    output: str
    wheelhouse: Path
    work_dir: Path

    def records(self) -> list[dict[str, Any]]:
        return [json.loads(p.read_text()) for p in sorted(self.wheelhouse.glob("*.json"))]

    def record(self) -> dict[str, Any]:
        records = self.records()
        assert records, f"no record in {self.wheelhouse}\n{self.output}"
        return records[-1]

    def wheels(self) -> list[Path]:
        return sorted(self.wheelhouse.glob("*.whl"))


def compiled(run: Run) -> list[str]:
    """The objects a build compiled (ninja's `Compiling ... object NAME` lines in its log)."""
    log = (run.wheelhouse / f"{run.record()['build_id']}.log").read_text()
    return [line.split()[-1] for line in log.splitlines() if "] Compiling " in line]


def build_args(
    repo: Path | str,
    config: Path,
    *extra: str,
    commit: str = "v1.0",
    pythons: tuple[str, ...] = ("3.11",),
    test_requires: str = "",
) -> list[str]:
    """`build` arguments for a fixture project."""
    args = ["build", "--repo", str(repo), "--commit", commit, "--config", str(config)]
    for version in pythons:
        args += ["--python", version]
    return [*args, "--test-requires", test_requires, *extra]


def run_multibuild(
    tmp: Path,
    *args: str,
    env: dict[str, str] | None = None,
    wheelhouse: Path | None = None,
    work_dir: Path | None = None,
) -> Run:
    """`python -m multibuild build ...` in a directory with no settings.toml above it."""
    wheelhouse = wheelhouse or tmp / "wheelhouse"
    work_dir = work_dir or tmp / "work"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "multibuild",
            *args,
            "--wheelhouse",
            str(wheelhouse),
            "--work-dir",
            str(work_dir),
        ],
        cwd=tmp,
        env=engine_environ(**(env or {})),
        capture_output=True,
        text=True,
        check=False,
        timeout=900,
    )
    return Run(done.returncode, done.stdout + done.stderr, wheelhouse, work_dir)


# -- refs git accepts, and refs that must never reach git -----------------------------------

GOOD_REFS = ["main", "v1.17.1", "maintenance/1.17.x", "HEAD", "0123abc", "a" * 40, "release-1_2"]
BAD_REFS = [
    "--upload-pack=touch /tmp/x",
    "-b",
    "",
    "a b",
    "a..b",
    "a~1",
    "a^{commit}",
    "a:b",
    "a?",
    "a*",
    "a[1",
    "a\\b",
    "@",
    "a@{1}",
    "/a",
    "a/",
    "a//b",
    "a.",
    ".a",
    "a/.b",
    "a.lock",
    "a/b.lock/c",
    "a\nb",
    "a\x7f",
]


# -- the release tools' matrix (a small one, with a wheel per cell) -------------------------

MATRIX = (("linux", "x86_64"), ("macos", "x86_64"), ("macos", "arm64"), ("windows", "AMD64"))
PYTHONS = ("3.11", "3.12")
RELEASE_SETTINGS = """\
[project]
name = "scipy"
repo = "https://example.invalid/scipy.git"
BUILD_COMMIT = "v1.17.1"

[matrix]
python = ["3.11", "3.12"]
linux = ["x86_64"]
macos = ["x86_64", "arm64"]
windows = ["AMD64"]

[upload]
release = "{release}"
"""


def release_settings_file(tmp_path: Path, release: str = "containers/release") -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(RELEASE_SETTINGS.format(release=release), encoding="utf-8")
    return path


def fill_release(
    container: Path, version: str = "1.17.1", skip: tuple[str, str] | None = None
) -> None:
    for platform, plat in MATRIX:
        if (platform, plat) == skip:
            continue
        make_build(container, name="scipy", version=version, platform=platform, plat=plat,
                   pythons=PYTHONS)  # fmt: skip


def uploader(
    tmp_path: Path, url: str, *args: str, release: tuple[str, str] = ("scipy", "1.17.1")
) -> int:
    """wheel-uploader, in this process, against the small matrix."""
    from multibuild.cli import main

    settings = release_settings_file(tmp_path)
    argv = ["-u", url, "-w", str(tmp_path / "wh"), "--settings", str(settings), *args]
    return main([*argv, *release], tool="wheel-uploader")


def cibuildwheel_build_options(
    tmp_path: Path, config_file: Path, platform: str, identifier: str, environ: dict[str, str]
) -> Any:
    """cibuildwheel's own BuildOptions for one build identifier, from `config_file` and the
    job's `environ` (compute_options, as cibuildwheel resolves them on CI), for a probe package
    of no requires-python."""
    from cibuildwheel.options import CommandLineArguments, compute_options

    package = tmp_path / "probe"
    package.mkdir(exist_ok=True)
    (package / "pyproject.toml").write_text('[project]\nname = "probe"\nversion = "0"\n')
    arguments = CommandLineArguments.defaults()
    arguments.platform = platform
    arguments.config_file = str(config_file)
    arguments.package_dir = package
    options = compute_options(platform, arguments, environ)  # type: ignore[arg-type]
    return options.build_options(identifier)


# -- nightlies in a container, and pruning them ------------------------------------------

NOW = datetime(2026, 11, 24, tzinfo=timezone.utc)


def upload_nightly(
    container: Container, house: Path, *, version: str, started: datetime, payload: str = ""
) -> dict[str, Any]:
    """A nightly build of two CPythons, made in `house` and uploaded as a cron job does."""
    made = make_build(
        house, version=version, started=started, pythons=("3.11", "3.12"), payload=payload
    )
    upload_to_container(
        container,
        collect([house]),
        channel="pre-release",
        ci={"event": "cron", "nightly": True},
        title="pkg pre-release",
        echo=lambda _: None,
    )
    return made


def nightlies(tmp: Path, container: Container, count: int) -> list[dict[str, Any]]:
    return [
        upload_nightly(
            container,
            tmp / f"night{night}",
            version=f"1.1.dev{night}",
            started=NOW - timedelta(days=40 - night),
        )
        for night in range(count)
    ]


def prune_and_check(tmp: Path, container: Container) -> None:
    made = nightlies(tmp, container, 7)
    lines: list[str] = []
    plan = prune(
        container, keep=5, keep_days=30, title="t", dry_run=True, now=NOW, echo=lines.append
    )
    assert plan.delete_builds == {made[0]["build_id"], made[1]["build_id"]}
    assert any("would delete pkg-1.1.dev0-cp311" in line for line in lines)
    assert len([o for o in container.list() if o.name.endswith(".whl")]) == 14  # dry run
    prune(container, keep=5, keep_days=30, title="t", now=NOW, echo=lines.append)
    names = {o.name for o in container.list()}
    wheels = {n for n in names if n.endswith(".whl")}
    assert len(wheels) == 10
    assert not any("dev0" in n or "dev1" in n for n in names if not n.endswith(".html"))
    index = container.get_bytes(INDEX).decode()
    assert set(re.findall(r'href="([^"#]+\.whl)#', index)) == wheels
    history = container.get_bytes("history.html").decode()
    assert made[0]["build_id"] not in history
    assert made[6]["build_id"] in history


# -- CI providers' environments (a CI provider cannot run here: these are what it sets) ---


def travis(**extra: str) -> dict[str, str]:
    env = {
        "TRAVIS": "true",
        "CI": "true",
        "TRAVIS_EVENT_TYPE": "push",
        "TRAVIS_PULL_REQUEST": "false",
        "TRAVIS_BRANCH": "main",
        "TRAVIS_REPO_SLUG": "scipy/scipy-wheels",
        "TRAVIS_COMMIT": HASH,
    }
    env.update(extra)
    return env


def appveyor(**extra: str) -> dict[str, str]:
    env = {
        "APPVEYOR": "True",
        "CI": "True",
        "APPVEYOR_REPO_BRANCH": "main",
        "APPVEYOR_REPO_NAME": "scipy/scipy-wheels",
        "APPVEYOR_REPO_COMMIT": HASH,
    }
    env.update(extra)
    return env


def github(**extra: str) -> dict[str, str]:
    env = {
        "GITHUB_ACTIONS": "true",
        "CI": "true",
        "GITHUB_EVENT_NAME": "push",
        "GITHUB_REF": "refs/heads/main",
        "GITHUB_REF_NAME": "main",
        "GITHUB_REF_TYPE": "branch",
        "GITHUB_REPOSITORY": "scipy/scipy-wheels",
        "GITHUB_SHA": HASH,
        "GITHUB_SERVER_URL": "https://github.example",
        "GITHUB_RUN_ID": "42",
    }
    env.update(extra)
    return env


FORK = "someone/scipy-wheels"


# One environment per provider and event, as each provider sets it.
CI_EVENTS = {
    "travis": {
        "push": travis(),
        "cron": travis(TRAVIS_EVENT_TYPE="cron"),
        "release": travis(TRAVIS_BRANCH="v1.17.1"),
        "pull_request": travis(TRAVIS_EVENT_TYPE="pull_request", TRAVIS_PULL_REQUEST="12"),
        "fork_pull_request": travis(
            TRAVIS_EVENT_TYPE="pull_request",
            TRAVIS_PULL_REQUEST="13",
            TRAVIS_PULL_REQUEST_SLUG=FORK,
        ),
        "fork_push": travis(TRAVIS_REPO_SLUG=FORK),
    },
    "appveyor": {
        "push": appveyor(),
        "cron": appveyor(APPVEYOR_SCHEDULED_BUILD="True"),
        "release": appveyor(APPVEYOR_REPO_BRANCH="v1.17.1"),
        "pull_request": appveyor(APPVEYOR_PULL_REQUEST_NUMBER="12"),
        "fork_pull_request": appveyor(
            APPVEYOR_PULL_REQUEST_NUMBER="13", APPVEYOR_PULL_REQUEST_HEAD_REPO_NAME=FORK
        ),
        "fork_push": appveyor(APPVEYOR_REPO_NAME=FORK),
    },
    "github": {
        "push": github(),
        "cron": github(GITHUB_EVENT_NAME="schedule"),
        "release": github(GITHUB_REF="refs/heads/v1.17.1", GITHUB_REF_NAME="v1.17.1"),
        "pull_request": github(
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_REF="refs/pull/12/merge",
            GITHUB_REF_NAME="12/merge",
            GITHUB_BASE_REF="main",
        ),
        "fork_pull_request": github(
            GITHUB_EVENT_NAME="pull_request",
            GITHUB_REF="refs/pull/13/merge",
            GITHUB_REF_NAME="13/merge",
            GITHUB_BASE_REF="main",
            GITHUB_HEAD_REF="someone:feature",
        ),
        "fork_push": github(GITHUB_REPOSITORY=FORK),
    },
}


# -- the upload command ------------------------------------------------------------------------


# A push to main on GitHub, in the repository the upload tests' settings name.
GITHUB_MAIN = {
    "GITHUB_ACTIONS": "true",
    "GITHUB_EVENT_NAME": "push",
    "GITHUB_REF": "refs/heads/main",
    "GITHUB_REF_NAME": "main",
    "GITHUB_REPOSITORY": "org/wheels",
    "GITHUB_SHA": HASH,
}
# A segment size small enough for test wheels to go to Swift in several segments.
SMALL_SEGMENTS = 256 << 10


def segmented_swift(tmp_path: Path, env: dict[str, str], url: str) -> Container:
    """The Swift container at `url`, made, with uploads in SMALL_SEGMENTS."""
    from multibuild.options import UploadTuning
    from multibuild.publish.containers import open_container

    container = open_container(
        url, base_dir=tmp_path, environ=env, tuning=UploadTuning(segment_size=SMALL_SEGMENTS)
    )
    container.ensure()
    return container


def upload_settings(tmp: Path, pre: str = "containers/pre", rel: str = "containers/rel") -> Path:
    """A settings.toml naming only the project and the two containers."""
    path = tmp / "settings.toml"
    path.write_text(
        f'[project]\nname = "pkg"\nrepo = "https://example.org/x.git"\nBUILD_COMMIT = "v1.0"\n'
        f'[upload]\npre_release = "{pre}"\nrelease = "{rel}"\n'
    )
    return path


def run_upload(
    tmp: Path,
    *args: str,
    env: dict[str, str] | None = None,
    settings: Path | None = None,
    timeout: float = 300,
    local_on_ci: bool = False,
) -> subprocess.CompletedProcess[str]:
    """`python -m multibuild upload` with only the CI and credential variables of `env`;
    `local_on_ci`: a GitHub run accepts a local container (MB_LOCAL_CONTAINER_ON_CI)."""
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("GITHUB_", "TRAVIS", "APPVEYOR", "MB_", "ST_", "OS_", "AWS_"))
        and k != "CI"
    }
    if local_on_ci and any(name.startswith("GITHUB_") for name in env or {}):
        clean["MB_LOCAL_CONTAINER_ON_CI"] = "1"
    clean.update(env or {})
    clean["PYTHONPATH"] = str(REPO_ROOT)
    command = [sys.executable, "-m", "multibuild", "upload"]
    command += ["--settings", str(settings or upload_settings(tmp)), *args]
    return subprocess.run(
        command, cwd=tmp, env=clean, capture_output=True, text=True, timeout=timeout, check=False
    )


def index_names(page: str) -> dict[str, str]:
    """wheel name -> sha256, from index.html's links."""
    return dict(re.findall(r'<td class="colname"><a href="([^"#]+)#sha256=([0-9a-f]{64})"', page))
