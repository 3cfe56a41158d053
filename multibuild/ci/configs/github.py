"""GitHub Actions: every job of the matrix."""

from __future__ import annotations

from typing import Any

from multibuild.ci.configs.base import ENGINE_PYTHON, Provider, commit_lines, render_template
from multibuild.publish.containers.credentials import UPLOAD_CREDENTIALS
from multibuild.settings import Settings

NOT_A_PULL_REQUEST = "github.event_name != 'pull_request'"


class GitHub(Provider):
    path = ".github/workflows/wheels.yml"
    oses = ("linux", "macos", "windows")

    def render(self, settings: Settings) -> str:
        include = [
            f'          - {{job: {job.id}, runner: {job.github_runner}, python: "{job.python}"}}'
            for job in self.jobs(settings)
        ]
        credentials = [
            f"          {name}: ${{{{ {NOT_A_PULL_REQUEST} && secrets.{name} || '' }}}}"
            for name in UPLOAD_CREDENTIALS
        ]
        return render_template(
            "github.yml",
            commits=commit_lines(settings, "  "),
            schedule=settings.ci.schedule,
            jobs="\n".join(include),
            engine_python=ENGINE_PYTHON,
            credentials="\n".join(credentials),
        )

    def job_ids(self, data: Any) -> list[str]:
        build = ((data.get("jobs") or {}).get("build") or {}).get("strategy") or {}
        return [
            str(job.get("job", "(a job without `job`)"))
            for job in (build.get("matrix") or {}).get("include") or []
        ]

    def commit_values(self, data: Any) -> dict[str, Any]:
        return dict(data.get("env") or {})
