"""settings.toml read into frozen objects (the keys each table takes are its dataclass's
fields), and a build's options resolved once from arguments, settings and environment."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from multibuild.ci import channels, providers
from multibuild.errors import ConfigurationError
from multibuild.options import (
    BuildArguments,
    EnvironmentOptions,
    GitSource,
    SdistSource,
    resolve_build_options,
)
from multibuild.platforms.linux import LinuxPlatform
from multibuild.settings import TABLES, known_keys, load_settings, project_settings
from multibuild.util.pythons import PythonVersion
from tests.helpers import REPO_ROOT

MINIMAL = '[project]\nname="x"\nrepo="x"\nBUILD_COMMIT="v1"\n'


def test_repository_settings_load() -> None:
    settings = load_settings(REPO_ROOT / "settings.toml")
    assert settings.project.name == "scipy"
    assert settings.project.build_commit
    assert settings.project.config == REPO_ROOT / "config.sh"
    assert "3.11" in settings.matrix.python


def test_known_keys_are_the_dataclass_fields() -> None:
    project = {"name", "repo", "sdist", "BUILD_COMMIT", "DAILY_COMMIT", "config"}
    assert set(known_keys("project")) == project
    for table, cls in TABLES.items():
        assert len(known_keys(table)) == len(cls.__dataclass_fields__)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (MINIMAL + "[build]\nisolation='no'\n", r"\[build\] isolation must be true or false"),
        (MINIMAL + "[upload]\nkeep_nightlies=true\n", "keep_nightlies must be a whole number"),
        (MINIMAL + "[upload]\nkeep_nightly=3\n", "did you mean 'keep_nightlies'"),
        (MINIMAL + "[uplaod]\n", r"unknown table \[uplaod\] \(did you mean 'upload'\?\)"),
        (MINIMAL + "[hook_env]\nX=1\n", r"\[hook_env\] X must be a string"),
        ('[project]\nname=1\nrepo="x"\nBUILD_COMMIT="v"\n', r"\[project\] name must be a string"),
        ("[project\n", "not valid TOML"),
    ],
)
def test_settings_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(text)
    with pytest.raises(ConfigurationError, match=message) as error:
        load_settings(path)
    assert str(path) in str(error.value)


def test_a_projects_own_settings_pin_nothing_but_ci_needs_the_pins(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[build]\ntest_requires = ["pytest"]\n')
    own = load_settings(path)
    assert own.project.repo == "" and own.build.test_requires == ("pytest",)
    with pytest.raises(ConfigurationError, match=r"\[project\] needs name, repo, BUILD_COMMIT"):
        own.pinned()
    assert load_settings(REPO_ROOT / "settings.toml").pinned().project.name == "scipy"


def test_a_build_takes_the_settings_beside_its_config(tmp_path: Path) -> None:
    """A project is its config.sh plus its own settings beside it; another project's settings
    (this repository's, found from the working directory) never reach it."""
    config = tmp_path / "project" / "config.sh"
    config.parent.mkdir()
    config.write_text("")
    assert project_settings(None, str(config)) is None  # neutral defaults
    (config.parent / "settings.toml").write_text("[build]\nisolation = false\n")
    own = project_settings(None, str(config))
    assert own is not None and own.build.isolation is False
    assert project_settings("/dev/null", str(config)) is None
    assert project_settings(str(REPO_ROOT / "settings.toml"), str(config)) is not None


@pytest.mark.parametrize(
    ("environ", "ref", "nightly"),
    [
        ({"TRAVIS": "true", "TRAVIS_EVENT_TYPE": "cron", "TRAVIS_BRANCH": "main"}, "daily", True),
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": "schedule",
                "GITHUB_REF": "refs/heads/main",
                "GITHUB_REF_NAME": "main",
            },
            "daily",
            True,
        ),
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": "push",
                "GITHUB_REF": "refs/heads/main",
                "GITHUB_REF_NAME": "main",
            },
            "build",
            False,
        ),
    ],
)
def test_nightly_builds_build_the_daily_commit(
    environ: dict[str, str], ref: str, nightly: bool
) -> None:
    settings = load_settings(REPO_ROOT / "settings.toml")
    commit, is_nightly = channels.build_target(providers.detect(environ), settings)
    options = resolve_build_options(
        BuildArguments(python=("3.11",)),
        settings=settings,
        env_options=EnvironmentOptions.from_environ(environ),
        platform=LinuxPlatform(),
        environ=environ,
        commit=commit,
        nightly=is_nightly,
    )
    assert isinstance(options.source, GitSource)
    pinned = settings.project
    assert options.source.ref == (pinned.daily_commit if ref == "daily" else pinned.build_commit)
    assert options.nightly is nightly
    assert options.pythons == (PythonVersion(11),)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MB_UPLOAD_THREADS", "four"),
        ("MB_UPLOAD_THREADS", "2.5"),
        ("MB_UPLOAD_DEADLINE", "nan"),
        ("MB_UPLOAD_DEADLINE", "inf"),
        ("MB_SEGMENT_SIZE", "-1"),
        ("MB_TEST_LEVEL", "quick"),
    ],
)
def test_bad_knobs_are_clear_errors(name: str, value: str) -> None:
    with pytest.raises(ConfigurationError, match=name):
        EnvironmentOptions.from_environ({name: value})


def test_knobs_read_once() -> None:
    env_options = EnvironmentOptions.from_environ(
        {"MB_JOB": "cp311-manylinux_x86_64", "MB_UPLOAD_THREADS": "3", "MB_MIRROR_DIRS": "/a:/b"}
    )
    assert env_options.job == "cp311-manylinux_x86_64"
    assert env_options.upload.threads == 3
    assert env_options.mirror_dirs == (Path("/a"), Path("/b"))


