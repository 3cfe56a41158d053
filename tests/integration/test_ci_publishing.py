"""Who publishes where on the first real run: the GitHub workflow's triggers and the `upload`
job's `if:` evaluated for every event (tests/gh_expressions.py stands in for GitHub's
evaluator: no CI provider runs here); `python -m multibuild ci` on a Travis cron job without
credentials, once for a provider that does not upload (builds, tests, keeps the wheel, exit 0)
and once for one that does (refuses before building, naming the secret)."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import pytest
import yaml

from multibuild.settings import load_settings
from tests.gh_expressions import evaluate
from tests.helpers import CI_EVENTS as EVENTS
from tests.helpers import REPO_ROOT
from tests.integration.test_ci_jobs import multibuild, wheels_repo

SETTINGS = load_settings(REPO_ROOT / "settings.toml")
WORKFLOW: Any = yaml.safe_load((REPO_ROOT / ".github/workflows/wheels.yml").read_text())
REPOSITORY = SETTINGS.upload.repository


def github(event: str, ref: str, repository: str = REPOSITORY, publish: str = "") -> dict[str, Any]:
    ref_type = "tag" if ref.startswith("refs/tags/") else "branch"
    return {
        "inputs": {"publish": publish or ("pypi" if event == "workflow_dispatch" else "")},
        "github": {
            "event_name": event,
            "ref": ref,
            "ref_type": ref_type,
            "ref_name": ref.split("/", 2)[-1],
            "repository": repository,
        },
    }


def glob_matches(pattern: str, name: str) -> bool:
    """GitHub's branch/tag filter glob: `*` within a path part, `**` across parts."""
    regex = "".join(
        ".*" if part == "**" else "[^/]*" if part == "*" else re.escape(part)
        for part in re.split(r"(\*\*|\*)", pattern)
    )
    return re.fullmatch(regex, name) is not None


def triggered(event: str, ref: str) -> bool:
    """Whether the workflow runs for a push of `ref` (other events always run)."""
    if event != "push":
        return True
    push = WORKFLOW[True]["push"]  # YAML 1.1 reads the key `on` as true
    kind, name = ("tags", ref.removeprefix("refs/tags/")) if "/tags/" in ref else (
        "branches", ref.removeprefix("refs/heads/"))  # fmt: skip
    return any(glob_matches(p, name) for p in push.get(kind, []))


# (event, ref, repository): does the run start, does `upload` run, does `release` run
CASES = [
    ("schedule", "refs/heads/main", REPOSITORY, True, True, False),
    ("push", "refs/heads/main", REPOSITORY, True, True, False),
    ("push", "refs/heads/v1.17.2", REPOSITORY, True, True, False),
    ("push", "refs/heads/v1.18.0rc1", REPOSITORY, True, True, False),
    ("push", "refs/heads/maintenance/1.17.x", REPOSITORY, True, True, False),
    ("push", "refs/heads/feature/faster-tests", REPOSITORY, False, False, False),
    ("push", "refs/heads/mainline", REPOSITORY, False, False, False),
    ("push", "refs/tags/v1.17.2", REPOSITORY, True, False, True),
    ("pull_request", "refs/pull/12/merge", REPOSITORY, True, False, False),
    ("workflow_dispatch", "refs/heads/main", REPOSITORY, True, True, False),
    ("workflow_dispatch", "refs/heads/feature/x", REPOSITORY, True, False, False),
    ("schedule", "refs/heads/main", "someone/scipy-wheels", True, False, False),
    ("push", "refs/heads/main", "someone/scipy-wheels", True, False, False),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c[0]}:{c[1]}:{c[2]}")
def test_the_workflow_uploads_only_from_the_branches_that_upload(
    case: tuple[str, str, str, bool, bool, bool],
) -> None:
    event, ref, repository, runs, uploads, releases = case
    assert triggered(event, ref) == runs
    context = github(event, ref, repository)
    jobs = WORKFLOW["jobs"]
    assert evaluate(jobs["upload"]["if"], context) == (runs and uploads)
    assert evaluate(jobs["release"]["if"], context) == releases
    # The secrets job runs exactly when the upload will, and the builds wait for it: they run
    # after it passed or was skipped, never after it failed.
    assert evaluate(jobs["secrets"]["if"], context) == (runs and uploads)
    assert jobs["build"]["needs"] == "secrets"
    secrets = "success" if uploads else "skipped"
    after = {**context, "needs": {"secrets": {"result": secrets}}}
    assert evaluate(jobs["build"]["if"], after) == (not ref.startswith("refs/tags/"))
    failed = {**context, "needs": {"secrets": {"result": "failure"}}}
    assert not evaluate(jobs["build"]["if"], failed)
    # A cancelled run never uploads; failed builds' records still do.
    assert not evaluate(jobs["upload"]["if"], context, status="cancelled")
    assert evaluate(jobs["upload"]["if"], context, status="failure") == uploads


