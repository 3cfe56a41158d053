"""Which CPythons a build makes: one rule (util.pythons.pythons_for) for the host route (installed
here) and the container route (the local image holds what Debian's sources give)."""

from __future__ import annotations

import pytest

from multibuild.errors import ConfigurationError
from multibuild.images.recipe import unavailable
from multibuild.util.pythons import PythonVersion, pythons_for

MATRIX = ("3.11", "3.13t", "3.99")


def test_asked_for_pythons_are_built_as_given() -> None:
    pythons, notes = pythons_for(("3.12",), MATRIX, lambda version: "never")
    assert pythons == (PythonVersion(12),) and notes == ()


def test_the_local_image_builds_the_matrix_cpythons_it_can_hold() -> None:
    pythons, notes = pythons_for((), MATRIX, unavailable)
    assert [str(v) for v in pythons] == [
        v for v in ("3.11", "3.13t") if not unavailable(PythonVersion.parse(v))
    ]
    assert len(notes) == 1 and notes[0].startswith("CPython 3.99 of the matrix is not built: ")


def test_an_official_image_builds_every_cpython_of_the_matrix() -> None:
    pythons, notes = pythons_for((), MATRIX, lambda version: None)
    assert [str(v) for v in pythons] == ["3.11", "3.13t", "3.99"] and notes == ()


def test_none_buildable_or_no_matrix_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="none of the matrix's CPythons"):
        pythons_for((), MATRIX, lambda version: "not installed here")
    with pytest.raises(ConfigurationError, match="give --python"):
        pythons_for((), (), lambda version: None)
