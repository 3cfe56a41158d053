"""The macOS and Windows jobs as cibuildwheel 3.4.1 itself resolves cibuildwheel.toml for every
cell (compute_options, each job's CIBW_* applied), the repair commands read by delocate's
shell and delvewheel's own argument parser, and the arm64 retag on a real wheel."""

from __future__ import annotations

import importlib
import shlex
import subprocess
import sys
import zipfile
from pathlib import Path
from typing import Any

import pytest

from multibuild.cibuildwheel import config as cibw
from multibuild.matrix import jobs
from multibuild.settings import load_settings
from multibuild.util.wheelzip import WheelZipError, retag_platform
from tests.helpers import REPO_ROOT, cibuildwheel_build_options

SETTINGS = load_settings(REPO_ROOT / "settings.toml")
MAC_LIBS = "/tmp/multibuild/prefix/lib:/tmp/multibuild/prefix/lib64"
RETAG = "python {project}/scripts/cibw-step retag {dest_dir} macosx_12_3_arm64 macosx_12_0_arm64"


def resolve(tmp_path: Path, platform: str, identifier: str, environ: dict[str, str]) -> Any:
    return cibuildwheel_build_options(
        tmp_path, REPO_ROOT / cibw.CONFIG_FILE, platform, identifier, environ
    )


MACOS_JOBS = [j for j in jobs(SETTINGS) if j.os == "macos"]
WINDOWS_JOBS = [j for j in jobs(SETTINGS) if j.os == "windows"]


def test_every_cell_is_covered() -> None:
    assert len(MACOS_JOBS) == 24 and len(WINDOWS_JOBS) == 12


@pytest.mark.parametrize("job", MACOS_JOBS, ids=lambda j: j.id)
def test_macos_cell_as_cibuildwheel_resolves_it(tmp_path: Path, job: Any) -> None:
    build = resolve(tmp_path, "macos", job.build_id, cibw.job_environ(SETTINGS, job))
    env = build.environment.as_dictionary(prev_environment={})
    expected = {"x86_64": "10.14", "arm64": "12.3"}[job.plat]
    if job.variant == "accelerate":
        expected = "14.0"
        assert env["MB_BLAS"] == "accelerate" and "-Dblas=accelerate" in build.config_settings
    else:
        assert "MB_BLAS" not in env and "accelerate" not in build.config_settings
    assert env["MACOSX_DEPLOYMENT_TARGET"] == expected
    # DYLD_LIBRARY_PATH on delocate's own command line: /bin/sh (SIP) drops it from the
    # environment cibuildwheel passes.
    words = shlex.split(build.repair_command)
    assert words[0] == f"DYLD_LIBRARY_PATH={MAC_LIBS}" and words[1] == "delocate-wheel"
    assert words[2:4] == ["--require-archs", "{delocate_archs}"]
    if job.plat == "arm64":
        assert build.repair_command.endswith(f" && {RETAG}")
    else:
        assert "retag" not in build.repair_command


