"""The CI configs and cibuildwheel.toml: generated from settings.toml, parsed as their CI reads
them, the same commits and jobs everywhere, every path they name present, credentials only
encrypted or secret (and never for pull requests), and cibuildwheel's own selection
(`--print-build-identifiers`, the real cibuildwheel) equal to the matrix."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from multibuild._compat import tomllib
from multibuild.ci import configs as ciconfig
from multibuild.ci.configs.base import LLVM_WINDOWS_ARM64
from multibuild.cibuildwheel import config as cibw
from multibuild.commands import COMMANDS
from multibuild.matrix import jobs
from multibuild.platforms.linux import LinuxPlatform
from multibuild.platforms.macos import MacOSPlatform
from multibuild.settings import load_settings
from multibuild.util.secrets import UPLOAD_CREDENTIALS
from tests.helpers import REPO_ROOT, cibuildwheel_build_options, copy_wheels_repo, shown_commits

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
    # scipy 1.17.1's matrix: six Pythons (free-threaded builds included) on manylinux and
    # musllinux x86_64/aarch64, macOS x86_64/arm64 with OpenBLAS and with Accelerate, and
    # Windows AMD64/ARM64.
    assert len(JOB_IDS) == 60 and len(set(JOB_IDS)) == 60
    assert {
        "cp313t-manylinux_x86_64", "cp314t-musllinux_aarch64", "cp314t-macosx_arm64",
        "cp312-macosx_arm64-accelerate", "cp313t-win_amd64", "cp314t-win_arm64",
    } <= set(JOB_IDS)  # fmt: skip


@pytest.mark.parametrize("path", ciconfig.GENERATED)
def test_each_config_parses_pins_and_runs_the_matrix(path: str) -> None:
    data = parsed(path)
    expected = ciconfig.expected_jobs(SETTINGS, path)
    assert sorted(ciconfig.config_jobs(path, data)) == sorted(expected)
    if path in ciconfig.CI_FILES:
        # Shown in each config for its readers (no program reads them back).
        assert shown_commits((REPO_ROOT / path).read_text()) == {
            "BUILD_COMMIT": SETTINGS.project.build_commit,
            "DAILY_COMMIT": SETTINGS.project.daily_commit,
        }
    text = (REPO_ROOT / path).read_text()
    names = ciconfig.referenced_paths(text)
    assert names, path
    for name in names:
        assert (REPO_ROOT / name).exists(), f"{path} names {name}"


def test_cibuildwheel_selects_exactly_the_matrix() -> None:
    """The real cibuildwheel (the version pyproject.toml pins, which CI installs) selects
    exactly the matrix on each platform, the free-threaded builds included: cp313t needs
    cibuildwheel 3.x's `enable = ["cpython-freethreading"]` (4.x drops it silently)."""
    config = REPO_ROOT / cibw.CONFIG_FILE
    platforms_selected = {}
    for platform in ("linux", "macos", "windows"):
        selected = cibw.build_identifiers(config, platform, os.environ)
        # An Accelerate job builds its PLAT's identifier: one identifier, two jobs.
        assert sorted(selected) == sorted({j.build_id for j in jobs(SETTINGS) if j.os == platform})
        assert {i.split("-")[0] for i in selected} == {
            "cp311", "cp312", "cp313", "cp313t", "cp314", "cp314t"
        }  # fmt: skip
        platforms_selected[platform] = {i.split("-", 1)[1] for i in selected}
    assert platforms_selected == {
        "linux": {"manylinux_x86_64", "manylinux_aarch64", "musllinux_x86_64", "musllinux_aarch64"},
        "macos": {"macosx_x86_64", "macosx_arm64"},
        "windows": {"win_amd64", "win_arm64"},
    }
    options = parsed(cibw.CONFIG_FILE)["tool"]["cibuildwheel"]
    assert options["enable"] == ["cpython-freethreading"]
    targets = {o["select"]: o["environment"] for o in options["overrides"]}
    assert targets == {
        "*-macosx_x86_64": {"MACOSX_DEPLOYMENT_TARGET": "10.14"},
        "*-macosx_arm64": {"MACOSX_DEPLOYMENT_TARGET": "12.3"},
        "*-win_arm64": {"CC": "clang-cl", "CXX": "clang-cl", "FC": "flang"},
    }
    assert all(o["inherit"] == {"environment": "append"} for o in options["overrides"])
    assert options["before-build"] == "python {project}/scripts/cibw-step pre_build {package}"
    assert options["test-command"] == "python {project}/scripts/cibw-step run_tests {package}"
    assert options["test-requires"] == list(SETTINGS.build.test_requires)
    linux = options["linux"]
    assert linux["repair-wheel-command"].startswith("auditwheel repair")
    assert linux["manylinux-x86_64-image"] == SETTINGS.ci.manylinux_image
    for arch in ("x86_64", "aarch64"):
        assert linux[f"musllinux-{arch}-image"] == SETTINGS.ci.musllinux_image == "musllinux_1_2"
    env = linux["environment"]
    assert env["SCIPY_OPENBLAS32_VERSION"] == SETTINGS.libraries["scipy_openblas32"]
    assert env["OPENBLAS_SOURCE"] == SETTINGS.hook_env["OPENBLAS_SOURCE"]
    assert env["PKG_CONFIG_PATH"].startswith(f"{LinuxPlatform.ci_prefix}/lib/pkgconfig:")
    assert options["windows"]["environment"]["PATH"].endswith(";$PATH")
    assert options["windows"]["repair-wheel-command"].startswith("delvewheel repair --add-path")


