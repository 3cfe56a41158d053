"""`python -m multibuild ci`: run one job of the CI matrix, as every CI config does.

The job comes from --job or MB_JOB (cibuildwheel's identifier: cp311-manylinux_x86_64); the
CI environment (Travis, Appveyor, GitHub Actions, or none) decides the commit (cron builds
build DAILY_COMMIT) and where the wheels go (pull requests: nowhere). On CI the job builds
with cibuildwheel; on this machine with the engine's own pipeline and the same hooks, which
reproduces a CI job without a container engine. --list shows the jobs and which of them this
machine can run; --dry-run prints the plan and does nothing.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from multibuild import cijob
from multibuild.errors import ConfigurationError
from multibuild.jobs import jobs, runnable_here
from multibuild.options import TEST_LEVELS
from multibuild.settings import BUILDERS, Settings, settings_from

NAME = "ci"


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        NAME,
        help="run one CI job: build, repair, test, upload by branch (as CI does)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--job", help="the job's id (default: MB_JOB); see --list")
    parser.add_argument("--list", action="store_true", help="list the jobs and exit")
    parser.add_argument(
        "--dry-run", action="store_true", help="print the job's plan (steps, commit, container)"
    )
    parser.add_argument("--json", action="store_true", help="--list/--dry-run as JSON")
    parser.add_argument(
        "--builder",
        choices=BUILDERS,
        help="cibuildwheel (CI's default) or host (the engine on this machine; the default "
        "outside CI)",
    )
    parser.add_argument(
        "--nightly",
        action="store_true",
        help="by hand: run the job as the nightly (cron) build runs it (DAILY_COMMIT)",
    )
    parser.add_argument("--no-upload", action="store_true", help="build, repair, test only")
    parser.add_argument("--settings", type=Path, help="settings.toml (default: found)")
    parser.add_argument("--repo", help="git URL, local path or mirror of the project")
    parser.add_argument("--sdist", help="build from an sdist (path or NAME==VERSION)")
    parser.add_argument("--mirror", action="append", metavar="DIR", help="tarball mirror")
    parser.add_argument("--wheelhouse", help="where wheels, records and logs go")
    parser.add_argument("--work-dir", help="build tree, prefix, venvs (default .multibuild)")
    parser.add_argument("--test-level", choices=TEST_LEVELS, default="fast")
    parser.add_argument(
        "--install-system-deps", action="store_true", help="apt-get install missing tools"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show every output line")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    settings = settings_from(args.settings)
    if settings is None:
        raise ConfigurationError("no settings.toml here or above; --settings PATH")
    if args.list:
        return _list(settings, args)
    plan = cijob.plan_from_args(settings, args)
    if args.dry_run:
        print(json.dumps(plan.to_json(), indent=2) if args.json else plan.describe())
        return 0
    print(plan.describe(), flush=True)
    return cijob.run_job(plan, settings, args)


def _list(settings: Settings, args: argparse.Namespace) -> int:
    builder = args.builder or "host"
    rows = []
    for job in jobs(settings):
        runnable = runnable_here(job, builder, has_python=cijob._has_python)
        rows.append((job, runnable))
    if args.json:
        print(json.dumps([
            {"job": j.id, "os": j.os, "plat": j.plat, "python": j.python,
             "github_runner": j.github_runner, "runs_here": r.ok, "reason": r.reason}
            for j, r in rows
        ], indent=2))  # fmt: skip
        return 0
    width = max(len(j.id) for j, _ in rows)
    print(f"{'job':<{width}}  here  (builder {builder}; `nox -s ci -- JOB` runs one)")
    for job, runnable in rows:
        print(f"{job.id:<{width}}  {'yes ' if runnable.ok else 'no  '}  {runnable.reason}")
    return 0
