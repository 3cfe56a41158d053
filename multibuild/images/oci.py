"""The container engine, docker or podman: which one answers here, the settings it runs with,
and its failures told as one clear error (exit code 13) with what to do.

podman runs with a containers.conf of ours unless the user names one (CONTAINERS_CONF):
podman's default ulimits cannot be set where the engine runs without that privilege
("setrlimit RLIMIT_NOFILE: Operation not permitted"), and the crun runtime refuses cgroups
in hybrid mode, so ulimits are left as they are and runc is the runtime when installed. The
file is written under the cache directory at run time; nothing under /etc changes.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from multibuild.errors import ContainerError
from multibuild.util.cmd import Result, run

ENGINES = ("docker", "podman")
CONTAINERS_CONF = "containers.conf"
# What a failed container start says, by engine and runtime; cibuildwheel's own failure when
# the container shell died at once.
ENGINE_FAILURES = (
    "Failed to read the return code, the container shell has exited",
    "OCI runtime",
    "OCI permission denied",
    "runc create failed",
    "crun:",
    "error setting rlimit",
    "Cannot connect to the Docker daemon",
    "pinging container registry",
    "image not known",
    "No such image",
    "manifest unknown",
    "not found. An OCI exe like Docker or Podman is required",
)
INSTALL_HINT = {
    "podman": "apt-get install podman runc catatonit (Debian/Ubuntu)",
    "docker": "install Docker and start its daemon",
}


def containers_conf(runc: bool) -> str:
    text = (
        "# Written by multibuild (multibuild/images/oci.py); CONTAINERS_CONF names it.\n"
        "[containers]\n"
        "# podman's default nofile/nproc ulimits cannot be set everywhere\n"
        "default_ulimits = []\n"
    )
    if runc:
        text += (
            '\n[engine]\n# crun refuses cgroups in hybrid mode; runc runs there\nruntime = "runc"\n'
        )
    return text


@dataclass(frozen=True)
class Engine:
    """A container engine that answered, and the environment its commands run with."""

    name: str
    executable: str
    environ: Mapping[str, str] = field(default_factory=dict)  # added to the caller's

    def command(self, *args: str | Path) -> list[str]:
        return [self.executable, *(str(a) for a in args)]

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        return {**base, **self.environ}

    def run(self, *args: str | Path, base: Mapping[str, str], timeout: float = 600) -> Result:
        """A quick engine command, captured (long ones are streamed by the caller)."""
        try:
            done = run(self.command(*args), env=self.env(base), timeout=timeout)
        except subprocess.TimeoutExpired as error:
            raise ContainerError(f"`{self.name} {args[0]}` did not run: {error}") from None
        if not done.started:
            raise ContainerError(f"`{self.name} {args[0]}` did not run: {done.stderr}")
        return done


def engine_environ(name: str, environ: Mapping[str, str], config_dir: Path) -> dict[str, str]:
    """What the engine's commands need besides `environ`: for podman, our containers.conf
    unless the user named one."""
    if name != "podman" or environ.get("CONTAINERS_CONF"):
        return {}
    config_dir.mkdir(parents=True, exist_ok=True)
    path = config_dir / CONTAINERS_CONF
    text = containers_conf(runc=shutil.which("runc", path=environ.get("PATH")) is not None)
    if not path.is_file() or path.read_text() != text:
        partial = path.with_name(f".{path.name}.part")
        partial.write_text(text)
        partial.replace(path)
    return {"CONTAINERS_CONF": str(path)}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else ""


def probe(engine: Engine, base: Mapping[str, str]) -> str | None:
    """None when the engine answers (`ENGINE info`), else why not."""
    try:
        done = run(engine.command("info"), env=engine.env(base), timeout=60)
    except subprocess.TimeoutExpired as error:
        return f"`{engine.name} info` did not run: {error}"
    if not done.started:
        return f"`{engine.name} info` did not run: {done.stderr}"
    if done.returncode != 0:
        return f"`{engine.name} info` failed: {_last_line(done.stderr or done.stdout)}"
    return None


Which = Callable[[str], str | None]


def find_engine(
    preferred: str | None,
    environ: Mapping[str, str],
    config_dir: Path | None,
    *,
    which: Which | None = None,
) -> Engine:
    """The engine to use: `preferred` (docker or podman), else the first of docker and podman
    that answers; ContainerError saying what is wrong and what to do. `config_dir` is where
    podman's containers.conf goes (None: only asking whether it answers)."""
    if preferred is not None and preferred not in ENGINES:
        raise ContainerError(f"--container-engine is docker or podman, not {preferred!r}")
    look = which or (lambda name: shutil.which(name, path=environ.get("PATH")))
    problems = []
    for name in (preferred,) if preferred else ENGINES:
        executable = look(name)
        if executable is None:
            problems.append(f"{name} is not installed ({INSTALL_HINT[name]})")
            continue
        settings = engine_environ(name, environ, config_dir) if config_dir else {}
        engine = Engine(name, executable, settings)
        problem = probe(engine, environ)
        if problem is None:
            return engine
        problems.append(problem)
    raise ContainerError(
        "no container engine answers here: "
        + "; ".join(problems)
        + ". The container route (--builder cibuildwheel) needs one; --builder host builds "
        "on this machine without one"
    )