def test_triggers_nightly_fail_fast_logs() -> None:
    workflow = parsed(".github/workflows/wheels.yml")
    triggers = workflow[True]  # YAML 1.1 reads the key `on` as true
    assert set(triggers) == {"push", "pull_request", "schedule", "workflow_dispatch"}
    assert triggers["schedule"] == [{"cron": SETTINGS.ci.schedule}]
    assert workflow["permissions"] == {"contents": "read"}
    assert "cancel-in-progress" in workflow["concurrency"]
    build = workflow["jobs"]["build"]
    assert build["strategy"]["fail-fast"] is False
    steps = build["steps"]
    [ci_step] = [s for s in steps if s.get("run") == "python -m multibuild ci --no-upload"]
    assert ci_step["env"] == {"MB_JOB": "${{ matrix.job }}"}  # no secret in a build job
    keep = next(s for s in steps if s.get("uses", "").startswith("actions/upload-artifact"))
    assert keep["if"] == "always()" and keep["with"]["path"] == "wheelhouse/*"
    runners = {job["job"]: job["runner"] for job in build["strategy"]["matrix"]["include"]}
    assert runners["cp311-manylinux_aarch64"] == "ubuntu-24.04-arm"
    assert runners["cp312-macosx_x86_64"] == "macos-15-intel"
    assert runners["cp312-macosx_arm64"] == "macos-15"
    assert runners["cp313t-win_amd64"] == "windows-2025"
    fortran = {s["name"]: s for s in steps if s.get("name", "").startswith("Fortran")}
    assert "scripts/install-gfortran-macos" in fortran[next(iter(fortran))]["run"]
    windows = next(s for n, s in fortran.items() if "Windows" in n)
    assert "choco install rtools" in windows["run"] and "ucrt64\\bin" in windows["run"]
    assert windows["if"] == "runner.os == 'Windows' && runner.arch == 'X64'"
    # win_arm64: LLVM (clang-cl, flang) checked against its sha256 before it runs, on ARM64 only.
    assert runners["cp314t-win_arm64"] == "windows-11-arm"
    [llvm] = [s for s in steps if s.get("name", "").startswith("LLVM")]
    assert llvm["if"] == "runner.os == 'Windows' && runner.arch == 'ARM64'"
    script = llvm["run"]
    url, sha256 = LLVM_WINDOWS_ARM64
    assert f"Invoke-WebRequest {url} " in script and sha256.upper() in script
    assert script.index("Get-FileHash") < script.index("Start-Process")
    assert "exit 6" in script and "pkgconf:arm64-windows" in script
    for name, job in workflow["jobs"].items():
        assert job["timeout-minutes"] > 0, name
        for step in job["steps"]:
            uses = step.get("uses")
            if uses:  # pinned by full commit hash
                assert re.fullmatch(r"[\w.-]+/[\w.-]+(/[\w.-]+)*@[0-9a-f]{40}", uses), uses
            if step.get("uses", "").startswith("actions/checkout"):
                assert step["with"]["persist-credentials"] is False
    repository = SETTINGS.upload.repository
    for name in ("upload", "release", "pypi", "testpypi"):
        assert f"github.repository == '{repository}'" in workflow["jobs"][name]["if"]
    assert workflow["jobs"]["upload"]["environment"] == "upload"
    pypi = workflow["jobs"]["pypi"]
    assert pypi["environment"] == "pypi" and pypi["permissions"] == {"id-token": "write"}
    [publish] = [s for s in pypi["steps"] if "gh-action-pypi-publish" in s.get("uses", "")]
    assert publish["with"]["attestations"] is True
    release_steps = [s.get("run", "") for s in workflow["jobs"]["release"]["steps"]]
    assert any("release-status" in r and "--wait" in r for r in release_steps)
    assert any("multibuild sdist" in r and "build --sdist" in r for r in release_steps)
    publishers = ("pypi", "testpypi")
    assert workflow["jobs"]["testpypi"]["permissions"] == {"id-token": "write"}
    assert "id-token" not in str({k: v for k, v in workflow["jobs"].items() if k not in publishers})

    travis = parsed(".travis.yml")
    assert travis["jobs"]["fast_finish"] is False
    assert travis["script"] == ["python3 -m multibuild ci"]
    linux = travis["jobs"]["include"]
    assert {j["os"] for j in linux} == {"linux"}  # Travis' macOS support has ended
    assert all(j["services"] == "docker" for j in linux)
    assert {j["arch"] for j in linux} == {"amd64", "arm64"}
    text = (REPO_ROOT / ".travis.yml").read_text()
    assert "never for pull requests" not in text  # Travis decrypts same-repository PRs' secrets
    assert "for pull requests from branches of this repository" in text

    appveyor = parsed("appveyor.yml")
    assert appveyor["matrix"]["fast_finish"] is False
    assert appveyor["build_script"] == ["python -m multibuild ci"]
    assert "Push-AppveyorArtifact" in appveyor["on_finish"][0]["ps"]
    assert any("choco install rtools" in step for step in appveyor["install"])


