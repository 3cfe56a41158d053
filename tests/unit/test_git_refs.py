"""What may reach git: refs by git's ref-name rules (never an option), remotes by transport;
and settings.toml refusing both, and loose branch patterns, with the file named."""

from __future__ import annotations

from pathlib import Path

import pytest

from multibuild.ci import configs
from multibuild.errors import ConfigurationError
from multibuild.settings import branch_pattern_problem, load_settings
from multibuild.util.git import git_environ, ref_problem, remote_problem
from tests.helpers import BAD_REFS, GOOD_REFS


@pytest.mark.parametrize("ref", GOOD_REFS)
def test_good_refs(ref: str) -> None:
    assert ref_problem(ref) is None


@pytest.mark.parametrize("ref", BAD_REFS)
def test_bad_refs(ref: str) -> None:
    assert ref_problem(ref) is not None


@pytest.mark.parametrize("ref", BAD_REFS)
def test_the_ci_configs_refuse_what_git_refuses(ref: str) -> None:
    with pytest.raises(ConfigurationError, match="is not a commit these files can name"):
        configs.check_ref(ref)


def test_the_ci_configs_take_only_yaml_safe_refs() -> None:
    """git takes `v1#x` and `v1$x`; a CI file would read a comment or a variable."""
    assert configs.check_ref("v1.0/rc+1") == "v1.0/rc+1"
    for ref in ("v1#x", "v1$x"):
        assert ref_problem(ref) is None
        with pytest.raises(ConfigurationError, match="letters, digits and"):
            configs.check_ref(ref)


@pytest.mark.parametrize(
    ("url", "ok"),
    [
        ("/srv/mirror/scipy", True),
        ("relative/path", True),
        ("file:///srv/mirror/scipy", True),
        ("https://github.example/scipy/scipy.git", True),
        ("ssh://git@github.example/scipy/scipy.git", True),
        ("git://github.example/scipy/scipy.git", True),
        ("git+ssh://git@github.example/scipy.git", True),
        ("ext::sh -c touch% /tmp/x", False),
        ("fd::17", False),
        ("https::example", False),
        ("--upload-pack=touch /tmp/x", False),
        ("-q", False),
        ("http://github.example/scipy/scipy.git", False),
        ("ftp://example/x.git", False),
        ("https://[::1/x.git", False),
    ],
)
def test_remotes(url: str, ok: bool) -> None:
    assert (remote_problem(url) is None) is ok


def test_git_environment_allows_only_safe_transports() -> None:
    assert git_environ({}, allow_file=True)["GIT_ALLOW_PROTOCOL"] == "file:https:ssh:git"
    # A remote repository's submodules may not read local files.
    assert git_environ({}, allow_file=False)["GIT_ALLOW_PROTOCOL"] == "https:ssh:git"


def settings(tmp_path: Path, project: str = "", upload: str = "") -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(
        f'[project]\nname = "x"\nrepo = "x"\nBUILD_COMMIT = "v1"\n{project}\n[upload]\n{upload}\n'
    )
    return path


def test_settings_refuse_option_refs_and_loose_branch_patterns(tmp_path: Path) -> None:
    path = settings(tmp_path, project='DAILY_COMMIT = "--upload-pack=touch /tmp/x"')
    with pytest.raises(ConfigurationError, match=r"settings.toml: \[project\] DAILY_COMMIT"):
        load_settings(path)
    # The old globs: '.' matches any character, so a glob reads as a loose pattern.
    path = settings(tmp_path, upload='release_branches = ["v[0-9]*.[0-9]*.[0-9]*"]')
    with pytest.raises(ConfigurationError, match=r"release_branches .*unescaped '\.'"):
        load_settings(path)
    path = settings(tmp_path, upload='release_branches = ["v(1"]')
    with pytest.raises(ConfigurationError, match="not a regular expression"):
        load_settings(path)
    assert branch_pattern_problem(r"v\d+\.\d+\.\d+") is None
    assert branch_pattern_problem(r"release/.*") is None
    assert branch_pattern_problem(r"v[0-9.]+") is None