@pytest.mark.parametrize(
    ("event", "publish", "pypi", "testpypi"),
    [
        ("push", "", True, False),
        ("workflow_dispatch", "pypi", True, False),
        ("workflow_dispatch", "testpypi", False, True),
    ],
)
def test_a_release_tag_goes_to_pypi_or_by_hand_to_testpypi(
    event: str, publish: str, pypi: bool, testpypi: bool
) -> None:
    jobs = WORKFLOW["jobs"]
    context = github(event, "refs/tags/v1.17.2", publish=publish)
    assert evaluate(jobs["release"]["if"], context)
    assert evaluate(jobs["pypi"]["if"], context) == pypi
    assert evaluate(jobs["testpypi"]["if"], context) == testpypi
    assert jobs["testpypi"]["environment"] == "testpypi" and jobs["pypi"]["environment"] == "pypi"
    assert WORKFLOW[True]["workflow_dispatch"]["inputs"]["publish"]["options"] == [
        "pypi", "testpypi"
    ]  # fmt: skip
    # Neither publishes from a branch, whatever the input says.
    branch = github("workflow_dispatch", "refs/heads/main", publish="testpypi")
    assert not evaluate(jobs["testpypi"]["if"], branch)


def test_the_release_checks_the_built_commit_is_the_tag() -> None:
    """Run as the step runs it, with the workflow's BUILD_COMMIT and the tag's name."""
    import subprocess

    steps = {s.get("name"): s for s in WORKFLOW["jobs"]["release"]["steps"]}
    step = steps["The built commit is this tag"]
    first = step["run"].split("git ls-remote")[0]  # the comparison, without the network
    env = {"PATH": "/usr/bin:/bin", "BUILD_COMMIT": WORKFLOW["env"]["BUILD_COMMIT"]}
    ok = subprocess.run(["bash", "-ec", first], env={**env, "GITHUB_REF_NAME": "v1.17.1"},
                        capture_output=True, text=True, check=False)  # fmt: skip
    assert ok.returncode == 0, ok.stdout
    bad = subprocess.run(["bash", "-ec", first], env={**env, "GITHUB_REF_NAME": "v1.17.2"},
                         capture_output=True, text=True, check=False)  # fmt: skip
    assert bad.returncode == 1 and "not this tag v1.17.2" in bad.stdout
    assert step["env"]["PROJECT_REPO"] == SETTINGS.project.repo


def test_a_same_repository_pull_request_runs_once() -> None:
    """Its branch is not one that uploads: the push does not start the workflow, the pull
    request does."""
    assert not triggered("push", "refs/heads/fix-windows")
    assert triggered("pull_request", "refs/pull/7/merge")


def test_the_evaluator_reads_as_github_does() -> None:
    """Controls for the stand-in evaluator: case-insensitive comparison, operators' values,
    and a refusal of what it does not know."""
    context = github("push", "refs/heads/Main")
    assert evaluate("github.ref == 'refs/heads/main'", context)
    assert evaluate("!startsWith(github.ref, 'refs/tags/') && github.event_name != 'x'", context)
    assert not evaluate("(github.event_name == 'schedule' || false) && true", context)
    with pytest.raises(ValueError):
        evaluate("github.nothing == 'x'", context)
    with pytest.raises(ValueError):
        evaluate("format('{0}', github.ref)", context)


def publishing_repo(tmp_path: Path, upload: str, ci: str) -> Path:
    root = wheels_repo(tmp_path)
    settings = root / "settings.toml"
    text = settings.read_text()
    text = text[: text.index("[upload]")] + f"[upload]\n{upload}\n[ci]\n{ci}\n"
    settings.write_text(text)
    return root


TRAVIS_CRON = {**EVENTS["travis"]["cron"], "MB_JOB": "cp311-manylinux_x86_64"}


@pytest.mark.parametrize(
    ("upload", "secret"),
    [
        ('pre_release = "swift://pre-release"', "ST_AUTH, ST_USER, ST_KEY"),
        ('pre_release = "s3://pre-release"', "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"),
        (
            'pre_release = ""\nnightly_indexes = ["anaconda://scientific-python-nightly-wheels"]',
            "ANACONDA_TOKEN",
        ),
    ],
)
def test_a_travis_cron_job_meant_to_upload_without_its_secret_refuses_before_building(
    tmp_path: Path, upload: str, secret: str
) -> None:
    root = publishing_repo(tmp_path, upload, 'upload_providers = ["travis", "github"]')
    start = time.monotonic()
    done = multibuild("ci", "--builder", "host", cwd=root, env=TRAVIS_CRON)
    elapsed = time.monotonic() - start
    assert done.returncode == 11, done.stdout + done.stderr  # CredentialsError
    assert f"{secret} not set" in done.stderr
    assert "cp311-manylinux_x86_64: this travis job uploads to" in done.stderr
    assert "Nothing was built" in done.stderr
    assert elapsed < 60
    assert not (root / "wheelhouse").exists() and not (root / ".multibuild" / "src").exists()


