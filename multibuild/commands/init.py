"""A new wheels repository for another project in DIR: settings.toml (name, repo, commit,
matrix), a commented config.sh, the CI configs generated from them (GitHub Actions, Travis,
Appveyor, cibuildwheel.toml), a noxfile and README with the two commands, and a pinned copy
of the engine (multibuild/, scripts/ and a pyproject.toml that installs them: what the CI's
`pip install -e .` needs). Then: edit config.sh, `nox -s build`, commit, push.

`--engine-only DIR` refreshes the engine's copy (and its pyproject.toml) in an existing wheels
repository and regenerates its CI configs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from multibuild import console
from multibuild.ci import configs, scaffold
from multibuild.errors import ConfigurationError
from multibuild.settings import load_settings
from multibuild.util.secrets import Redactor


def _platforms(value: str) -> tuple[str, ...]:
    return tuple(p for p in value.replace(",", " ").split() if p)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir", type=Path, metavar="DIR", help="the new repository (absent or empty)"
    )
    parser.add_argument("--name", help="the project's name on the package index")
    parser.add_argument("--repo", help="the project's git URL (or a local path or mirror)")
    parser.add_argument("--commit", help="what CI builds: a tag, branch or full hash")
    parser.add_argument(
        "--sdist",
        metavar="NAME==VERSION",
        help="build a release's sdist from the package index instead of a git source "
        "(excludes --repo/--commit)",
    )
    parser.add_argument(
        "--daily-commit", default="main", help="what nightly builds build (default: main)"
    )
    parser.add_argument(
        "--python",
        type=_platforms,
        default=("3.11", "3.12", "3.13", "3.14"),
        help="CPython versions, comma-separated (default: 3.11,3.12,3.13,3.14)",
    )
    parser.add_argument(
        "--linux", type=_platforms, default=("x86_64",), help="Linux PLATs (default: x86_64)"
    )
    parser.add_argument(
        "--macos",
        type=_platforms,
        default=(),
        help="macOS PLATs, e.g. x86_64,arm64 (default: none)",
    )
    parser.add_argument(
        "--windows", type=_platforms, default=(), help="Windows PLATs, e.g. AMD64 (default: none)"
    )
    parser.add_argument(
        "--test-sources",
        type=_platforms,
        default=(),
        help="paths of the project's source the tests need, comma-separated (e.g. tests)",
    )
    parser.add_argument(
        "--github",
        default="",
        metavar="OWNER/NAME",
        help="the new repository on GitHub, whose CI alone uploads (default: OWNER/NAME-wheels, "
        "to be edited in settings.toml)",
    )
    parser.add_argument(
        "--engine-only",
        action="store_true",
        help="refresh multibuild/ and scripts/ in an existing wheels repository DIR, regenerate "
        "its CI configs",
    )


def check_arguments(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.engine_only:
        return
    if args.sdist and (args.repo or args.commit):
        parser.error("--sdist excludes --repo and --commit (one source)")
    if not args.name or not (args.sdist or (args.repo and args.commit)):
        parser.error("--name and either --repo and --commit or --sdist NAME==VERSION are needed")


def run(args: argparse.Namespace, redactor: Redactor) -> int:
    started = time.monotonic()
    dest: Path = args.dir.resolve()
    if args.engine_only:
        if not (dest / "settings.toml").is_file():
            raise ConfigurationError(f"{dest} has no settings.toml: not a wheels repository")
        name = load_settings(dest / "settings.toml").pinned().project.name
        (dest / "pyproject.toml").write_text(scaffold.pyproject_toml(name), encoding="utf-8")
        written = ["pyproject.toml", *scaffold.copy_engine(dest)]
        written += [w.path for w in configs.write_configs(dest) if w.changed]
    else:
        new = scaffold.NewRepository(
            name=args.name,
            repo=args.repo or "",
            commit=args.commit or "",
            sdist=args.sdist or "",
            daily_commit=args.daily_commit,
            python=args.python,
            linux=args.linux,
            macos=args.macos,
            windows=args.windows,
            github=args.github,
            test_sources=args.test_sources,
        )
        written = scaffold.create(dest, new)
    for path in written:
        console.info(f"wrote: {path}")
    console.info(f"{dest}: done in {time.monotonic() - started:.1f} s")
    if not args.engine_only:
        console.info(
            "next: edit config.sh (pre_build, run_tests) and settings.toml, then\n"
            f"  cd {dest} && nox -s build\n"
            "  nox -s ci -- --list\n"
            "and commit everything (the engine's copy too) to the new repository"
        )
    return 0
