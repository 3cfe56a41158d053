"""Everything CI does, reproducible locally with one command: `nox -s <session>`."""

from __future__ import annotations

import nox

nox.options.sessions = ["lint", "tests"]
nox.options.default_venv_backend = "venv"
nox.options.reuse_existing_virtualenvs = True


@nox.session
def build(session: nox.Session) -> None:
    """The main job: build the pinned project's wheels for this machine, repair and test
    them, and leave them in wheelhouse/ with a build record and log.

    Extra arguments go to `python -m multibuild build`, e.g. `nox -s build -- --python 3.12`.
    """
    session.install("-e", ".")
    session.run("python", "-m", "multibuild", "build", "--install-system-deps", *session.posargs)
    # The container follows from the branch and the event (docs/upload.md); by hand on a
    # fresh machine that is the local pre-release directory, with no credentials needed.
    session.run("python", "-m", "multibuild", "upload", "wheelhouse")


@nox.session
def ci(session: nox.Session) -> None:
    """One CI job, as CI runs it (`python -m multibuild ci`): `nox -s ci -- cp312-manylinux_x86_64`
    builds, repairs, tests and uploads it on this machine with the same steps and hooks;
    `nox -s ci -- --list` shows the jobs and which this machine can run; `-- JOB --dry-run` the
    plan. Outside CI the engine builds on the host; `-- JOB --builder cibuildwheel` runs CI's
    cibuildwheel commands in the local image made from Debian packages (podman or docker).
    """
    session.install("-e", ".")
    args = list(session.posargs)
    if args and not args[0].startswith("-"):
        args = ["--job", *args]
    session.run("python", "-m", "multibuild", "ci", "--install-system-deps", *args)


@nox.session
def tests(session: nox.Session) -> None:
    """The test suite: tests/unit (in-process, under a minute), tests/integration (real builds
    and repairs), tests/servers (real servers on 127.0.0.1). `-- tests/unit` runs one suite;
    MB_REQUIRE_SERVERS=1 (CI) fails a test skipped for a missing server or tool."""
    session.install("-e", ".[test]")
    session.run("pytest", *session.posargs)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff (lint and format), mypy --strict (the package, the tests, the benchmarks) and
    import-linter (dependencies point down: pyproject.toml [tool.importlinter])."""
    session.install("-e", ".[lint]")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
    session.run("mypy")
    session.run("lint-imports")


@nox.session
def bench(session: nox.Session) -> None:
    """Benchmarks (not part of the tests): figures printed as ratios measured in one run."""
    session.install("-e", ".[test]")
    scripts = session.posargs or ["bench/bench_pipeline.py"]
    for script in scripts:
        session.run("python", script)


@nox.session(name="release-status")
def release_status(session: nox.Session) -> None:
    """The matrix vs the release container: `nox -s release-status -- 1.17.1 [-u URL]`;
    fails until every wheel is there (docs/release.md)."""
    session.install("-e", ".")
    session.run("python", "scripts/release-status", *session.posargs)


@nox.session(name="set-build-commit")
def set_build_commit(session: nox.Session) -> None:
    """BUILD_COMMIT in every CI config and settings.toml: `nox -s set-build-commit -- v1.17.2`
    (`-- --daily REF` for the nightly commit, `-- --check` to check)."""
    session.install("-e", ".")
    session.run("python", "scripts/set-build-commit", *session.posargs)


@nox.session(name="check-config")
def check_config(session: nox.Session) -> None:
    """The CI configs against settings.toml (`-- --write` regenerates them)."""
    session.install("-e", ".")
    session.run("python", "-m", "multibuild", "check-config", *session.posargs)