@pytest.mark.parametrize("job", WINDOWS_JOBS, ids=lambda j: j.id)
def test_windows_cell_as_cibuildwheel_and_delvewheel_read_it(
    tmp_path: Path, job: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    build = resolve(tmp_path, "windows", job.build_id, cibw.job_environ(SETTINGS, job))
    env = build.environment.as_dictionary(prev_environment={})
    assert env["PATH"].startswith("C:/multibuild/prefix/bin;C:/multibuild/prefix/lib")
    if job.plat == "ARM64":
        assert (env["CC"], env["FC"]) == ("clang-cl", "flang")
    else:
        assert "FC" not in env
    command = build.repair_command.replace("{dest_dir}", str(tmp_path / "out"))
    command = command.replace("{wheel}", str(tmp_path / "w.whl"))
    words = shlex.split(command)
    assert words[:2] == ["delvewheel", "repair"]
    # delvewheel's own parser and argument handling; only the repair, which needs Windows
    # DLLs, is replaced by a recorder.
    delvewheel = importlib.import_module("delvewheel.__main__")
    calls: list[tuple[str, Any]] = []

    class Recorder:
        def __init__(self, wheel: str, extract_dir: Any, include: Any, exclude: Any, *a: Any):
            calls.append(("init", (wheel, include, exclude)))

        def repair(self, target: str, no_mangles: Any, no_mangle_all: bool, with_mangle: bool,
                   strip: bool, *rest: Any) -> None:  # fmt: skip
            calls.append(("repair", (target, strip, no_mangle_all)))

    monkeypatch.setattr(delvewheel, "WheelRepair", Recorder)
    monkeypatch.setattr(sys, "argv", ["delvewheel", *words[1:]])
    delvewheel.main()
    assert calls == [
        ("init", (str(tmp_path / "w.whl"), set(), {"libsf_error_state.dll"})),
        ("repair", (str(tmp_path / "out"), True, False)),
    ]


def test_delvewheel_parser_rejects_what_it_does_not_know(monkeypatch: pytest.MonkeyPatch) -> None:
    """The control: the same parser refuses an option it lacks (so the test above would catch
    a misspelt --no-dll or --strip)."""
    delvewheel = importlib.import_module("delvewheel.__main__")
    monkeypatch.setattr(sys, "argv", ["delvewheel", "repair", "--strip-all", "w.whl"])
    with pytest.raises(SystemExit) as caught:
        delvewheel.main()
    assert caught.value.code == 2


def make_wheel(directory: Path, plat: str) -> Path:
    import base64
    import hashlib

    def digest(data: bytes) -> str:
        return base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()

    files = {
        "probe/__init__.py": b"x = 1\n",
        "probe-1.0.dist-info/METADATA": b"Metadata-Version: 2.1\nName: probe\nVersion: 1.0\n",
        "probe-1.0.dist-info/WHEEL": (
            f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: false\n"
            f"Tag: cp312-cp312-{plat}\n"
        ).encode(),
    }
    record = "".join(f"{n},sha256={digest(d)},{len(d)}\n" for n, d in files.items())
    files["probe-1.0.dist-info/RECORD"] = (record + "probe-1.0.dist-info/RECORD,,\n").encode()
    path = directory / f"probe-1.0-cp312-cp312-{plat}.whl"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(name, data)
    return path


def test_retag_step_renames_the_arm64_wheel_and_its_metadata(tmp_path: Path) -> None:
    """The repair command's retag, run as cibuildwheel runs it (scripts/cibw-step), on a
    wheel delocate left as macosx_12_3_arm64; a 14_0 (Accelerate) wheel is left alone."""
    old = make_wheel(tmp_path, "macosx_12_3_arm64")
    accelerate = make_wheel(tmp_path, "macosx_14_0_arm64")
    step = RETAG.replace("{project}", str(REPO_ROOT)).replace("{dest_dir}", str(tmp_path))
    done = subprocess.run(
        [sys.executable, *shlex.split(step)[1:]], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    new = tmp_path / "probe-1.0-cp312-cp312-macosx_12_0_arm64.whl"
    assert not old.exists() and new.exists() and accelerate.exists()
    with zipfile.ZipFile(new) as archive:
        wheel = archive.read("probe-1.0.dist-info/WHEEL").decode()
        assert "Tag: cp312-cp312-macosx_12_0_arm64" in wheel and "12_3" not in wheel
        names = archive.namelist()
    # pip's own view of the retagged wheel: its RECORD holds (the normaliser checks it)
    from multibuild.util.wheelzip import normalize_wheel

    normalize_wheel(new, 315532800)
    assert sorted(zipfile.ZipFile(new).namelist()) == sorted(names)


def test_retag_refuses_a_wheel_whose_record_lies(tmp_path: Path) -> None:
    wheel = make_wheel(tmp_path, "macosx_12_3_arm64")
    with zipfile.ZipFile(wheel, "a") as archive:
        archive.writestr("probe/extra.py", b"not in RECORD\n")
    with pytest.raises(WheelZipError, match="not in its RECORD"):
        retag_platform(wheel, "macosx_12_3_arm64", "macosx_12_0_arm64")
    assert wheel.exists()