def test_python_versions_one_rule() -> None:
    assert PythonVersion.parse("3.13t") == PythonVersion(13, free_threaded=True)
    assert PythonVersion.parse("3.13t").abi == "cp313t"
    assert str(PythonVersion.parse("3.12")) == "3.12"
    for bad in ("3", "3.13tt", "2.7.1", "py3.12"):
        with pytest.raises(ConfigurationError, match=r"X\.Yt"):
            PythonVersion.parse(bad)


def test_a_python_of_the_matrix_not_here_is_said_not_dropped(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One rule for Python versions: the matrix's 3.13t is a free-threaded CPython; where this
    machine has none, the options say so (and the build summary shows it)."""
    import dataclasses

    monkeypatch.setenv("PATH", str(tmp_path))  # no python3.13t on PATH
    settings = load_settings(REPO_ROOT / "settings.toml")
    settings = dataclasses.replace(
        settings, matrix=dataclasses.replace(settings.matrix, python=("3.11", "3.13t"))
    )

    class NoInterpreters(LinuxPlatform):
        def python_candidates(self, version: PythonVersion) -> list[Path]:
            return []

    options = resolve_build_options(
        BuildArguments(),
        settings=settings,
        env_options=EnvironmentOptions(),
        platform=NoInterpreters(),
        environ={},
        commit="v1",
    )
    assert options.pythons == (PythonVersion(11),)  # the interpreter running this test
    assert options.notes == (
        "CPython 3.13t (free-threaded) of the matrix is not built: not installed here",
    )
    assert "note         CPython 3.13t (free-threaded)" in options.summary()


def test_the_build_header_says_ccache_only_where_it_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """settings' ccache = true: "yes" where ccache is on PATH, "no (not installed)" where it
    is not and may not be installed (a PATH of the test's own, with or without a stub)."""
    settings = load_settings(REPO_ROOT / "settings.toml")
    options = resolve_build_options(
        BuildArguments(python=("3.11",), commit="v1.17.1"),
        settings=settings,
        env_options=EnvironmentOptions.from_environ({}),
        platform=LinuxPlatform(),
        environ={},
    )
    assert settings.build.ccache and options.ccache
    monkeypatch.setenv("PATH", str(tmp_path))
    assert options.ccache_state() == "no (not installed)"
    assert "ccache       no (not installed)" in options.summary()
    stub = tmp_path / "ccache"
    stub.write_text("#!/bin/sh\n")
    stub.chmod(0o755)
    assert options.ccache_state() == "yes"
    assert dataclasses.replace(options, ccache=False).ccache_state() == "no"


def test_the_header_names_the_project_of_the_settings_not_the_clones_directory() -> None:
    settings = load_settings(REPO_ROOT / "settings.toml")
    options = resolve_build_options(
        BuildArguments(python=("3.11",), repo="/mirrors/a-clone", commit="v1.17.1"),
        settings=settings,
        env_options=EnvironmentOptions.from_environ({}),
        platform=LinuxPlatform(),
        environ={},
    )
    assert options.project == settings.project.name == "scipy"
    assert "project      scipy" in options.summary()
    alone = resolve_build_options(
        BuildArguments(
            python=("3.11",),
            repo="/mirrors/a-clone.git",
            commit="v1",
            config=str(REPO_ROOT / "config.sh"),
        ),
        settings=None,
        env_options=EnvironmentOptions.from_environ({}),
        platform=LinuxPlatform(),
        environ={},
    )
    assert alone.project == "a-clone"


@pytest.mark.parametrize(
    ("project", "message"),
    [
        ('name="twice"\nsdist="twice>=0.1"', r"'twice>=0.1' is not one release: NAME==VERSION"),
        ('name="twice"\nsdist="twice==0.*"', "is not one release"),
        ('name="twice"\nsdist="other==0.1"', r"sdist 'other==0.1' is not of 'twice'"),
        ('name="twice"\nsdist="twice=0.1"', r"sdist 'twice=0.1': "),
        ('name="twice"\nsdist="twice==0.1"\nrepo="r"', "it excludes repo and BUILD_COMMIT"),
    ],
)
def test_a_release_sdist_is_one_release_of_the_project(
    tmp_path: Path, project: str, message: str
) -> None:
    path = tmp_path / "settings.toml"
    path.write_text(f"[project]\n{project}\n")
    with pytest.raises(ConfigurationError, match=message):
        load_settings(path)


def test_a_release_sdist_pins_what_ci_builds(tmp_path: Path) -> None:
    """[project] sdist instead of repo and BUILD_COMMIT: pinned, and a build with no source
    option builds that release (an option naming another source wins)."""
    path = tmp_path / "settings.toml"
    path.write_text('[project]\nname = "Twice"\nsdist = "twice==0.1.0"\n')
    settings = load_settings(path).pinned()
    (tmp_path / "config.sh").write_text("")
    arguments = BuildArguments(config=str(tmp_path / "config.sh"), python=("3.11",))
    options = resolve_build_options(
        arguments,
        settings=settings,
        env_options=EnvironmentOptions(),
        platform=LinuxPlatform(),
        environ={},
    )
    assert options.source == SdistSource(spec="twice==0.1.0")
    other = dataclasses.replace(arguments, repo="/src/twice", commit="v0.2.0")
    options = resolve_build_options(
        other,
        settings=settings,
        env_options=EnvironmentOptions(),
        platform=LinuxPlatform(),
        environ={},
    )
    assert options.source == GitSource(url="/src/twice", ref="v0.2.0")
