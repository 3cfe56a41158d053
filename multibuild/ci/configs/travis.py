"""Travis CI: the Linux jobs (in manylinux containers). Travis ended macOS support on
2025-03-31 (its newest image, xcode14.2, was Intel): macOS wheels come from GitHub Actions."""

from __future__ import annotations

from typing import Any

from multibuild.ci.configs.base import (
    BUILD_CACHE_PATHS,
    ENGINE_PYTHON,
    Provider,
    commit_lines,
    render_template,
    secure_value,
    upload_note,
)
from multibuild.settings import Settings

# Travis runs Linux only: its macOS support ended on 2025-03-31 (and its newest image,
# xcode14.2, is Intel). macOS wheels come from GitHub Actions.
TRAVIS_DIST = "noble"


class Travis(Provider):
    name = "travis"
    path = ".travis.yml"
    oses = ("linux",)

    def render(self, settings: Settings) -> str:
        entries = []
        for job in self.jobs(settings):
            lines = [
                f"    - name: {job.id}",
                "      os: linux",
                f"      dist: {TRAVIS_DIST}",
                f"      arch: {'arm64' if job.plat == 'aarch64' else 'amd64'}",
                "      services: docker",
                "      language: python",
                f'      python: "{ENGINE_PYTHON}"',
                f"      env: MB_JOB={job.id}",
            ]
            entries.append("\n".join(lines))
        secure = "\n".join(f'    - secure: "{secure_value(v)}"' for v in settings.ci.travis_secure)
        return render_template(
            "travis.yml",
            commits=commit_lines(settings, "    ", travis=True),
            secure=secure or "    # (none yet)",
            jobs="\n".join(entries),
            upload_note=upload_note(settings, "travis"),
            cache_paths="\n".join(f"    - {path}" for path in BUILD_CACHE_PATHS),
        )

    def job_ids(self, data: Any) -> list[str]:
        found = []
        for job in (data.get("jobs") or {}).get("include") or []:
            env = dict(w.partition("=")[::2] for w in str(job.get("env", "")).split() if "=" in w)
            found.append(env.get("MB_JOB", f"(a {job.get('os', 'linux')} job without MB_JOB)"))
        return found
