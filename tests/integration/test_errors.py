"""Each class of failure: its own clear message and exit code, no traceback unless asked,
and nothing in the wheelhouse that could pass for a good wheel."""

from __future__ import annotations

from pathlib import Path

import pytest

from multibuild.errors import (
    BuildError,
    ConfigurationError,
    HookError,
    LibraryError,
    RepairError,
    SourceError,
    SystemDependencyError,
    TestFailure,
)
from tests.helpers import Run, build_args, config_copy, git, make_repo, run_multibuild


def build(tmp: Path, repo: Path | str, config: Path, *extra: str, commit: str = "v1.0") -> Run:
    return run_multibuild(tmp, *build_args(repo, config, *extra, commit=commit))


def assert_failed(run: Run, code: int, *phrases: str) -> None:
    assert run.returncode == code, run.output
    for phrase in phrases:
        assert phrase in run.output, run.output
    assert "Traceback" not in run.output
    assert not run.wheels(), "a failed build left a wheel in the wheelhouse"
    records = run.records()
    if records:
        assert records[-1]["status"] == "failed"
        assert records[-1]["exit_code"] == code


def test_bad_ref(tmp_path: Path, hello_repo: Path, hello_config: Path) -> None:
    run = build(tmp_path, hello_repo, hello_config, commit="v9.9-no-such-tag")
    assert_failed(
        run, SourceError.return_code, "'v9.9-no-such-tag' is not a branch, tag or commit of"
    )


def test_unreachable_repo(tmp_path: Path, hello_config: Path) -> None:
    run = build(tmp_path, tmp_path / "nowhere", hello_config)
    assert_failed(run, SourceError.return_code, "cannot clone", "no such directory")
    # A URL whose server does not answer (loopback port with nothing listening).
    run = build(tmp_path, "https://user:s3cret@127.0.0.1:9/project.git", hello_config)
    assert_failed(run, SourceError.return_code, "cannot clone https://***@127.0.0.1:9/")
    assert "s3cret" not in run.output
    # The way out where the repository cannot be reached: the release's sdist (its version
    # read from the tag) or a local copy.
    assert "--sdist project==1.0; or a local clone or mirror: --repo PATH" in run.output
    # The framed summary names what was asked for, the engine's exit code (nox and CI show
    # only their own), and the cause after the colon.
    summary = run.output[run.output.rindex("=" * 72 + "\nproject") :]
    assert "project v1.0: FAILED (exit code 3) in" in summary
    assert "source   https://***@127.0.0.1:9/project.git @ v1.0 (not fetched)" in summary
    cause = summary.split("error: cannot clone https://***@127.0.0.1:9/project.git:\n", 1)[1]
    assert cause.startswith("       ") and cause.strip(), summary


def test_commit_hash_and_branch(tmp_path: Path, hello_repo: Path, hello_config: Path) -> None:
    """Any naming of a commit: a short hash works and the record has the full one."""
    full = git("rev-parse", "HEAD", cwd=hello_repo)
    run = build(tmp_path, hello_repo, hello_config, commit=full[:10])
    assert run.returncode == 0, run.output
    assert run.record()["source"]["commit"] == full


def test_broken_config_syntax(tmp_path: Path, hello_repo: Path) -> None:
    config = tmp_path / "cfg" / "config.sh"
    config.parent.mkdir()
    config.write_text("pre_build() {\n  echo unterminated\n\nrun_tests() { :; }\n")
    assert_failed(build(tmp_path, hello_repo, config), HookError.return_code, "has a syntax error")


def test_config_failing_while_loading(tmp_path: Path, hello_repo: Path) -> None:
    config = tmp_path / "cfg" / "config.sh"
    config.parent.mkdir()
    config.write_text("source /no/such/env_vars.sh\npre_build() { :; }\nrun_tests() { :; }\n")
    assert_failed(
        build(tmp_path, hello_repo, config), HookError.return_code, "failed while loading"
    )


def test_missing_hook(tmp_path: Path, hello_repo: Path) -> None:
    config = tmp_path / "cfg" / "config.sh"
    config.parent.mkdir()
    config.write_text("run_tests() { :; }\n")
    assert_failed(
        build(tmp_path, hello_repo, config),
        HookError.return_code,
        "does not define the hook pre_build()",
    )


def test_failing_pre_build(tmp_path: Path, hello_repo: Path) -> None:
    config = tmp_path / "cfg" / "config.sh"
    config.parent.mkdir()
    config.write_text(
        "pre_build() { echo about to fail; false; echo not reached; }\nrun_tests() { :; }\n"
    )
    run = build(tmp_path, hello_repo, config)
    assert_failed(
        run, HookError.return_code, "hook pre_build failed with exit status 1", "about to fail"
    )
    assert "not reached" not in run.output  # hooks run with set -e, as in multibuild
    # The failed build's record keeps how long it ran and the whole error, output and all.
    [failed] = run.record()["builds"]
    assert failed["status"] == "failed" and failed["duration_s"] > 0
    assert "hook pre_build failed with exit status 1" in failed["error"]
    assert "about to fail" in failed["error"]


def test_library_checksum_mismatch(tmp_path: Path, hello_repo: Path) -> None:
    """A helper's failure keeps its own exit code (6, a library), not the hook's 5."""
    config = config_copy("hello-c", tmp_path / "cfg", edit={"6d1645e8": "0000000b"})
    run = build(tmp_path, hello_repo, config)
    assert_failed(
        run, LibraryError.return_code, "hook pre_build: build_library failed", "sha256 mismatch"
    )


