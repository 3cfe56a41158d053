"""Running commands with their output streamed to a sink (the build log), and quick queries."""

from __future__ import annotations

import shlex
import subprocess
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from multibuild.util.isolation import isolated

Command = Sequence[str | Path]
# A quiet command reports progress this often, so a watcher (or Travis' 10-minute
# no-output rule) knows it is alive.
PROGRESS_INTERVAL = 30.0


class OutputSink(Protocol):
    """Where a command's output goes (multibuild.log.Logger is one)."""

    tail: deque[str]

    def output(self, line: str) -> None: ...

    def progress(self, label: str, elapsed: float) -> None: ...


@dataclass(frozen=True)
class Finished:
    returncode: int
    tail: str  # the last lines of output, for error messages
    duration: float


def display(command: Command) -> str:
    return shlex.join(str(part) for part in command)


def stream(
    command: Command,
    sink: OutputSink,
    *,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    label: str | None = None,
) -> Finished:
    """Run `command`, stream its merged stdout/stderr into `sink`, report progress while it
    runs. Never raises on a non-zero exit; the caller turns that into the right error."""
    args = [str(part) for part in command]
    sink.output(f"+ {display(args)}" + (f"   (in {cwd})" if cwd else ""))
    sink.tail.clear()
    start = time.monotonic()
    try:
        process = subprocess.Popen(
            isolated(args),
            cwd=cwd,
            env=dict(env) if env is not None else None,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
        )
    except FileNotFoundError:
        sink.output(f"command not found: {args[0]}")
        return Finished(127, f"command not found: {args[0]}", 0.0)
    assert process.stdout is not None
    stdout = process.stdout

    def pump() -> None:
        for line in stdout:
            sink.output(line)

    reader = threading.Thread(target=pump, daemon=True)
    reader.start()
    name = label or Path(args[0]).name
    while True:
        try:
            process.wait(timeout=PROGRESS_INTERVAL)
            break
        except subprocess.TimeoutExpired:
            sink.progress(name, time.monotonic() - start)
        except KeyboardInterrupt:
            process.terminate()
            process.wait()
            raise
    reader.join()
    return Finished(process.returncode, "\n".join(sink.tail), time.monotonic() - start)


@dataclass(frozen=True)
class Result:
    """A command run to its end with its output captured."""

    command: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str
    started: bool = True  # False: the command could not start (stderr says why)

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def failure(self, shown: str | None = None) -> str:
        """The one way a failed command is described: the command, its exit status and the
        end of its output."""
        name = shown or display(self.command)
        parts = (part.rstrip() for part in (self.stdout, self.stderr))
        output = excerpt("\n".join(part for part in parts if part))
        return f"`{name}` failed with exit status {self.returncode}" + (
            f":\n{output}" if output.strip() else ""
        )


def run(
    command: Command,
    *,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    errors: str = "replace",
) -> Result:
    """Run `command` to its end, stdout and stderr captured as text (undecodable bytes
    handled by `errors`). Never raises on a non-zero exit; a command that cannot start (not
    installed, no such `cwd`) is exit status 127, as in a shell. A timeout raises
    subprocess.TimeoutExpired (the child is killed)."""
    args = tuple(str(part) for part in command)
    try:
        done = subprocess.run(
            args,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            capture_output=True,
            text=True,
            encoding="utf-8",
            errors=errors,
            check=False,
            timeout=timeout,
        )
    except OSError as error:
        return Result(args, 127, "", f"cannot run {args[0]}: {error}", started=False)
    return Result(args, done.returncode, done.stdout, done.stderr)


def check(
    command: Command,
    *,
    error: Callable[[str], Exception],
    shown: str | None = None,
    cwd: Path | None = None,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
) -> str:
    """Run `command` and return its stdout; a failure raises `error` with Result.failure's
    message (`shown` names the command there instead of its full argument list)."""
    result = run(command, cwd=cwd, env=env, timeout=timeout)
    if not result.ok:
        raise error(result.failure(shown))
    return result.stdout


def capture(command: Command, *, env: Mapping[str, str] | None = None) -> str:
    """Quick query commands (versions, git rev-parse): stdout as text, '' if it fails."""
    try:
        done = subprocess.run(
            [str(part) for part in command],
            capture_output=True,
            text=True,
            env=dict(env) if env is not None else None,
            check=False,
            timeout=60,
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return done.stdout.strip() if done.returncode == 0 else ""


def excerpt(output: str, lines: int = 15) -> str:
    """The last lines of a command's output for an error message, indented. A Python
    traceback printed by the tool is cut down to its exception line: the engine shows
    tracebacks only when asked (--debug-traceback), and the full text is in the log."""
    kept: list[str] = []
    in_traceback = False
    for line in output.rstrip().splitlines():
        if line.lstrip().startswith("Traceback (most recent call last)"):
            in_traceback = True
            continue
        if in_traceback:
            if line[:1].isspace() or not line.strip():
                continue
            in_traceback = False
        kept.append(line)
    return "\n".join("    " + line for line in kept[-lines:])
