"""The one voice of every command outside a build's own output (that is multibuild.log's
Logger, which also writes the build's log file).

Levels, the same on every command (`-q`/`-v`, added by multibuild.cli):
- `result`: what the command was asked for (JSON, a table, a plan, an image reference): on
  stdout at every level, byte for byte, since scripts parse it.
- `info`: what is being done (stdout), silenced by `-q`.
- `detail`: each file, each step (stdout), only with `-v`.
- `warning`, `error`: stderr at every level.
- `Transfer`: a progress bar for long downloads (rich) on a terminal; `wait`: a spinner
  while a command polls.

Every line goes through the run's redactor first (multibuild.cli sets it with `configure`),
so a secret in a message leaves `***`. The streams are looked up at each call (sys.stdout then
is the redacting stream of multibuild.util.secrets, or a test's capture). This module sits at
the bottom of the layers and imports nothing of multibuild, so every module may speak. rich is
imported where it draws: a clone without the engine's dependencies still says what is missing.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import IntEnum
from typing import TYPE_CHECKING, TextIO

if TYPE_CHECKING:
    from rich.progress import Progress


class Level(IntEnum):
    QUIET = 0
    NORMAL = 1
    VERBOSE = 2


def _unchanged(text: str) -> str:
    return text


@dataclass
class _State:
    level: Level = Level.NORMAL
    redact: Callable[[str], str] = field(default=_unchanged)


_state = _State()


def configure(*, level: Level = Level.NORMAL, redact: Callable[[str], str] | None = None) -> None:
    """The run's level and redactor (once per command, by multibuild.cli)."""
    _state.level = level
    _state.redact = redact or _unchanged


def level_from(*, verbose: bool, quiet: bool) -> Level:
    return Level.VERBOSE if verbose else Level.QUIET if quiet else Level.NORMAL


def level() -> Level:
    return _state.level


def _write(stream: TextIO, text: str) -> None:
    stream.write(_state.redact(text) + "\n")
    stream.flush()


def result(text: str) -> None:
    """What the command was asked for: stdout at every level."""
    _write(sys.stdout, text)


def info(text: str, *, to_stderr: bool = False) -> None:
    """What is being done: stdout (stderr where stdout carries a result a script reads),
    unless -q."""
    if _state.level >= Level.NORMAL:
        _write(sys.stderr if to_stderr else sys.stdout, text)


def detail(text: str) -> None:
    """Each file, each step: stdout with -v."""
    if _state.level >= Level.VERBOSE:
        _write(sys.stdout, text)


def warning(text: str) -> None:
    """stderr at every level; `text` as given (callers spell `warning:` in their own form)."""
    _write(sys.stderr, text)


def error(text: str) -> None:
    """stderr at every level."""
    _write(sys.stderr, text)


def wait(message: str, seconds: float, *, to_stderr: bool = False) -> None:
    """Sleep `seconds`, saying why: a spinner with `message` (rich) on a terminal, the
    `message` as an info line otherwise (a CI log keeps one line per poll)."""
    stream = sys.stderr if to_stderr else sys.stdout
    if _state.level >= Level.NORMAL and stream.isatty():
        from rich.console import Console  # here: a bare clone's error says what is missing

        shown = Console(file=stream, force_terminal=True)
        with shown.status(_state.redact(message)):
            time.sleep(seconds)
    else:
        info(message, to_stderr=to_stderr)
        time.sleep(seconds)


class Transfer:
    """Progress of a long transfer of `items` files, `total` bytes: a bar (rich) on a
    terminal unless -q; without one, a line per finished file with -v."""

    def __init__(
        self,
        items: int,
        total: int,
        *,
        stream: TextIO | None = None,
        enabled: bool | None = None,
    ) -> None:
        self.stream = stream or sys.stderr
        if enabled is None:
            enabled = self.stream.isatty() and _state.level >= Level.NORMAL
        self.items, self.total = items, total
        self.done_items = 0
        self._lock = threading.Lock()
        self._bar: Progress | None = None
        if enabled:
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                DownloadColumn,
                Progress,
                TextColumn,
                TransferSpeedColumn,
            )

            self._bar = Progress(
                BarColumn(),
                TextColumn("{task.fields[files]} files"),
                DownloadColumn(binary_units=True),
                TransferSpeedColumn(),
                console=Console(file=self.stream, force_terminal=True),
            )
            self._task = self._bar.add_task("transfer", total=total or None, files=f"0/{items}")
            self._bar.start()

    def advance(self, nbytes: int) -> None:
        if self._bar is not None:
            self._bar.advance(self._task, nbytes)

    def finished(self, name: str, how: str) -> None:
        with self._lock:
            self.done_items += 1
        if self._bar is None:
            if _state.level >= Level.VERBOSE:
                _write(self.stream, f"  {how}: {name}")
            return
        self._bar.update(self._task, files=f"{self.done_items}/{self.items}", refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