def test_missing_tool_in_a_hook_is_exit_4(tmp_path: Path, hello_repo: Path) -> None:
    config = config_copy(
        "hello-c",
        tmp_path / "cfg",
        edit={"pre_build() {\n": "pre_build() {\n    require_tool no-such-tool-xyz\n"},
    )
    run = build(tmp_path, hello_repo, config)
    assert_failed(
        run,
        SystemDependencyError.return_code,
        "hook pre_build: require_tool failed",
        "this build needs no-such-tool-xyz",
    )


def test_missing_config_file(tmp_path: Path, hello_repo: Path) -> None:
    assert_failed(
        build(tmp_path, hello_repo, tmp_path / "absent.sh"),
        ConfigurationError.return_code,
        "absent.sh does not exist",
    )


def test_missing_system_tool(tmp_path: Path, hello_repo: Path, hello_config: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text(
        '[project]\nname = "hello"\nrepo = "x"\nBUILD_COMMIT = "v1.0"\n'
        '[build]\nsystem_tools = ["git", "no-such-compiler-xyz"]\n'
        '[matrix]\npython = ["3.11"]\n'
    )
    run = build(tmp_path, hello_repo, hello_config, "--settings", str(settings))
    assert_failed(
        run,
        SystemDependencyError.return_code,
        "needs no-such-compiler-xyz",
        "install them with: apt-get install",
    )


def test_unknown_setting_suggests_the_right_one(tmp_path: Path) -> None:
    settings = tmp_path / "settings.toml"
    settings.write_text('[project]\nname = "x"\nrepo = "x"\nBUILD_COMIT = "v1"\n')
    run = run_multibuild(tmp_path, "build", "--settings", str(settings))
    assert_failed(
        run,
        ConfigurationError.return_code,
        "unknown setting [project] 'BUILD_COMIT' (did you mean 'BUILD_COMMIT'?)",
    )


@pytest.mark.slow
def test_build_failure(tmp_path: Path, hello_repo: Path, hello_config: Path) -> None:
    source = hello_repo / "src/hello_c/_hello.c"
    source.write_text(source.read_text() + "\nthis is not C;\n")
    git("commit", "-qam", "break the build", cwd=hello_repo)
    run = build(tmp_path, hello_repo, hello_config, commit="main")
    assert_failed(run, BuildError.return_code, "the wheel build failed", "error:")


@pytest.mark.slow
def test_repair_failure(tmp_path: Path, hello_repo: Path) -> None:
    """A library the build links but the repair tool cannot find: repair must fail loudly."""
    setup = hello_repo / "setup.py"
    text = setup.read_text()
    assert "define_macros=macros" in text
    setup.write_text(
        text.replace(
            "define_macros=macros",
            'define_macros=macros, library_dirs=[os.environ["BUILD_PREFIX"] + "/private"]',
        )
    )
    git("commit", "-qam", "link from a private dir", cwd=hello_repo)
    config = config_copy(
        "hello-c",
        tmp_path / "cfg",
        edit={
            "a6a05cc6 cmake\n": 'a6a05cc6 cmake\n    mkdir -p "$BUILD_PREFIX/private"\n'
            '    mv "$BUILD_PREFIX"/lib/libhello.so* "$BUILD_PREFIX/private/"\n'
        },
    )
    run = build(tmp_path, hello_repo, config, commit="main")
    assert_failed(run, RepairError.return_code, "auditwheel could not repair", "libhello.so.1")


@pytest.mark.slow
def test_failing_tests(tmp_path: Path, hello_repo: Path) -> None:
    """A failing test suite: exit 9, the wheel kept out, the counts still in the record."""
    config = config_copy(
        "hello-c",
        tmp_path / "cfg",
        edit={
            "run_tests() {\n": "run_tests() {\n"
            "    printf 'import hello_c\\ndef test_ok(): assert hello_c.add(2, 3) == 5\\n"
            "def test_bad(): assert hello_c.add(2, 3) == 6\\n' > test_x.py\n"
            "    python -m pytest -q -p no:cacheprovider test_x.py\n",
        },
    )
    run = run_multibuild(tmp_path, *build_args(hello_repo, config, test_requires="pytest"))
    assert_failed(
        run, TestFailure.return_code, "run_tests failed with exit status 1", "1 failed, 1 passed"
    )
    build_record = run.records()[-1]["builds"][0]
    assert build_record["status"] == "failed"
    assert build_record["tests"] == {"counts": {"failed": 1, "passed": 1}, "failed": True}


def test_traceback_only_when_asked(tmp_path: Path, hello_repo: Path, hello_config: Path) -> None:
    run = run_multibuild(
        tmp_path,
        "--debug-traceback",
        "build",
        "--repo",
        str(hello_repo),
        "--commit",
        "nope",
        "--config",
        str(hello_config),
        "--python",
        "3.11",
    )
    assert run.returncode == SourceError.return_code
    assert "Traceback" in run.output


@pytest.mark.slow
def test_policy_the_wheel_cannot_reach(tmp_path: Path) -> None:
    """libgfortran here needs a newer glibc than manylinux2014 allows: the repair says so."""
    repo = make_repo("fstats", tmp_path / "fstats-repo")
    config = config_copy("fstats", tmp_path / "cfg")
    run = build(tmp_path, repo, config, "--plat", "manylinux_2_17_x86_64")
    assert_failed(
        run, RepairError.return_code, "auditwheel could not repair", "manylinux_2_17_x86_64"
    )
