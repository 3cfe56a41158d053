"""One voice: multibuild.console's levels, the same -v/-q on every command, the redactor on
every line, and no module that prints past the console."""

from __future__ import annotations

import argparse
import ast
import io
import sys
import time
from pathlib import Path

import pytest

import multibuild
from multibuild import console
from multibuild.cli import _standalone_parser, main, make_parser
from multibuild.commands import COMMANDS
from multibuild.util.secrets import Redactor

PACKAGE = Path(multibuild.__file__).parent
# The two homes of output: a build's (its log file too) and everything else's.
SPEAKERS = {PACKAGE / "log.py", PACKAGE / "console.py"}
TOOLS = ("wheel-uploader", "release-status", "set-build-commit", "trigger-build")


def printing(source: str) -> list[str]:
    """Where `source` writes to the console itself: `print(...)`, `print` passed on (as in
    `echo=print`), `sys.stdout.write`/`sys.stderr.write`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name) and node.id == "print":
            found.append(f"line {node.lineno}: print")
        elif (
            isinstance(node, ast.Attribute)
            and node.attr == "write"
            and isinstance(node.value, ast.Attribute)
            and node.value.attr in ("stdout", "stderr")
            and isinstance(node.value.value, ast.Name)
            and node.value.value.id == "sys"
        ):
            found.append(f"line {node.lineno}: sys.{node.value.attr}.write")
    return found


def test_the_check_finds_each_way_of_printing() -> None:
    assert printing("print('x')") == ["line 1: print"]
    assert printing("def f(echo=print): pass") == ["line 1: print"]
    assert printing("import sys\nsys.stdout.write('x')\nsys.stderr.write('y')") == [
        "line 2: sys.stdout.write",
        "line 3: sys.stderr.write",
    ]
    # A Python program handed to a subprocess as a string is not this process printing.
    assert printing("cmd = ['python', '-c', 'print(1)']\nconsole.info('x')") == []


def test_no_module_prints_outside_the_console() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 50  # the walk sees the package
    found = [
        f"{path.relative_to(PACKAGE.parent)}: {where}"
        for path in modules
        if path not in SPEAKERS
        for where in printing(path.read_text(encoding="utf-8"))
    ]
    assert found == []


def _leaves(parser: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            subs = {id(p): p for p in action.choices.values()}.values()
            return [leaf for sub in subs for leaf in _leaves(sub)]
    return [parser]


def _command_parsers() -> list[tuple[str, argparse.ArgumentParser]]:
    parsers = []
    for name in COMMANDS:
        top = make_parser(name)
        (commands,) = [a for a in top._actions if isinstance(a, argparse._SubParsersAction)]
        parsers += [(name, leaf) for leaf in _leaves(commands.choices[name])]
    parsers += [(tool, leaf) for tool in TOOLS for leaf in _leaves(_standalone_parser(tool))]
    return parsers


def test_every_command_has_verbose_and_quiet() -> None:
    parsers = _command_parsers()
    assert {name for name, _ in parsers} == {*COMMANDS, *TOOLS}
    assert len(parsers) > len(COMMANDS) + len(TOOLS)  # `image` has sub-commands
    for name, parser in parsers:
        options = parser._option_string_actions
        for short, long, dest in (("-v", "--verbose", "verbose"), ("-q", "--quiet", "quiet")):
            assert options[short] is options[long], (name, parser.prog, short)
            assert options[short].dest == dest, (name, parser.prog, short)
            assert isinstance(options[short], argparse._StoreTrueAction), (name, parser.prog, short)


def test_verbose_and_quiet_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["check-config", "-v", "-q"])
    assert exit_.value.code == 2
    assert "-v/--verbose and -q/--quiet exclude each other" in capsys.readouterr().err


def test_levels(capsys: pytest.CaptureFixture[str]) -> None:
    def speak() -> tuple[str, str]:
        console.result("result")
        console.info("info")
        console.info("aside", to_stderr=True)
        console.detail("detail")
        console.warning("warning")
        console.error("error")
        captured = capsys.readouterr()
        return captured.out, captured.err

    try:
        assert speak() == ("result\ninfo\n", "aside\nwarning\nerror\n")
        console.configure(level=console.Level.QUIET)
        assert speak() == ("result\n", "warning\nerror\n")
        console.configure(level=console.Level.VERBOSE)
        assert speak() == ("result\ninfo\ndetail\n", "aside\nwarning\nerror\n")
    finally:
        console.configure()
    assert console.level() is console.Level.NORMAL


def test_the_redactor_applies_to_every_line(capsys: pytest.CaptureFixture[str]) -> None:
    secret = "s3cr3t-t0ken-value-0123456789"
    console.configure(level=console.Level.VERBOSE, redact=Redactor([secret]))
    try:
        console.result(f"url https://user:{secret}@example.invalid/")
        console.info(f"token {secret}")
        console.detail(f"token {secret}")
        console.warning(f"warning: {secret}")
        console.error(f"error: {secret}")
        console.Transfer(1, 1, enabled=False).finished(f"{secret}.whl", "kept")
    finally:
        console.configure()
    captured = capsys.readouterr()
    shown = captured.out + captured.err
    assert secret not in shown
    assert shown.count("***") == 6


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_a_wait_is_a_spinner_on_a_terminal_and_a_line_elsewhere(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    secret = "s3cr3t-t0ken-value-0123456789"
    console.configure(redact=Redactor([secret]))
    try:
        started = time.monotonic()
        console.wait(f"waiting for 2 wheel(s) {secret}", 0.2)
        console.wait("waiting for 1 wheel(s)", 0.01, to_stderr=True)
        assert time.monotonic() - started >= 0.2
        assert capsys.readouterr() == (
            "waiting for 2 wheel(s) ***\n",
            "waiting for 1 wheel(s)\n",
        )
        terminal = _Terminal()
        monkeypatch.setattr(sys, "stdout", terminal)
        console.wait(f"waiting for 3 wheel(s) {secret}", 0.2)
        shown = terminal.getvalue()
        assert "waiting for 3 wheel(s) ***" in shown and secret not in shown
        assert "\x1b[" in shown  # drawn in place (rich), not a line in a log
        console.configure(level=console.Level.QUIET)
        quiet = _Terminal()
        monkeypatch.setattr(sys, "stdout", quiet)
        console.wait("waiting", 0.01)
        assert quiet.getvalue() == ""
    finally:
        console.configure()
