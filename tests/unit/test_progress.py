"""wheel-uploader's progress: a bar (multibuild.console.Transfer, rich) on a terminal, a line
per finished file with -v otherwise."""

from __future__ import annotations

import io

from multibuild import console


def test_progress_bar_on_a_terminal() -> None:
    stream = io.StringIO()
    progress = console.Transfer(2, 4 << 20, stream=stream, enabled=True)
    progress.advance(2 << 20)
    progress.finished("a.whl", "downloaded")
    progress.advance(2 << 20)
    progress.finished("b.whl", "downloaded")
    progress.close()
    shown = stream.getvalue()
    assert "━" in shown  # rich's bar
    assert "2/2 files" in shown and "4.0/4.0 MiB" in shown
    assert "a.whl" not in shown  # the bar counts; -v names the files


def test_a_line_per_file_with_verbose_only() -> None:
    stream = io.StringIO()
    console.Transfer(1, 10, stream=stream, enabled=False).finished("a.whl", "kept")
    assert stream.getvalue() == ""
    console.configure(level=console.Level.VERBOSE)
    try:
        console.Transfer(1, 10, stream=stream, enabled=False).finished("a.whl", "kept")
    finally:
        console.configure()
    assert stream.getvalue() == "  kept: a.whl\n"


def test_no_bar_off_a_terminal_or_with_quiet() -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    terminal = Terminal()
    console.configure(level=console.Level.QUIET)
    try:
        quiet = console.Transfer(1, 10, stream=terminal)
        quiet.advance(10)
        quiet.close()
    finally:
        console.configure()
    assert terminal.getvalue() == ""
    plain = io.StringIO()
    normal = console.Transfer(1, 10, stream=plain)
    normal.advance(10)
    normal.close()
    assert plain.getvalue() == ""
    shown = console.Transfer(1, 10, stream=terminal)
    shown.advance(10)
    shown.close()
    assert "0/1 files" in terminal.getvalue() and "10/10 bytes" in terminal.getvalue()
