"""The CI configs and cibuildwheel.toml: generated from settings.toml, parsed as their CI reads
them, the same commits and jobs everywhere, every path they name present, credentials only
encrypted or secret (and never for pull requests), and cibuildwheel's own selection
(`--print-build-identifiers`, the real cibuildwheel) equal to the matrix."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from multibuild._compat import tomllib
from multibuild.ci import cibuildwheel as cibw
from multibuild.ci import configs as ciconfig
from multibuild.ci.jobs import jobs
from multibuild.commands import COMMANDS
from multibuild.publish.containers.credentials import UPLOAD_CREDENTIALS
from multibuild.settings import load_settings
from tests.helpers import REPO_ROOT, copy_wheels_repo

SETTINGS = load_settings(REPO_ROOT / "settings.toml")


def check(root: Path) -> list[ciconfig.Problem]:
    return ciconfig.check_configs(root, command_names=COMMANDS, environ=os.environ)


JOB_IDS = [job.id for job in jobs(SETTINGS)]


def parsed(path: str) -> Any:
    text = (REPO_ROOT / path).read_text()
    return tomllib.loads(text) if path.endswith(".toml") else yaml.safe_load(text)


def test_this_repository_agrees_with_its_settings() -> None:
    assert (
        ciconfig.check_configs(
            REPO_ROOT, command_names=COMMANDS, with_cibuildwheel=True, environ=os.environ
        )
        == []
    )
    for path, render in ciconfig.RENDERERS.items():
        assert (REPO_ROOT / path).read_text() == render(SETTINGS), f"{path}: regenerate"
    assert len(JOB_IDS) == 10 and "cp312-manylinux_aarch64" in JOB_IDS


@pytest.mark.parametrize("path", ciconfig.GENERATED)
def test_each_config_parses_pins_and_runs_the_matrix(path: str) -> None:
    data = parsed(path)
    expected = ciconfig.expected_jobs(SETTINGS, path)
    assert sorted(ciconfig.config_jobs(path, data)) == sorted(expected)
    if path in ciconfig.CI_FILES:
        assert ciconfig.read_commits_text(path, (REPO_ROOT / path).read_text()) == {
            "BUILD_COMMIT": SETTINGS.project.build_commit,
            "DAILY_COMMIT": SETTINGS.project.daily_commit,
        }
    text = (REPO_ROOT / path).read_text()
    names = ciconfig.referenced_paths(text)
    assert names, path
    for name in names:
        assert (REPO_ROOT / name).exists(), f"{path} names {name}"


def test_cibuildwheel_selects_exactly_the_matrix() -> None:
    config = REPO_ROOT / cibw.CONFIG_FILE
    for platform in ("linux", "macos", "windows"):
        selected = cibw.build_identifiers(config, platform, os.environ)
        assert sorted(selected) == sorted(j.id for j in jobs(SETTINGS) if j.os == platform)
    options = parsed(cibw.CONFIG_FILE)["tool"]["cibuildwheel"]
    assert options["before-build"] == "python {project}/scripts/cibw-step pre_build {package}"
    assert options["test-command"] == "python {project}/scripts/cibw-step run_tests {package}"
    assert options["test-requires"] == list(SETTINGS.build.test_requires)
    linux = options["linux"]
    assert linux["repair-wheel-command"].startswith("auditwheel repair")
    assert linux["manylinux-x86_64-image"] == SETTINGS.ci.manylinux_image
    env = linux["environment"]
    assert env["SCIPY_OPENBLAS32_VERSION"] == SETTINGS.libraries["scipy_openblas32"]
    assert env["OPENBLAS_SOURCE"] == SETTINGS.hook_env["OPENBLAS_SOURCE"]
    assert env["PKG_CONFIG_PATH"].startswith(f"{cibw.PREFIX['linux']}/lib/pkgconfig:")
    assert options["windows"]["environment"]["PATH"].endswith(";$PATH")
    assert options["windows"]["repair-wheel-command"].startswith("delvewheel repair --add-path")


def test_triggers_nightly_fail_fast_logs() -> None:
    workflow = parsed(".github/workflows/wheels.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request", "schedule", "workflow_dispatch"}
    assert triggers["schedule"] == [{"cron": SETTINGS.ci.schedule}]
    build = workflow["jobs"]["build"]
    assert build["strategy"]["fail-fast"] is False
    steps = build["steps"]
    [ci_step] = [s for s in steps if s.get("run") == "python -m multibuild ci"]
    assert ci_step["env"]["MB_JOB"] == "${{ matrix.job }}"
    keep = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert keep["if"] == "always()" and keep["with"]["path"] == "wheelhouse/*"
    runners = {job["job"]: job["runner"] for job in build["strategy"]["matrix"]["include"]}
    assert runners["cp311-manylinux_aarch64"] == "ubuntu-24.04-arm"
    assert runners["cp312-macosx_arm64"] == "macos-14"

    travis = parsed(".travis.yml")
    assert travis["jobs"]["fast_finish"] is False
    assert travis["script"] == ["python3 -m multibuild ci"]
    linux = [j for j in travis["jobs"]["include"] if j["os"] == "linux"]
    assert all(j["services"] == "docker" for j in linux)
    assert {j["arch"] for j in linux} == {"amd64", "arm64"}

    appveyor = parsed("appveyor.yml")
    assert appveyor["matrix"]["fast_finish"] is False
    assert appveyor["build_script"] == ["python -m multibuild ci"]
    assert "Push-AppveyorArtifact" in appveyor["on_finish"][0]["ps"]


def test_credentials_only_secret_and_never_for_pull_requests(tmp_path: Path) -> None:
    workflow = parsed(".github/workflows/wheels.yml")
    steps = workflow["jobs"]["build"]["steps"]
    for step in steps:
        for name, value in (step.get("env") or {}).items():
            if name in UPLOAD_CREDENTIALS:
                assert value == (
                    f"${{{{ github.event_name != 'pull_request' && secrets.{name} || '' }}}}"
                )
    with_secrets = [s for s in steps if "secrets." in str(s)]
    assert [s.get("run") for s in with_secrets] == ["python -m multibuild ci"]
    for path in (".travis.yml", "appveyor.yml", cibw.CONFIG_FILE):
        text = (REPO_ROOT / path).read_text()
        for name in UPLOAD_CREDENTIALS:
            assert f"{name}=" not in text and f"{name}:" not in text, (path, name)

    # Encrypted values given in settings.toml reach the configs as `secure:` entries.
    root = copy_wheels_repo(tmp_path / "wheels")
    settings_file = root / "settings.toml"
    text = settings_file.read_text()
    settings_file.write_text(
        text.replace("travis_secure = []", 'travis_secure = ["c2VjcmV0IGJsb2I="]').replace(
            "appveyor_secure = []", 'appveyor_secure = ["ST_KEY=QmxvYg+/blob=="]'
        )
    )
    assert [p.kind for p in check(root)] == ["generated", "generated"]
    ciconfig.write_configs(root)
    assert check(root) == []
    travis = yaml.safe_load((root / ".travis.yml").read_text())
    assert {"secure": "c2VjcmV0IGJsb2I="} in travis["env"]["global"]
    appveyor = yaml.safe_load((root / "appveyor.yml").read_text())
    assert appveyor["environment"]["global"]["ST_KEY"] == {"secure": "QmxvYg+/blob=="}
    # Anything but an encrypted blob is refused (a plain value would be a leak).
    settings_file.write_text(
        settings_file.read_text().replace("c2VjcmV0IGJsb2I=", "ST_KEY=plain text")
    )
    with pytest.raises(Exception, match="encrypted value holds characters"):
        ciconfig.write_configs(root)


def run_check_config(root: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "multibuild", "check-config"],
        capture_output=True, text=True, check=False, cwd=root,
        env={**os.environ, "PYTHONPATH": str(REPO_ROOT)},
    )  # fmt: skip


def test_settings_changes_not_in_the_configs_fail_with_file_and_line(tmp_path: Path) -> None:
    root = copy_wheels_repo(tmp_path / "wheels")
    settings_file = root / "settings.toml"
    original = settings_file.read_text()

    # A commit changed by hand in settings.toml only: each CI config, file:line.
    settings_file.write_text(
        original.replace('BUILD_COMMIT = "v1.17.1"', 'BUILD_COMMIT = "v1.18.0"')
    )
    done = run_check_config(root)
    assert done.returncode == 2
    for path in ciconfig.CI_FILES:
        line = next(
            i
            for i, text in enumerate((root / path).read_text().splitlines(), 1)
            if "BUILD_COMMIT" in text and "v1.17.1" in text
        )
        assert (
            f"MISMATCH: {path}:{line}: BUILD_COMMIT is 'v1.17.1' but settings.toml:" in done.stdout
        )
    assert "`scripts/set-build-commit v1.18.0` sets it everywhere" in done.stdout

    # A Python added to the matrix: every generated file, and the command that regenerates.
    settings_file.write_text(
        original.replace('python = ["3.11", "3.12"]', 'python = ["3.11", "3.12", "3.13"]')
    )
    done = run_check_config(root)
    assert done.returncode == 2
    for path in ciconfig.GENERATED:
        assert f"MISMATCH: {path}: its jobs differ from settings.toml's [matrix]" in done.stdout
    assert "'cp313-win_amd64'" in done.stdout
    assert "`python -m multibuild check-config --write` regenerates it" in done.stdout
    assert "cibuildwheel --print-build-identifiers --platform linux selects" in done.stdout
    ciconfig.write_configs(root)
    assert run_check_config(root).returncode == 0
    assert "cp313-manylinux_aarch64" in cibw.build_identifiers(
        root / cibw.CONFIG_FILE, "linux", os.environ
    )

    # A library version: cibuildwheel.toml's environment, by line.
    settings_file.write_text(
        settings_file.read_text().replace('openblas = "0.3.21"', 'openblas = "0.3.30"')
    )
    problems = check(root)
    line = next(
        i
        for i, text in enumerate((root / cibw.CONFIG_FILE).read_text().splitlines(), 1)
        if text.startswith("OPENBLAS_VERSION")
    )
    assert [str(p) for p in problems] == [
        f"{cibw.CONFIG_FILE}:{line}: differs from what settings.toml generates (has "
        "'OPENBLAS_VERSION = \"0.3.21\"', should be 'OPENBLAS_VERSION = \"0.3.30\"'); "
        "`python -m multibuild check-config --write` regenerates it"
    ]

    # A script a config runs, gone; a command that does not exist.
    ciconfig.write_configs(root)
    (root / "scripts" / "cibw-step").unlink()
    travis = root / ".travis.yml"
    travis.write_text(travis.read_text().replace("multibuild ci\n", "multibuild cii\n"))
    messages = [str(p) for p in check(root)]
    assert (
        f"{cibw.CONFIG_FILE}: names scripts/cibw-step, which does not exist in {root}" in messages
    )
    assert ".travis.yml: runs `python -m multibuild cii`, no such command" in messages
