"""The matrix from settings.toml, and wheel names read as pip reads them."""

from __future__ import annotations

from pathlib import Path

import pytest

from multibuild import matrix
from multibuild.errors import ConfigurationError
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
            "musllinux_*_x86_64",
            "musllinux_*_aarch64",
            "macosx_*_x86_64",
            "macosx_14_0+_x86_64",
            "macosx_*_arm64",
            "macosx_14_0+_arm64",
            "win_amd64",
            "win_arm64",
        )
    }
    assert len(cells) == len(set(cells)) == 60
    assert len({c.job_id for c in cells}) == 60


def cell_of(cells: list[matrix.Cell], filename: str) -> list[matrix.Cell]:
    wheel = matrix.parse_wheel_name(filename)
    assert wheel is not None
    return list(matrix.completeness(cells, [wheel]).found)


def test_variants_take_their_own_wheels() -> None:
    """A musllinux wheel fills the musllinux cell and never the manylinux one; of a macOS PLAT
    built against OpenBLAS and Accelerate, a wheel for macOS 14.0 or later fills the
    Accelerate cell, an older one the OpenBLAS cell; win_arm64 its own cell."""
    cells = matrix.cells(load_settings(REPO_ROOT / "settings.toml").matrix)
    [musl] = cell_of(cells, "scipy-1.17.1-cp313-cp313t-musllinux_1_2_aarch64.whl")
    assert (musl.os, musl.plat, musl.variant, musl.job_id) == (
        "linux", "aarch64", "musllinux", "cp313t-musllinux_aarch64"
    )  # fmt: skip
    [many] = cell_of(cells, "scipy-1.17.1-cp313-cp313t-manylinux_2_28_aarch64.whl")
    assert many.variant == "" and many.type == "manylinux"
    [accelerate] = cell_of(cells, "scipy-1.17.1-cp312-cp312-macosx_14_0_arm64.whl")
    assert accelerate.variant == "accelerate"
    assert accelerate.job_id == "cp312-macosx_arm64-accelerate"
    assert accelerate.build_id == "cp312-macosx_arm64"
    assert cell_of(cells, "scipy-1.17.1-cp312-cp312-macosx_15_0_arm64.whl") == [accelerate]
    [openblas] = cell_of(cells, "scipy-1.17.1-cp312-cp312-macosx_12_0_arm64.whl")
    assert openblas.variant == "" and openblas.job_id == "cp312-macosx_arm64"
    assert cell_of(cells, "scipy-1.17.1-cp312-cp312-macosx_13_3_arm64.whl") == [openblas]
    [arm] = cell_of(cells, "scipy-1.17.1-cp314-cp314t-win_arm64.whl")
    assert arm.job_id == "cp314t-win_arm64" and arm.os == "windows"
    # -t manylinux leaves musllinux cells out; -t linux takes both.
    manylinux = matrix.completeness(cells, [], kind="manylinux").cells
    assert {c.type for c in manylinux} == {"manylinux"} and len(manylinux) == 12
    assert len(matrix.completeness(cells, [], kind="linux").cells) == 24
    musl_only = matrix.completeness(cells, [], kind="musllinux").cells
    assert len(musl_only) == 12 and all(c.musl for c in musl_only)
    assert matrix.describe_missing([accelerate], "scipy", "1.17.1") == (
        "scipy-1.17.1-cp312-cp312-macosx_14_0+_arm64.whl (macos arm64 (accelerate), Python 3.12)"
    )


def test_variant_settings_are_checked(tmp_path: Path) -> None:
    text = (REPO_ROOT / "settings.toml").read_text()
    bad = tmp_path / "settings.toml"
    bad.write_text(text.replace('macos_accelerate = ["x86_64=14.0", "arm64=14.0"]',
                                'macos_accelerate = ["arm64=14"]'))  # fmt: skip
    with pytest.raises(ConfigurationError, match=r"macos_accelerate entries are PLAT=X\.Y"):
        load_settings(bad)
    bad.write_text(text.replace('macos_accelerate = ["x86_64=14.0", "arm64=14.0"]',
                                'macos_accelerate = ["universal2=14.0"]'))  # fmt: skip
    with pytest.raises(ConfigurationError, match="names universal2, not in"):
        matrix.cells(load_settings(bad).matrix)


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
