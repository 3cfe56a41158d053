"""The CI environment -> the run's one decision (channel, container, commit), for Travis,
Appveyor, GitHub Actions and local runs. (The CI provider's environment is a dict made by the
test: no provider can run here.)"""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from multibuild.ci import providers
from multibuild.ci.channels import Decision, ReleaseRefused, build_target, decide
from multibuild.ci.configs.github import literal_start, release_ref_condition
from multibuild.ci.providers import CIInfo, detect
from multibuild.errors import ConfigurationError
from multibuild.settings import CISettings, ProjectSettings, Settings, UploadSettings
from tests.helpers import appveyor, github, travis
from tests.servers.wheelhouse import HASH

# A remote pre-release container: the rule for local runs (the local directory) stays out of
# the branch tests.
UPLOAD = UploadSettings(pre_release="swift://pre", release="swift://release")
PROJECT = ProjectSettings(
    name="scipy",
    repo="https://example.org/scipy.git",
    build_commit="v1.17.1",
    daily_commit="main",
    config=Path("config.sh"),
)


def settings(upload: UploadSettings = UPLOAD) -> Settings:
    return Settings(path=Path("/repo/settings.toml"), project=PROJECT, upload=upload)


def no_git() -> str | None:
    raise AssertionError("a CI run must not ask local git")


def channel_of(env: dict[str, str], upload: UploadSettings = UPLOAD) -> Decision:
    return decide(detect(env, git_branch=no_git), settings(upload))


@pytest.mark.parametrize(
    ("env", "channel", "nightly"),
    [
        # development branches
        (travis(), "pre-release", False),
        (travis(TRAVIS_BRANCH="master"), "pre-release", False),
        (appveyor(), "pre-release", False),
        (appveyor(APPVEYOR_REPO_BRANCH="master"), "pre-release", False),
        (github(), "pre-release", False),
        (github(GITHUB_REF="refs/heads/master", GITHUB_REF_NAME="master"), "pre-release", False),
        # manual runs on the development branch
        (travis(TRAVIS_EVENT_TYPE="api"), "pre-release", False),
        (appveyor(APPVEYOR_FORCED_BUILD="True"), "pre-release", False),
        (github(GITHUB_EVENT_NAME="workflow_dispatch"), "pre-release", False),
        # manual runs elsewhere: by their branch, as docs/upload.md says
        (travis(TRAVIS_EVENT_TYPE="api", TRAVIS_BRANCH="v1.17.1"), "release", False),
        (
            github(
                GITHUB_EVENT_NAME="workflow_dispatch",
                GITHUB_REF="refs/heads/maintenance/1.17.x",
                GITHUB_REF_NAME="maintenance/1.17.x",
            ),
            "release",
            False,
        ),
        (appveyor(APPVEYOR_FORCED_BUILD="True", APPVEYOR_REPO_BRANCH="feature-x"), None, False),
        # cron: pre-release and nightly, whatever the branch
        (travis(TRAVIS_EVENT_TYPE="cron"), "pre-release", True),
        (travis(TRAVIS_EVENT_TYPE="cron", TRAVIS_BRANCH="v1.17.1"), "pre-release", True),
        (appveyor(APPVEYOR_SCHEDULED_BUILD="True"), "pre-release", True),
        (github(GITHUB_EVENT_NAME="schedule"), "pre-release", True),
        # release branches
        (travis(TRAVIS_BRANCH="v1.17.1"), "release", False),
        (travis(TRAVIS_BRANCH="maintenance/1.17.x"), "release", False),
        (appveyor(APPVEYOR_REPO_BRANCH="v1.17.1"), "release", False),
        (
            github(
                GITHUB_REF="refs/heads/maintenance/1.17.x", GITHUB_REF_NAME="maintenance/1.17.x"
            ),
            "release",
            False,
        ),
        (github(GITHUB_REF="refs/heads/v2.0.0", GITHUB_REF_NAME="v2.0.0"), "release", False),
        # pull requests: never (even when they target a release branch)
        (travis(TRAVIS_EVENT_TYPE="pull_request", TRAVIS_PULL_REQUEST="12"), None, False),
        (travis(TRAVIS_PULL_REQUEST="7", TRAVIS_BRANCH="v1.17.1"), None, False),
        (appveyor(APPVEYOR_PULL_REQUEST_NUMBER="3"), None, False),
        (appveyor(APPVEYOR_PULL_REQUEST_NUMBER="3", APPVEYOR_SCHEDULED_BUILD="True"), None, False),
        (
            github(
                GITHUB_EVENT_NAME="pull_request",
                GITHUB_REF="refs/pull/5/merge",
                GITHUB_REF_NAME="5/merge",
                GITHUB_BASE_REF="main",
            ),
            None,
            False,
        ),
        (
            github(GITHUB_EVENT_NAME="pull_request_target", GITHUB_REF="refs/heads/main"),
            None,
            False,
        ),
        # other branches, tags, odd events, no branch
        (travis(TRAVIS_BRANCH="feature-x"), None, False),
        (appveyor(APPVEYOR_REPO_BRANCH="v1.17"), None, False),
        (
            github(GITHUB_REF="refs/heads/v1.17.1rc1", GITHUB_REF_NAME="v1.17.1rc1"),
            "release",
            False,
        ),
        # release-branch patterns match whole names: a test branch is no release branch
        (github(GITHUB_REF="refs/heads/v1.17.1rc", GITHUB_REF_NAME="v1.17.1rc"), None, False),
        (travis(TRAVIS_BRANCH="v1.2.3-evil"), None, False),
        (travis(TRAVIS_BRANCH="v1.2.3/feature"), None, False),
        (appveyor(APPVEYOR_REPO_BRANCH="v2-experimental.0.0"), None, False),
        (travis(TRAVIS_BRANCH="maintenance/1.17.x-old"), None, False),
        (travis(TRAVIS_BRANCH="maintenance/1.17.x/y"), None, False),
        (travis(TRAVIS_BRANCH="v1-2-3"), None, False),
        (travis(TRAVIS_TAG="v1.17.1", TRAVIS_BRANCH="v1.17.1"), None, False),
        (appveyor(APPVEYOR_REPO_TAG="true", APPVEYOR_REPO_TAG_NAME="v1.17.1"), None, False),
        (github(GITHUB_REF="refs/tags/v1.17.1", GITHUB_REF_NAME="v1.17.1"), None, False),
        (github(GITHUB_EVENT_NAME="release"), None, False),
    ],
)
def test_channel(env: dict[str, str], channel: str | None, nightly: bool) -> None:
    decision = channel_of(env)
    assert decision.channel == channel, decision.reason
    assert decision.nightly is nightly


