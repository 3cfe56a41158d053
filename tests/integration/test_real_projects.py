"""Real, unrelated projects from the package index through the engine as a new user runs it:
`build --sdist NAME==VERSION --config their/config.sh`, each project's own settings.toml
beside its config.sh. python-snappy links Snappy (C++, CMake) built from Debian's source
package with one Debian patch; argon2-cffi-bindings links the libargon2 vendored in its own
sdist (a directory source, a plain Makefile) and needs a variable its pre_build exports for the
wheel build. Checked: the library grafted, everything optimised, the tests of the repaired
wheel run with the prefix moved away and the system's own copy of the library hidden."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.helpers import FIXTURES, run_multibuild

REAL = FIXTURES / "real"
# name -> (the sdist, its sha256 as the index gives it, the library, its system copy's name)
PROJECTS = {
    "python-snappy": (
        "python-snappy==0.6.1",
        "b6a107ab06206acc5359d4c5632bd9b22d448702a79b3169b0c62e0fb808bb2a",
        "libsnappy",
        "libsnappy.so",
    ),
    "argon2-cffi-bindings": (
        "argon2-cffi-bindings==26.2.0",
        "f21ab89bb9850f32b9ca038d9961424bb0d3669d579cbbbfed068cffa6fc0643",
        "libargon2",
        "libargon2.so",
    ),
}
# A C/C++ compile as make, setuptools and CMake's verbose builds print it.
COMPILE = re.compile(r"(^|\s|/)(gcc|g\+\+|cc|c\+\+)\s.*\s-c\s")


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(PROJECTS))
def test_a_real_project_from_the_package_index(tmp_path: Path, name: str) -> None:
    spec, sha256, library, system_copy = PROJECTS[name]
    config = REAL / name / "config.sh"
    run = run_multibuild(tmp_path, "build", "--sdist", spec, "--config", str(config),
                         "--python", "3.11", "--verbose")  # fmt: skip
    assert run.returncode == 0, run.output[-6000:]
    record = run.record()
    source = record["source"]
    assert source == {"kind": "sdist", "path": source["path"], "sha256": sha256,
                      "date_epoch": source["date_epoch"]}  # fmt: skip
    assert int(source["date_epoch"]) > 0  # PKG-INFO's date: SOURCE_DATE_EPOCH
    [build] = record["builds"]
    assert any(Path(g).name.startswith(f"{library}-") for g in build["repair"]["grafted"])
    assert build["tests"]["counts"].get("passed", 0) > 0 and "failed" not in build["tests"]
    # The test step: prefix moved away, the system's copy of the library hidden.
    isolation = build["tests"]["isolation"]
    assert isolation["prefix"] == "moved away"
    assert any(Path(h).name.startswith(system_copy) for h in isolation["hidden"]), isolation
    # Every compile, the library's and the extension's, is optimised.
    log = (run.wheelhouse / f"{record['build_id']}.log").read_text()
    compiles = [line for line in log.splitlines() if COMPILE.search(line)]
    assert compiles, "no compile lines in the log"
    slow = [line for line in compiles if not re.search(r"\s-O[23s]\b", line)]
    assert not slow, slow[:3]
    [lib] = build["libraries"]
    if name == "python-snappy":  # Debian's tarball, pinned, and one of Debian's patches
        assert lib["sha256"] == "75c1fbb3d618dd3a0483bff0e26d0a92b495bbe5059c8b4f1c962b478b6e06e7"
        assert list(lib["patches"]) == ["0001-Add-inline-with-SNAPPY_ATTRIBUTE_ALWAYS_INLINE.patch"]
    else:  # the directory vendored in the sdist; the variable pre_build exported
        assert lib["source"].endswith("extras/libargon2") and len(lib["sha256"]) == 64
        assert build["exported"] == ["ARGON2_CFFI_USE_SYSTEM"]
