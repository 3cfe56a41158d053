"""Travis CI: the Linux (in manylinux containers) and macOS jobs."""

from __future__ import annotations

import re
import textwrap
from typing import Any

from multibuild.ci.configs.base import (
    ENGINE_PYTHON,
    Provider,
    commit_lines,
    render_template,
    secure_value,
)
from multibuild.ci.jobs import TRAVIS_OSX_IMAGE
from multibuild.settings import Settings


class Travis(Provider):
    path = ".travis.yml"
    oses = ("linux", "macos")

    def render(self, settings: Settings) -> str:
        entries = []
        for job in self.jobs(settings):
            lines = [f"    - name: {job.id}"]
            if job.os == "linux":
                lines += [
                    "      os: linux",
                    "      dist: jammy",
                    f"      arch: {'arm64' if job.plat == 'aarch64' else 'amd64'}",
                    "      services: docker",
                    "      language: python",
                    f'      python: "{ENGINE_PYTHON}"',
                ]
            else:
                lines += [
                    "      os: osx",
                    f"      osx_image: {TRAVIS_OSX_IMAGE}",
                    "      language: shell",
                ]
                note = job.travis_notes()
                if note:
                    lines += [f"      # {line}" for line in textwrap.wrap(note, 88)]
            lines.append(f"      env: MB_JOB={job.id}")
            entries.append("\n".join(lines))
        secure = "\n".join(f'    - secure: "{secure_value(v)}"' for v in settings.ci.travis_secure)
        return render_template(
            "travis.yml",
            commits=commit_lines(settings, "    ", travis=True),
            secure=secure or "    # (none yet)",
            jobs="\n".join(entries),
        )

    def job_ids(self, data: Any) -> list[str]:
        found = []
        for job in (data.get("jobs") or {}).get("include") or []:
            env = dict(w.partition("=")[::2] for w in str(job.get("env", "")).split() if "=" in w)
            found.append(env.get("MB_JOB", f"(a {job.get('os', 'linux')} job without MB_JOB)"))
        return found

    def commit_values(self, data: Any) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for item in (data.get("env") or {}).get("global") or []:
            if isinstance(item, str) and "=" in item:
                key, _, value = item.partition("=")
                values[key.strip()] = value.strip().strip("\"'")
        return values

    def line_pattern(self, key: str) -> re.Pattern[str]:
        return re.compile(rf"^\s*-\s*{key}=[\"']?(?P<value>[^\"'\s#]*)")