def test_pull_requests_are_forbidden_whatever_the_flags() -> None:
    env = github(GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/9/merge")
    info = detect(env, git_branch=no_git)
    assert info.pull_request == "9"
    assert decide(info, settings()).forbidden
    for requested in ("pre-release", "release"):
        decision = decide(info, settings(), requested=requested, container_url="/tmp/x")
        assert decision.channel is None
        assert decision.container is None


def test_forks_never_upload() -> None:
    upload = replace(UPLOAD, repository="scipy/scipy-wheels")
    assert channel_of(github(), upload).channel == "pre-release"
    fork = channel_of(github(GITHUB_REPOSITORY="someone/scipy-wheels"), upload)
    assert fork.channel is None
    assert fork.forbidden
    assert "fork" in fork.reason
    travis_fork_pr = travis(
        TRAVIS_EVENT_TYPE="pull_request",
        TRAVIS_PULL_REQUEST="4",
        TRAVIS_PULL_REQUEST_SLUG="someone/scipy-wheels",
    )
    assert channel_of(travis_fork_pr, upload).forbidden
    assert channel_of(appveyor(APPVEYOR_REPO_NAME="x/y"), upload).forbidden


def test_cron_builds_the_daily_commit() -> None:
    decision = channel_of(travis(TRAVIS_EVENT_TYPE="cron"))
    assert decision.commit == "main"
    assert channel_of(travis()).commit == "v1.17.1"


def test_other_branches_setting_and_patterns_are_settings() -> None:
    upload = replace(UPLOAD, other_branches="pre-release")
    assert channel_of(travis(TRAVIS_BRANCH="feature"), upload).channel == "pre-release"
    upload = replace(UPLOAD, development_branches=("develop",), release_branches=(r"release-\d+",))
    assert channel_of(github(GITHUB_REF="refs/heads/develop"), upload).channel == "pre-release"
    assert channel_of(github(GITHUB_REF="refs/heads/main"), upload).channel is None
    assert channel_of(github(GITHUB_REF="refs/heads/release-3"), upload).channel == "release"


def test_release_upload_from_a_non_release_branch_is_refused_loudly() -> None:
    for env in (travis(), github(GITHUB_EVENT_NAME="schedule"), travis(TRAVIS_BRANCH="feature")):
        info = detect(env, git_branch=no_git)
        with pytest.raises(ReleaseRefused, match="REFUSED"):
            decide(info, settings(), requested="release")
    info = detect(travis(TRAVIS_BRANCH="v1.17.1"), git_branch=no_git)
    released = decide(info, settings(), requested="release")
    assert (released.channel, released.container) == ("release", "swift://release")
    # An explicit pre-release is fine from anything but a pull request.
    info = detect(travis(TRAVIS_BRANCH="feature"), git_branch=no_git)
    chosen = decide(info, settings(), requested="pre-release")
    assert (chosen.channel, chosen.container) == ("pre-release", "swift://pre")


def test_a_pre_release_never_writes_to_the_release_container() -> None:
    info = detect(travis(), git_branch=no_git)
    with pytest.raises(Exception, match="REFUSED: swift://release is the release container"):
        decide(info, settings(), container_url="swift://release")


def test_local_runs_use_the_git_branch() -> None:
    info = detect({"HOME": "/root"}, git_branch=lambda: "main")
    assert info == CIInfo(provider="local", event="local", branch="main")
    assert decide(info, settings()).channel == "pre-release"
    info = detect({}, git_branch=lambda: "v1.17.1")
    assert decide(info, settings()).channel == "release"
    info = detect({}, git_branch=lambda: None)
    assert decide(info, settings()).channel is None
    # By hand, a run no branch decides goes to the pre-release container when it is local.
    local = UploadSettings(pre_release="containers/pre-release", release="containers/release")
    decision = decide(info, settings(local))
    assert (decision.channel, decision.container) == ("pre-release", "containers/pre-release")
    assert "run outside CI" in decision.reason


def test_unknown_ci_uses_git_and_is_marked() -> None:
    info = detect({"CI": "true"}, git_branch=lambda: "main")
    assert info.provider == "unknown"
    assert info.branch == "main"


def test_full_hash() -> None:
    assert providers.is_full_hash(HASH)
    assert not providers.is_full_hash("v1.17.1")
    assert not providers.is_full_hash(HASH[:12])
    assert not providers.is_full_hash("main")


def test_record_of_the_run() -> None:
    info = detect(github(), git_branch=no_git)
    record = info.as_record()
    assert record["provider"] == "github"
    assert record["build_url"] == "https://github.example/scipy/scipy-wheels/actions/runs/42"
    assert "pull_request" not in record


def test_build_target() -> None:
    def target(env: dict[str, str]) -> tuple[str | None, bool]:
        return build_target(detect(env, git_branch=lambda: None), settings())

    assert target(travis(TRAVIS_EVENT_TYPE="cron")) == ("main", True)
    assert target(github()) == ("v1.17.1", False)
    assert target({}) == ("v1.17.1", False)
    assert target(github(GITHUB_EVENT_NAME="pull_request", GITHUB_REF="refs/pull/1/merge")) == (
        "v1.17.1",
        False,
    )


def test_one_detector_for_every_provider_variable() -> None:
    """TRAVIS=True, or only a provider's own variable, is that provider (one detector: the
    log's folding reads the same answer)."""
    assert detect({"TRAVIS": "True"}, git_branch=no_git).provider == "travis"
    assert detect({"APPVEYOR_REPO_BRANCH": "main"}, git_branch=no_git).provider == "appveyor"
    assert providers.fold_style(detect({"TRAVIS": "True"}, git_branch=no_git)) == "travis"
    assert providers.fold_style(detect({}, git_branch=lambda: None)) is None


def test_ci_needs_a_remote_container_and_runs_by_hand_use_local_directories() -> None:
    """A CI runner is thrown away: on Travis, Appveyor and GitHub Actions a local container is
    a configuration error (unless MB_LOCAL_CONTAINER_ON_CI says the disk persists); by hand,
    [upload] local's directories are used, never the real containers or anaconda.org."""
    local = UploadSettings(pre_release="containers/pre-release", release="containers/release")
    for env in (travis(), appveyor(), github(), github(GITHUB_EVENT_NAME="schedule")):
        with pytest.raises(ConfigurationError, match="configure a remote container for CI"):
            channel_of(env, local)
        kept = decide(detect(env, git_branch=no_git), settings(local), local_on_ci=True)
        assert kept.container == "containers/pre-release"
    # Pull requests decide no upload: nothing to refuse.
    assert channel_of(github(GITHUB_EVENT_NAME="pull_request"), local).channel is None
    real = replace(UPLOAD, local="containers", nightly_indexes=("anaconda://org",))
    nightly = channel_of(github(GITHUB_EVENT_NAME="schedule"), real)
    assert (nightly.container, nightly.indexes) == ("swift://pre", ("anaconda://org",))
    assert channel_of(github(), real).indexes == ()  # pushes to main: no index
    by_hand = decide(detect({}, git_branch=lambda: "main"), settings(real))
    assert (by_hand.container, by_hand.indexes) == ("containers/pre-release", ())
    release = decide(detect({}, git_branch=lambda: "v1.17.1"), settings(real))
    assert release.container == "containers/release"


def test_only_the_release_provider_writes_the_release_container() -> None:
    owned = replace(settings(), ci=CISettings(release_provider="github"))
    release_env = {
        "travis": travis(TRAVIS_BRANCH="v1.17.1"),
        "appveyor": appveyor(APPVEYOR_REPO_BRANCH="v1.17.1"),
        "github": github(GITHUB_REF="refs/heads/v1.17.1", GITHUB_REF_NAME="v1.17.1"),
    }
    for provider, env in release_env.items():
        decision = decide(detect(env, git_branch=no_git), owned)
        if provider == "github":
            assert decision.container == "swift://release"
        else:
            assert decision.channel is None
            assert "release wheels come from github only" in decision.reason
            with pytest.raises(ReleaseRefused, match="release wheels come from github only"):
                decide(detect(env, git_branch=no_git), owned, requested="release")
    # Pre-release uploads are not owned: every provider's nightly goes there.
    assert decide(detect(travis(TRAVIS_EVENT_TYPE="cron"), git_branch=no_git), owned).channel


@pytest.mark.parametrize(
    ("pattern", "start"),
    [
        (r"v\d+\.\d+\.\d+((a|b|rc)\d+)?", "v"),
        (r"maintenance/\d+\.\d+\.x", "maintenance/"),
        (r"release\.v\d+", "release.v"),
        (r"ab?c", "a"),  # b may be missing
        (r"x|y", ""),  # an alternation: no common start
    ],
)
def test_the_workflows_release_prefix_is_the_patterns_literal_start(
    pattern: str, start: str
) -> None:
    """The workflow cannot run regular expressions: it keeps release runs from being
    cancelled by each pattern's literal start, which every branch the pattern takes has."""
    assert literal_start(pattern) == start
    for branch in ("v1.2.3", "v1.18.0rc1", "maintenance/1.17.x", "release.v3", "ac", "abc", "x"):
        if re.fullmatch(pattern, branch):
            assert branch.startswith(start)


def test_the_workflow_condition_names_the_settings_prefixes() -> None:
    condition = release_ref_condition(UPLOAD.release_branches)
    assert condition == (
        "startsWith(github.ref, 'refs/heads/maintenance/') || "
        "startsWith(github.ref, 'refs/heads/v')"
    )
    with pytest.raises(ConfigurationError, match="literal start"):
        release_ref_condition((r"\d+",))
