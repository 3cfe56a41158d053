"""Nothing runs that should not: a ref or a repository that git would read as an option or a
command-running transport is refused before git sees it, and git itself is told to allow
only file, https, ssh and git (also for submodules), whatever git's configuration says."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from multibuild.errors import ConfigurationError, SourceError
from tests.helpers import BAD_REFS, GOOD_REFS, build_args, git, run_multibuild

# A git configuration (from the environment, as CI runners and users can set it) that would
# allow the ext transport: the engine must refuse it anyway.
EXT_ALLOWED = {
    "GIT_CONFIG_COUNT": "1",
    "GIT_CONFIG_KEY_0": "protocol.ext.allow",
    "GIT_CONFIG_VALUE_0": "always",
}


def test_refs_as_git_itself_checks_them(tmp_path: Path) -> None:
    """ref_problem agrees with `git check-ref-format --allow-onelevel` (which cannot even be
    asked about a name that begins with `-`: those are refused before)."""
    from multibuild.util.git import ref_problem

    for ref in [*GOOD_REFS, *BAD_REFS]:
        if ref.startswith("-") or not ref:
            assert ref_problem(ref) is not None
            continue
        done = subprocess.run(
            ["git", "check-ref-format", "--allow-onelevel", ref], capture_output=True, check=False
        )
        assert (done.returncode == 0) == (ref_problem(ref) is None), ref


def test_option_injection_through_the_commit_runs_nothing(
    tmp_path: Path, hello_repo: Path, hello_config: Path
) -> None:
    marker = tmp_path / "INJECTED"
    evil = f"--upload-pack=touch {marker};"
    run = run_multibuild(tmp_path, *build_args(hello_repo, hello_config, commit=evil))
    assert not marker.exists()  # git's --upload-pack did not run
    assert run.returncode == SourceError.return_code, run.output
    assert "begins with '-'" in run.output
    assert "Traceback" not in run.output
    # The same from settings.toml's BUILD_COMMIT: refused when the file is read.
    settings = tmp_path / "settings.toml"
    settings.write_text(
        f'[project]\nname = "hello"\nrepo = "{hello_repo}"\nBUILD_COMMIT = "{evil}"\n'
        f'config = "{hello_config}"\n[matrix]\npython = ["3.11"]\n'
    )
    run = run_multibuild(tmp_path, "build", "--settings", str(settings))
    assert run.returncode == ConfigurationError.return_code, run.output
    assert f"{settings}: [project] BUILD_COMMIT" in run.output
    assert not marker.exists()


def test_command_transports_run_nothing(
    tmp_path: Path, hello_repo: Path, hello_config: Path
) -> None:
    marker = tmp_path / "EXT-RAN"
    for repo in (f"ext::sh -c touch% {marker}", f"--upload-pack=touch {marker}"):
        run = run_multibuild(
            tmp_path, *build_args(repo, hello_config, commit="v1.0"), env=EXT_ALLOWED
        )
        assert not marker.exists()
        assert run.returncode == SourceError.return_code, run.output
        assert "cannot use repository" in run.output
    # A submodule whose URL is a command: the checkout of a local clone refuses it too.
    git(
        "-c",
        "protocol.file.allow=always",
        "submodule",
        "add",
        "-q",
        str(hello_repo),
        "sub",
        cwd=hello_repo,
    )
    git("config", "-f", ".gitmodules", "submodule.sub.url", f"ext::sh -c touch% {marker}",
        cwd=hello_repo)  # fmt: skip
    git("commit", "-qam", "evil submodule", cwd=hello_repo)
    run = run_multibuild(
        tmp_path, *build_args(hello_repo, hello_config, commit="main"), env=EXT_ALLOWED
    )
    assert not marker.exists()
    assert run.returncode == SourceError.return_code, run.output
    assert "submodule update" in run.output


@pytest.mark.parametrize("ref", ["v1.0", "main"])
def test_ordinary_refs_still_build_their_source(
    tmp_path: Path, hello_repo: Path, hello_config: Path, ref: str
) -> None:
    """`--` and --end-of-options change nothing for real refs (the source step is enough)."""
    from multibuild.engine.source import prepare_git
    from multibuild.log import Logger
    from multibuild.options import GitSource

    prepared = prepare_git(
        GitSource(url=str(hello_repo), ref=ref), tmp_path / "src", Logger(), dict(os.environ)
    )
    assert prepared.record["commit"] == git("rev-parse", "HEAD", cwd=hello_repo)
