"""The command line: one argparse tree (`python -m multibuild COMMAND`), the release tools'
own names (`wheel-uploader ...`: the same commands), and the one place a failure becomes a
message and an exit code.

The run's Redactor (multibuild.util.secrets) is made here, once, from the environment and the
command line, and every output of the command goes through it: both console streams (so also
a traceback asked for with --debug-traceback), and, handed to the command as `run(args, redactor)`,
the build log, the build record and what an upload sends."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from types import ModuleType

from multibuild import __version__, console
from multibuild.commands import COMMANDS
from multibuild.errors import FatalError, SystemDependencyError, report
from multibuild.util.secrets import Redactor, redacted_output

PROG = "python -m multibuild"


def _debug_flag(parser: argparse.ArgumentParser, default: object) -> None:
    parser.add_argument(
        "--debug-traceback",
        action="store_true",
        default=default,
        help="show the Python traceback of a failure (also MB_DEBUG_TRACEBACK=1)",
    )


def _voice_flags(parser: argparse.ArgumentParser) -> None:
    """-v/-q on `parser`, or on each of its sub-commands (`image build`), with one meaning
    everywhere (multibuild.console's levels). A command's own -v (its help says what more it
    shows) is kept."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in {id(p): p for p in action.choices.values()}.values():
                _voice_flags(sub)
            return
    options = parser._option_string_actions
    if "-v" not in options:
        parser.add_argument(
            "-v", "--verbose", action="store_true", help="show more: each file, each step"
        )
    if "-q" not in options:
        parser.add_argument(
            "-q", "--quiet", action="store_true", help="show only results, warnings and errors"
        )


def _command(name: str) -> ModuleType:
    return importlib.import_module(COMMANDS[name][0])


def make_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The tree; only `command`'s module is imported (its arguments are the ones parsed)."""
    parser = argparse.ArgumentParser(
        prog=PROG, description="Build, repair, test and upload binary wheels of a pinned commit."
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    _debug_flag(parser, False)
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (_, help_text) in COMMANDS.items():
        if name != command:
            subparsers.add_parser(name, help=help_text, add_help=False)
            continue
        module = _command(name)
        sub = subparsers.add_parser(
            name,
            help=help_text,
            description=module.__doc__,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        module.add_arguments(sub)
        _voice_flags(sub)
        _debug_flag(sub, argparse.SUPPRESS)
    return parser


def _standalone_parser(name: str) -> argparse.ArgumentParser:
    module = _command(name)
    parser = argparse.ArgumentParser(
        prog=name, description=module.__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    module.add_arguments(parser)
    _voice_flags(parser)
    _debug_flag(parser, False)
    return parser


def _first_command(argv: Sequence[str]) -> str | None:
    for arg in argv:
        if not arg.startswith("-"):
            return arg if arg in COMMANDS else None
    return None


def main(argv: Sequence[str] | None = None, *, tool: str | None = None) -> int:
    """`python -m multibuild ARGS`, or (`tool`) one command under its own name."""
    args_list = list(sys.argv[1:] if argv is None else argv)
    redactor = Redactor.from_environ(os.environ, args_list)
    with redacted_output(redactor):
        try:
            return _main(args_list, tool, redactor)
        except ModuleNotFoundError as error:
            if (error.name or "multibuild").partition(".")[0] == "multibuild":
                raise
            # A clone used without installing the engine: say so before anything is built.
            message = (
                f"the engine's dependencies are not installed for {sys.executable} "
                f"({error}); install the engine with them: `pip install -e .` in its "
                "repository (or run through nox: `nox -s build`)"
            )
            return report(tool or "multibuild", SystemDependencyError(message), message)
        finally:
            console.configure()  # the defaults again (a test runs several commands)


def _main(args_list: list[str], tool: str | None, redactor: Redactor) -> int:
    if tool is not None:
        parser = _standalone_parser(tool)
        prefix = tool
    else:
        parser = make_parser(_first_command(args_list))
        prefix = "multibuild"
    args = parser.parse_args(args_list)
    verbose, quiet = getattr(args, "verbose", False), getattr(args, "quiet", False)
    if verbose and quiet:
        parser.error("-v/--verbose and -q/--quiet exclude each other")
    console.configure(level=console.level_from(verbose=verbose, quiet=quiet), redact=redactor)
    module = _command(tool or args.command)
    check = getattr(module, "check_arguments", None)
    if check is not None:
        check(parser, args)
    from multibuild.options import debug_traceback  # here: `--help` stays light

    debug = bool(getattr(args, "debug_traceback", False)) or debug_traceback(os.environ)
    try:
        return int(module.run(args, redactor))
    except FatalError as error:
        if debug:
            traceback.print_exc()
        return report(prefix, error, redactor(str(error)))
    except KeyboardInterrupt:
        console.error(f"\n{prefix}: interrupted (a rerun resumes)")
        return 130


def wheel_uploader() -> int:
    return main(tool="wheel-uploader")


def release_status() -> int:
    return main(tool="release-status")


def set_build_commit() -> int:
    return main(tool="set-build-commit")


def trigger_build() -> int:
    return main(tool="trigger-build")
