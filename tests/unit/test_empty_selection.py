"""release-status on a selection of no wheel (issue 23, item 10): an error, as cibuildwheel's
empty selection is, never "COMPLETE: 0/0"."""

from __future__ import annotations

from pathlib import Path

import pytest

from multibuild import matrix
from multibuild.errors import ConfigurationError
from multibuild.release.status import release_status
from multibuild.settings import MatrixSettings

LINUX_ONLY = matrix.cells(MatrixSettings(python=("3.11",), linux=("x86_64",)))


@pytest.mark.parametrize(
    ("cells", "kind"), [(LINUX_ONLY, "musllinux"), (LINUX_ONLY, "win"), ([], "all")]
)
def test_an_empty_selection_is_an_error(
    tmp_path: Path, cells: list[matrix.Cell], kind: str
) -> None:
    with pytest.raises(ConfigurationError, match="nothing to check"):
        release_status(
            url=str(tmp_path), name="pkg", version="1.0", kind=kind, cells=cells,
            base_dir=tmp_path, environ={},
        )  # fmt: skip


def test_a_selection_of_some_wheels_is_checked(tmp_path: Path) -> None:
    status = release_status(
        url=str(tmp_path), name="pkg", version="1.0", kind="manylinux", cells=LINUX_ONLY,
        base_dir=tmp_path, environ={},
    )  # fmt: skip
    assert not status.done.complete and len(status.done.cells) == 1
