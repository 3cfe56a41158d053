"""The matrix from settings.toml, and wheel names read as pip reads them."""

from __future__ import annotations

from multibuild import matrix
from multibuild.settings import load_settings
from tests.helpers import REPO_ROOT


def test_matrix_from_settings() -> None:
    settings = load_settings(REPO_ROOT / "settings.toml")
    cells = matrix.cells(settings.matrix)
    # scipy 1.17.1's Pythons, the free-threaded builds with their own ABI (cp313-cp313t).
    pythons = ("311", "312", "313", "314")
    abis = [(v, v) for v in pythons] + [("313", "313t"), ("314", "314t")]
    assert {c.label for c in cells} == {
        f"cp{v}-cp{abi}-{p}"
        for v, abi in abis
        for p in (
            "manylinux_*_x86_64",
            "manylinux_*_aarch64",
            "macosx_*_x86_64",
            "macosx_*_arm64",
            "win_amd64",
        )
    }


def test_wheel_names_as_pip_reads_them() -> None:
    cell = matrix.Cell(os="linux", plat="x86_64", python="3.11")
    compressed = matrix.parse_wheel_name(
        "SciPy-1.17.1-cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64.whl"
    )
    assert compressed is not None and cell in matrix.completeness([cell], [compressed]).found
    tagged = matrix.parse_wheel_name("scipy-1.17.1-2-cp311-cp311-macosx_14_0_arm64.whl")
    assert tagged is not None and tagged.build == (2, "")
    assert matrix.select([tagged.filename], "SCIPY", "1.17.1.0") == [tagged]
    assert matrix.select(["scipy-1.17.10-cp311-cp311-win_amd64.whl"], "scipy", "1.17.1") == []
    assert matrix.select(["scipy_extra-1.17.1-cp311-cp311-win_amd64.whl"], "scipy", "1.17.1") == []
    assert matrix.parse_wheel_name("../scipy-1.17.1-cp311-cp311-win_amd64.whl") is None
    assert matrix.parse_wheel_name("scipy-1.17.1.whl") is None
    universal = matrix.parse_wheel_name("scipy-1.0-cp312-cp312-macosx_11_0_universal2.whl")
    assert universal is not None
    arm = matrix.Cell(os="macos", plat="arm64", python="3.12")
    assert arm in matrix.completeness([arm], [universal]).found
    free = matrix.Cell(os="windows", plat="AMD64", python="3.13t")
    assert free.label == "cp313-cp313t-win_amd64"
    assert matrix.type_wanted("linux", "musllinux_1_2_x86_64")
    assert not matrix.type_wanted("manylinux", "musllinux_1_2_x86_64")
