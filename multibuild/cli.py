"""The command line: a thin layer that parses flags and hands over to one command module."""

from __future__ import annotations

import argparse
import os
import sys
import traceback
from collections.abc import Sequence

from multibuild import __version__
from multibuild.commands import COMMANDS
from multibuild.errors import FatalError


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m multibuild",
        description="Build, repair, test and upload binary wheels of a pinned commit.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument(
        "--debug-traceback",
        action="store_true",
        default=os.environ.get("MB_DEBUG_TRACEBACK", "") not in ("", "0"),
        help="show the Python traceback of a failure (also MB_DEBUG_TRACEBACK=1)",
    )
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for command in COMMANDS:
        command.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        result: int = args.func(args)
    except FatalError as error:
        if args.debug_traceback:
            traceback.print_exc()
        print(f"\nmultibuild: error: {error}", file=sys.stderr)
        return error.return_code
    except KeyboardInterrupt:
        print("\nmultibuild: interrupted", file=sys.stderr)
        return 130
    return result
