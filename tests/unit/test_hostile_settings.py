"""Hostile values in settings.toml and branch names (issue 23, items 3, 6 and 8): Unicode
digits make no release branch, project names follow the packaging rules, and no settings
value adds structure to a generated CI config."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from multibuild.ci.channels import decide
from multibuild.ci.configs.github import GitHub, release_ref_condition
from multibuild.ci.providers import detect
from multibuild.errors import ConfigurationError
from multibuild.settings import load_settings
from tests.helpers import REPO_ROOT, github

PINNED = '[project]\nname="{name}"\nrepo="https://example.org/x.git"\nBUILD_COMMIT="v1"\n'


@pytest.mark.parametrize(
    "branch",
    [
        "v\uff11.\uff12.\uff13",
        "v\u0661.\u0662.\u0663",
        "maintenance/\uff11.\uff11\uff17.x",
        "v1.2.\uff13",
        "maintenance/1.1\u0667.x",
    ],
)
def test_unicode_digits_make_no_release_branch(branch: str) -> None:
    settings = load_settings(REPO_ROOT / "settings.toml")
    info = detect(github(GITHUB_REF=f"refs/heads/{branch}"), git_branch=lambda: None)
    assert decide(info, settings).channel is None
    ascii_branch = detect(github(GITHUB_REF="refs/heads/v1.2.3"), git_branch=lambda: None)
    assert decide(ascii_branch, settings).channel == "release"


@pytest.mark.parametrize("name", ["../../x", "sub/x", "x/", ".x", "x y", "\uff58", "x\n", "-x"])
def test_project_names_follow_the_packaging_rules(tmp_path: Path, name: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(PINNED.format(name=name.replace("\n", "\\n")))
    with pytest.raises(ConfigurationError, match="is no distribution name"):
        load_settings(path)


INJECTIONS = [
    (
        '[ci]\nschedule = "17 3 * * *\\"\\n  issue_comment:\\n    types: [created]\\n#"\n',
        "schedule",
    ),
    ('[ci]\nschedule = "17 3 * * * *"\n', "schedule"),
    ('[ci]\nschedule = "\uff11\uff17 3 * * *"\n', "schedule"),
    ("[upload]\nrepository = \"a/b' || true || '\"\n", "repository"),
    ('[upload]\nrelease = "s3://b/x\\"\\n  on: issue_comment"\n', "release"),
    ('[upload]\npre_release = "s3://b/$(id)"\n', "pre_release"),
    ('[upload]\nnightly_indexes = ["anaconda://x y"]\n', "nightly_indexes"),
    ('[ci]\nmacos_deployment_targets = ["arm64=\uff11\uff11.0"]\n', "macos_deployment_targets"),
]


@pytest.mark.parametrize(("table", "key"), INJECTIONS)
def test_settings_values_cannot_add_structure_to_a_workflow(
    tmp_path: Path, table: str, key: str
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(PINNED.format(name="x") + table)
    with pytest.raises(ConfigurationError, match=key):
        load_settings(path)


def test_the_default_schedule_still_renders_as_one_trigger(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(
        PINNED.format(name="x") + '[ci]\nschedule = "5,35 */2 1-7 * 0"\n'
        '[upload]\nrepository = "o/x"\nrelease = "s3://bucket/rel"\n'
    )
    (tmp_path / "config.sh").write_text("")
    data = yaml.safe_load(GitHub().render(load_settings(path)))
    assert "issue_comment" not in data[True]
    assert data[True]["schedule"] == [{"cron": "5,35 */2 1-7 * 0"}]


@pytest.mark.parametrize("pattern", ["v'||true||'\\d+", "v\\$x\\d+"])
def test_a_release_pattern_cannot_break_out_of_the_workflow_condition(pattern: str) -> None:
    with pytest.raises(ConfigurationError, match="literal start"):
        release_ref_condition((pattern,))
