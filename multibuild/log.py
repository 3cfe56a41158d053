"""Build output: every line goes to the build's log file; the console gets folded groups on CI
(GitHub Actions, Travis) and, locally, progress lines unless --verbose asks for everything.
A Logger is the sink multibuild.util.cmd.stream writes a command's output to. Every line, to
the file and to the console, goes through the run's Redactor first: a hook that prints a
secret leaves `***` in the log.
"""

from __future__ import annotations

import re
import sys
import threading
import time
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TextIO

from multibuild.util.durations import format_duration
from multibuild.util.secrets import NO_SECRETS, Redactor

# Where a tool says how far it is: ninja's `[498/1259]`, pytest's `[ 24%]`.
_PROGRESS_MARK = re.compile(r"\[\s*\d+(?:/\d+|%)\]")


def shorten(line: str, width: int = 70) -> str:
    """`line` cut to `width` characters, keeping a progress mark wherever it stands (pytest
    puts its percentage at the end of a line of dots)."""
    if len(line) <= width:
        return line
    marks = list(_PROGRESS_MARK.finditer(line))
    mark = marks[-1] if marks else None
    if mark is None or mark.end() <= width - 3:
        return line[: width - 3] + "..."
    head = max(width - len(mark.group()) - 4, 0)
    return f"{line[:head]}... {mark.group()}"


class Logger:
    """One per build invocation. Thread-safe: subprocess output arrives from reader threads."""

    def __init__(
        self,
        *,
        verbose: bool = False,
        ci: str | None = None,
        stream: TextIO | None = None,
        redact: Redactor = NO_SECRETS,
    ) -> None:
        # The CI provider this runs on (multibuild.ci.providers), None by hand: GitHub Actions
        # and Travis get folded groups, and on any CI everything is shown (in folds), since
        # the log file is not always at hand there.
        self.ci = ci
        self.stream = stream or sys.stdout
        self.echo_output = verbose or ci is not None
        self.redact = redact
        self._file: TextIO | None = None
        self._lock = threading.Lock()
        self._pending: list[str] = []  # lines written before the log file was opened
        self.tail: deque[str] = deque(maxlen=40)  # last lines of the current command

    def open_file(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file = path.open("a", encoding="utf-8", errors="replace")
        with self._lock:
            self._file.writelines(self._pending)
            self._pending.clear()
            self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    def _to_file(self, text: str) -> None:
        if self._file is None:
            self._pending.append(text)
        else:
            self._file.write(text)
            self._file.flush()

    def _to_console(self, text: str) -> None:
        self.stream.write(text)
        self.stream.flush()

    def info(self, message: str) -> None:
        message = self.redact(message)
        with self._lock:
            self._to_file(message + "\n")
            self._to_console(message + "\n")

    def warning(self, message: str) -> None:
        text = f"::warning::{message}" if self.ci == "github" else f"warning: {message}"
        self.info(text)

    def output(self, line: str) -> None:
        """A line of a command's output."""
        line = self.redact(line.rstrip("\r\n"))
        with self._lock:
            self.tail.append(line)
            self._to_file(line + "\n")
            if self.echo_output:
                self._to_console(line + "\n")

    def progress(self, label: str, elapsed: float) -> None:
        if self.echo_output:
            return
        last = shorten(self.tail[-1].strip()) if self.tail else ""
        with self._lock:
            self._to_console(f"    ... {label}: {format_duration(elapsed)} {last}\n")

    @contextmanager
    def group(self, title: str) -> Iterator[None]:
        """A named, timed step; folded on CI."""
        start = time.monotonic()
        title = self.redact(title)
        fold_id = "".join(c if c.isalnum() else "_" for c in title.lower())[:40]
        with self._lock:
            self._to_file(f"==> {title}\n")
            if self.ci == "github":
                self._to_console(f"::group::{title}\n")
            elif self.ci == "travis":
                self._to_console(f"travis_fold:start:{fold_id}\r\033[0K==> {title}\n")
            else:
                self._to_console(f"==> {title}\n")
        ok = False
        try:
            yield
            ok = True
        finally:
            elapsed = format_duration(time.monotonic() - start)
            status = "done" if ok else "FAILED"
            with self._lock:
                self._to_file(f"<== {title}: {status} in {elapsed}\n")
                if self.ci == "github":
                    self._to_console("::endgroup::\n")
                elif self.ci == "travis":
                    self._to_console(f"travis_fold:end:{fold_id}\r\033[0K")
                self._to_console(f"    {title}: {status} in {elapsed}\n")