def answering_engine(environ: Mapping[str, str], preferred: str | None = None) -> str | None:
    """The name of the engine find_engine would use, or None (for plans: never raises)."""
    try:
        return find_engine(preferred, environ, None).name
    except ContainerError:
        return None


# -- images ------------------------------------------------------------------------------------


def inspect(engine: Engine, reference: str, base: Mapping[str, str]) -> dict[str, Any] | None:
    """The engine's description of a local image, or None when it has no such image."""
    done = engine.run("image", "inspect", reference, base=base, timeout=120)
    if done.returncode != 0:
        return None
    try:
        found = json.loads(done.stdout)
    except ValueError:
        return None
    return found[0] if isinstance(found, list) and found and isinstance(found[0], dict) else None


def labels_of(description: Mapping[str, Any]) -> dict[str, str]:
    config = description.get("Config") or {}
    labels = config.get("Labels") if isinstance(config, dict) else None
    if not isinstance(labels, dict):
        labels = description.get("Labels") if isinstance(description.get("Labels"), dict) else {}
    return {str(k): str(v) for k, v in (labels or {}).items()}


def is_local_reference(reference: str) -> bool:
    """An image only this machine can have: no registry serves `localhost/...`."""
    return reference.startswith("localhost/")


def require_image(engine: Engine, reference: str, base: Mapping[str, str]) -> None:
    """ContainerError unless the engine has the image (only asked of local references)."""
    if inspect(engine, reference, base) is None:
        raise ContainerError(
            f"image {reference} is not in {engine.name}'s storage: "
            "`python -m multibuild image build` builds the local image "
            "(`--image local` builds or reuses it before the build)"
        )


def preflight(engine: Engine, reference: str, base: Mapping[str, str]) -> None:
    """Start one container from the image, so that a runtime that refuses is one clear error
    before any build starts."""
    done = engine.run(
        "run", "--rm", "--network=none", reference, "/bin/true", base=base, timeout=300
    )
    if done.returncode != 0:
        raise ContainerError(
            f"{engine.name} cannot start a container from {reference}: "
            f"{_last_line(done.stderr or done.stdout) or f'exit status {done.returncode}'}. "
            + runtime_hint(engine)
        )


def runtime_hint(engine: Engine) -> str:
    if engine.name != "podman":
        return "Check that the engine can run containers here (`docker run --rm IMAGE true`)."
    conf = engine.environ.get("CONTAINERS_CONF")
    if conf:
        return (
            f"multibuild runs podman with CONTAINERS_CONF={conf} (default_ulimits = [], and "
            "runtime runc when installed: apt-get install runc); see `podman info` for the runtime"
        )
    return (
        "Your CONTAINERS_CONF replaces multibuild's settings: it needs "
        "`[containers] default_ulimits = []` where ulimits cannot be set, and "
        '`[engine] runtime = "runc"` where crun refuses cgroups in hybrid mode'
    )


def engine_failure(output: str) -> str | None:
    """The line of a tool's output that says the container engine failed, if one does."""
    for line in reversed(output.splitlines()):
        if any(marker in line for marker in ENGINE_FAILURES):
            return line.strip()
    return None