def test_credentials_only_secret_and_never_for_pull_requests(tmp_path: Path) -> None:
    workflow = parsed(".github/workflows/wheels.yml")
    for name, job in workflow["jobs"].items():
        with_secrets = [s for s in job["steps"] if "secrets." in str(s)]
        if not with_secrets:
            continue
        # Secrets only in jobs of the `upload` environment, which never run for pull requests
        # or in forks.
        assert name in ("secrets", "upload", "release"), name
        assert job["environment"] == "upload"
        # (tests/integration/test_ci_publishing.py evaluates these for every event)
        assert "github.event_name == 'schedule'" in job["if"] or "refs/tags/" in job["if"]
        assert "pull_request" not in job["if"]
        for step in with_secrets:
            assert set(step["env"]) == set(UPLOAD_CREDENTIALS)
            for variable, value in step["env"].items():
                assert value == f"${{{{ secrets.{variable} }}}}"
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
    settings_file.write_text(original.replace('"3.14", "3.14t"]', '"3.14", "3.14t", "3.10"]'))
    done = run_check_config(root)
    assert done.returncode == 2
    for path in ciconfig.GENERATED:
        assert f"MISMATCH: {path}: its jobs differ from settings.toml's [matrix]" in done.stdout
    assert "'cp310-win_amd64'" in done.stdout
    assert "`python -m multibuild check-config --write` regenerates it" in done.stdout
    assert "cibuildwheel --print-build-identifiers --platform linux selects" in done.stdout
    ciconfig.write_configs(root)
    assert run_check_config(root).returncode == 0
    assert "cp310-manylinux_aarch64" in cibw.build_identifiers(
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


def cibuildwheel_resolves(
    tmp_path: Path, platform: str, identifier: str, environ: dict[str, str]
) -> tuple[dict[str, str], str]:
    """What cibuildwheel itself makes of cibuildwheel.toml and `environ` for one build
    identifier: the environment the build sees (from an empty one) and the config settings."""
    build = cibuildwheel_build_options(
        tmp_path, REPO_ROOT / cibw.CONFIG_FILE, platform, identifier, environ
    )
    return build.environment.as_dictionary(prev_environment={}), build.config_settings


def test_each_variant_builds_as_its_job_says(tmp_path: Path) -> None:
    """The variants as cibuildwheel itself resolves them: an Accelerate job's variables (which
    `python -m multibuild ci` sets) give the build macOS 14.0, MB_BLAS=accelerate and
    -Dblas=accelerate, while the OpenBLAS job of the same identifier keeps 12.3 and no
    Accelerate; win_arm64 builds with LLVM's compilers, win_amd64 with the toolchain on PATH;
    a musllinux job gets the musllinux image."""
    by_id = {job.id: job for job in jobs(SETTINGS)}
    accelerate = by_id["cp312-macosx_arm64-accelerate"]
    openblas = by_id["cp312-macosx_arm64"]
    assert accelerate.build_id == openblas.build_id == "cp312-macosx_arm64"
    assert cibw.job_environ(SETTINGS, openblas) == {}
    variables = cibw.job_environ(SETTINGS, accelerate)
    assert set(variables) == {"CIBW_ENVIRONMENT_MACOS", "CIBW_CONFIG_SETTINGS_MACOS"}
    env, config_settings = cibuildwheel_resolves(tmp_path, "macos", accelerate.build_id, variables)
    assert env["MACOSX_DEPLOYMENT_TARGET"] == "14.0" and env["MB_BLAS"] == "accelerate"
    assert env["MB_PREFIX"] == str(MacOSPlatform.ci_prefix)  # the rest of the environment kept
    assert env["SCIPY_OPENBLAS32_VERSION"] == SETTINGS.libraries["scipy_openblas32"]
    assert config_settings.split() == ["setup-args=-Dblas=accelerate"]
    env, config_settings = cibuildwheel_resolves(tmp_path, "macos", openblas.build_id, {})
    assert env["MACOSX_DEPLOYMENT_TARGET"] == "12.3" and "MB_BLAS" not in env
    assert "accelerate" not in config_settings
    env, _ = cibuildwheel_resolves(
        tmp_path,
        "macos",
        "cp311-macosx_x86_64",
        cibw.job_environ(SETTINGS, by_id["cp311-macosx_x86_64-accelerate"]),
    )
    assert env["MACOSX_DEPLOYMENT_TARGET"] == "14.0"

    arm, _ = cibuildwheel_resolves(tmp_path, "windows", "cp313t-win_arm64", {})
    assert (arm["CC"], arm["CXX"], arm["FC"]) == ("clang-cl", "clang-cl", "flang")
    amd, _ = cibuildwheel_resolves(tmp_path, "windows", "cp313t-win_amd64", {})
    assert "FC" not in amd and amd["MB_PREFIX"] == arm["MB_PREFIX"]

    from cibuildwheel.options import CommandLineArguments, compute_options

    arguments = CommandLineArguments.defaults()
    arguments.platform = "linux"
    arguments.config_file = str(REPO_ROOT / cibw.CONFIG_FILE)
    arguments.package_dir = tmp_path / "probe"
    build = compute_options("linux", arguments, {}).build_options("cp314t-musllinux_aarch64")
    assert build.musllinux_images is not None
    assert build.musllinux_images["aarch64"].startswith("quay.io/pypa/musllinux_1_2_aarch64")


def test_the_build_cache_is_restored_before_the_build_and_saved_after() -> None:
    """The nightly starts warm: the build cache restored before the build and saved after it
    (whatever the build did), keyed per job and runner and by the files that pin toolchain
    and build, never saved from a fork's pull request; Travis keeps the same directories."""
    from multibuild.ci.configs.base import BUILD_CACHE_PATHS

    build = parsed(".github/workflows/wheels.yml")["jobs"]["build"]
    assert "github.ref_type != 'tag'" in build["if"]  # release builds never start from a cache
    steps = build["steps"]
    names = [s.get("name", "") for s in steps]
    restore_at = names.index("Restore the build cache")
    build_at = next(i for i, s in enumerate(steps) if "multibuild ci" in s.get("run", ""))
    save_at = names.index("Save the build cache")
    assert restore_at < build_at < save_at
    restore, save = steps[restore_at], steps[save_at]
    assert restore["uses"].startswith("actions/cache/restore@")
    assert save["uses"].startswith("actions/cache/save@")
    assert restore["uses"].split("@")[1] == save["uses"].split("@")[1]
    # The engine's cache dir for the default work dir: ccache, the library cache and the
    # container route's mount of both (multibuild.engine.ccache, .libraries, .cibuildwheel.route).
    paths = restore["with"]["path"].split()
    assert paths == save["with"]["path"].split() == list(BUILD_CACHE_PATHS)
    assert {Path(p).parent.as_posix() for p in paths} == {".multibuild/cache"}
    assert {Path(p).name for p in paths} == {"ccache", "libs", "container"}
    key, restore_keys = restore["with"]["key"], restore["with"]["restore-keys"]
    assert key == restore_keys + "${{ github.run_id }}"  # a new entry each run; the newest wins
    assert restore_keys.startswith("build-${{ matrix.job }}-${{ runner.os }}-${{ runner.arch }}-")
    [hashed] = re.findall(r"hashFiles\(([^)]*)\)", key)
    files = [name.strip(" '") for name in hashed.split(",")]
    assert {"settings.toml", "cibuildwheel.toml", "pyproject.toml"} <= set(files)
    assert SETTINGS.project.config.relative_to(SETTINGS.root).as_posix() in files
    assert all((REPO_ROOT / name).is_file() for name in files), files
    assert save["with"]["key"] == "${{ steps.build-cache.outputs.cache-primary-key }}"
    assert restore["id"] == "build-cache"
    condition = " ".join(save["if"].split())
    assert condition.startswith("always() && ")
    assert (
        "(github.event_name != 'pull_request' || "
        "github.event.pull_request.head.repo.full_name == github.repository)"
    ) in condition
    assert "if" not in restore  # reading a cache is safe for any event

    travis = parsed(".travis.yml")
    assert travis["cache"] == {"directories": list(BUILD_CACHE_PATHS)}
