"""Appveyor: the Windows jobs it has machines for (no Windows ARM64 image: win_arm64 comes from
GitHub Actions' windows-11-arm runners)."""

from __future__ import annotations

from typing import Any

from multibuild.ci.configs.base import (
    ENGINE_PYTHON,
    RTOOLS_BIN,
    WINDOWS_TOOLCHAIN,
    Provider,
    commit_lines,
    render_template,
    secure_value,
    upload_note,
)
from multibuild.matrix import Job
from multibuild.settings import Settings

APPVEYOR_IMAGE = "Visual Studio 2022"


class Appveyor(Provider):
    name = "appveyor"
    path = "appveyor.yml"
    oses = ("windows",)

    def runs(self, job: Job) -> bool:
        return job.os == "windows" and job.plat.upper() != "ARM64"

    def render(self, settings: Settings) -> str:
        secure = []
        for entry in settings.ci.appveyor_secure:
            name, _, value = entry.partition("=")
            secure.append(f"    {name}:\n      secure: {secure_value(value)}")
        return render_template(
            "appveyor.yml",
            image=APPVEYOR_IMAGE,
            commits=commit_lines(settings, "    "),
            engine_python="C:\\\\Python" + ENGINE_PYTHON.replace(".", "") + "-x64",
            secure="\n".join(secure),
            jobs="\n".join(f"    - MB_JOB: {job.id}" for job in self.jobs(settings)),
            toolchain="\n".join(f"  - {line}" for line in WINDOWS_TOOLCHAIN),
            rtools_bin=RTOOLS_BIN,
            upload_note=upload_note(settings, "appveyor"),
        )

    def job_ids(self, data: Any) -> list[str]:
        return [
            str(job.get("MB_JOB", "(a job without MB_JOB)"))
            for job in (data.get("environment") or {}).get("matrix") or []
        ]
