"""One module per command (as twine does); each has `register(subparsers)`."""

from __future__ import annotations

from types import ModuleType

from multibuild.commands import build, check_config, ci, prune, upload

COMMANDS: list[ModuleType] = [build, ci, upload, prune, check_config]