@pytest.mark.slow
def test_a_travis_cron_job_of_a_provider_that_does_not_upload_builds_tests_and_passes(
    tmp_path: Path,
) -> None:
    """As settings.toml has it: only GitHub uploads. Travis' cron job builds DAILY_COMMIT,
    tests it, keeps the wheel and its record, says why nothing was uploaded and ends green,
    with no credential anywhere (the Swift container in its settings is never contacted)."""
    root = publishing_repo(
        tmp_path,
        'pre_release = "swift://pre-release"\n'
        'nightly_indexes = ["anaconda://scientific-python-nightly-wheels"]',
        'upload_providers = ["github"]',
    )
    dry = multibuild("ci", "--dry-run", cwd=root, env=TRAVIS_CRON)
    assert "note: no upload: scheduled (nightly) build: travis does not upload" in dry.stdout
    assert not re.search(r"^\s+\d+\. (upload|index) ", dry.stdout, re.M)  # none planned
    done = multibuild("ci", "--builder", "host", cwd=root, env=TRAVIS_CRON)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert (
        "not uploading: scheduled (nightly) build: travis does not upload "
        "([ci] upload_providers: github)" in output
    )
    [wheel] = (root / "wheelhouse").glob("*.whl")
    assert wheel.name.startswith("mb_hello_c-")
    [record] = (root / "wheelhouse").glob("*.json")
    assert '"status": "success"' in record.read_text()


def test_a_provider_gets_only_the_jobs_that_fit_its_time_limit(tmp_path: Path) -> None:
    """settings.toml's estimates fit Travis (Linux 25 of 50 minutes) and Appveyor (Windows 35
    of 60); an estimate above 80% of the limit moves those jobs to GitHub alone."""
    from multibuild.ci import configs as ciconfig
    from multibuild.ci.configs.appveyor import Appveyor
    from multibuild.ci.configs.github import GitHub
    from multibuild.ci.configs.travis import Travis
    from tests.helpers import copy_wheels_repo

    travis = Travis()
    assert {j.id for j in travis.jobs(SETTINGS)} == {
        j.id for j in GitHub().jobs(SETTINGS) if j.os == "linux"
    }
    assert len(Appveyor().jobs(SETTINGS)) == 6
    root = copy_wheels_repo(tmp_path / "wheels")
    settings_file = root / "settings.toml"
    text = settings_file.read_text()
    settings_file.write_text(text.replace('"musllinux=25"', '"musllinux=45"'))
    ciconfig.write_configs(root)
    written = yaml.safe_load((root / ".travis.yml").read_text())
    ids = travis.job_ids(written)
    assert ids and not any("musllinux" in i for i in ids) and len(ids) == 12
    workflow = (root / ".github/workflows/wheels.yml").read_text()
    assert "cp314t-musllinux_aarch64" in workflow
    settings_file.write_text(text.replace('"linux=25", ', ""))
    with pytest.raises(Exception, match="no estimate for linux jobs, which travis"):
        ciconfig.write_configs(root)


def test_the_secrets_job_names_a_missing_secret_before_the_builds() -> None:
    """`upload --check-secrets` as the workflow's `secrets` job runs it, on this repository's
    settings: a nightly needs ANACONDA_TOKEN (exit 11 without it), a release branch too; a pull
    request needs none."""
    schedule = EVENTS["github"]["cron"]
    start = time.monotonic()
    done = multibuild("upload", "--check-secrets", cwd=REPO_ROOT, env=schedule)
    assert time.monotonic() - start < 60
    assert done.returncode == 11, done.stdout + done.stderr
    assert "ANACONDA_TOKEN not set" in done.stderr
    token = {**schedule, "ANACONDA_TOKEN": "not-a-real-token-4711"}
    done = multibuild("upload", "--check-secrets", cwd=REPO_ROOT, env=token)
    assert done.returncode == 0, done.stderr
    assert "scientific-python-nightly-wheels are set" in done.stdout
    assert "not-a-real-token-4711" not in done.stdout + done.stderr
    release = multibuild(
        "upload", "--check-secrets", cwd=REPO_ROOT, env=EVENTS["github"]["release"]
    )
    assert release.returncode == 11 and "ANACONDA_TOKEN" in release.stderr
    pr = multibuild(
        "upload", "--check-secrets", cwd=REPO_ROOT, env=EVENTS["github"]["pull_request"]
    )
    assert pr.returncode == 0 and "no secret needed" in pr.stdout
