"""scipy 1.17.1's own wheels, as the package index resolves them for each cell of the matrix
(`pip install --dry-run --report` with the cell's platform: names only, nothing downloaded),
against the matrix: every cell gets exactly its own wheel (musllinux beside manylinux, the
Accelerate wheel beside the OpenBLAS one of the same identifier, win_arm64), and release-status
finds the release complete, or names what is missing."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from multibuild import matrix
from multibuild.cli import main
from multibuild.matrix import deployment_targets, wheel_targets
from multibuild.settings import load_settings
from tests.helpers import REPO_ROOT

SETTINGS = load_settings(REPO_ROOT / "settings.toml")
VERSION = "1.17.1"


def platform_for(cell: matrix.Cell) -> str:
    """The platform tag pip resolves a cell's wheel for: the manylinux_2_28 and musllinux_1_2
    images', the macOS deployment target settings.toml gives the cell (its OpenBLAS build's,
    or its Accelerate build's)."""
    if cell.os == "linux":
        return f"musllinux_1_2_{cell.plat}" if cell.musl else f"manylinux_2_28_{cell.plat}"
    if cell.os == "macos":
        # The wheel's tag: [ci] macos_wheel_targets where it is older than the build's target.
        built = deployment_targets(SETTINGS)[cell.plat]
        target = cell.macos_from or wheel_targets(SETTINGS).get(cell.plat, built)
        return f"macosx_{target.replace('.', '_')}_{cell.plat}"
    return cell.platform_tag


def resolve(cell: matrix.Cell, target: Path) -> str:
    version = cell.version
    done = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--isolated", "--quiet", "--dry-run",
         "--ignore-installed", "--no-deps", "--only-binary=:all:",
         "--platform", platform_for(cell), "--python-version", version.number,
         "--implementation", "cp", "--abi", version.abi, "--target", str(target),
         "--report", "-", f"scipy=={VERSION}"],
        capture_output=True, text=True, check=False, timeout=300,
        env={**os.environ, "PIP_CONFIG_FILE": os.devnull},
    )  # fmt: skip
    assert done.returncode == 0, f"{cell.job_id}: {done.stderr[-500:]}"
    [item] = json.loads(done.stdout)["install"]
    return str(item["download_info"]["url"]).rsplit("/", 1)[1]


@pytest.fixture(scope="module")
def released(tmp_path_factory: pytest.TempPathFactory) -> dict[matrix.Cell, str]:
    cells = matrix.cells(SETTINGS.matrix)
    target = tmp_path_factory.mktemp("pip-target")
    with ThreadPoolExecutor(max_workers=8) as pool:
        names = list(pool.map(lambda cell: resolve(cell, target), cells))
    return dict(zip(cells, names, strict=True))


def test_each_cell_gets_its_own_real_wheel(released: dict[matrix.Cell, str]) -> None:
    assert len(released) == len(set(released.values())) == 60
    wheels = [matrix.parse_wheel_name(name) for name in released.values()]
    assert all(wheels)
    done = matrix.completeness(list(released), [w for w in wheels if w is not None])
    assert done.complete and not done.extra
    for cell, name in released.items():
        assert [w.filename for w in done.found[cell]] == [name], cell.job_id
    by_job = {cell.job_id: name for cell, name in released.items()}
    assert (
        by_job["cp313t-musllinux_aarch64"] == "scipy-1.17.1-cp313-cp313t-musllinux_1_2_aarch64.whl"
    )
    assert by_job["cp312-macosx_arm64"] == "scipy-1.17.1-cp312-cp312-macosx_12_0_arm64.whl"
    assert (
        by_job["cp312-macosx_arm64-accelerate"] == "scipy-1.17.1-cp312-cp312-macosx_14_0_arm64.whl"
    )
    assert by_job["cp311-macosx_x86_64"] == "scipy-1.17.1-cp311-cp311-macosx_10_14_x86_64.whl"
    assert by_job["cp314t-win_arm64"] == "scipy-1.17.1-cp314-cp314t-win_arm64.whl"


def test_release_status_of_the_real_release(
    released: dict[matrix.Cell, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """release-status with this repository's settings against a release container (a local
    directory) holding scipy 1.17.1's file names: complete; without one Accelerate wheel and
    one musllinux wheel, incomplete, naming both."""
    container = tmp_path / "release"
    container.mkdir()
    for name in released.values():
        (container / name).write_bytes(name.encode())
    settings = tmp_path / "settings.toml"
    own = (REPO_ROOT / "settings.toml").read_text()
    # A release container instead of the staging channel ([upload] release wins over it).
    mine = re.sub(r'^release = ""$', f'release = "{container.as_uri()}"', own, flags=re.M)
    assert mine != own
    settings.write_text(mine)
    argv = [VERSION, "--settings", str(settings), "--json"]
    assert main(tool="release-status", argv=argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["complete"] and len(report["wheels"]) == 60
    assert {row["status"] for row in report["wheels"]} == {"present"}
    (container / "scipy-1.17.1-cp314-cp314t-macosx_14_0_x86_64.whl").unlink()
    (container / "scipy-1.17.1-cp311-cp311-musllinux_1_2_x86_64.whl").unlink()
    assert main(tool="release-status", argv=argv[:-1]) == 12
    out = capsys.readouterr().out
    assert "INCOMPLETE: 58/60" in out
    assert "cp314-cp314t-macosx_14_0+_x86_64" in out and "cp311-cp311-musllinux_*_x86_64" in out
