"""Durations as people type them: `900`, `90s`, `15m`, `1h30m`."""

from __future__ import annotations

import re

from multibuild.errors import ConfigurationError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms]?)")


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `15m`, `1h30m`."""
    text = text.strip().lower()
    if not text:
        raise ConfigurationError("empty duration")
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if not match or match.end() == pos:
            raise ConfigurationError(f"bad duration {text!r} (examples: 900, 90s, 15m, 1h30m)")
        total += float(match.group(1)) * {"h": 3600, "m": 60, "s": 1, "": 1}[match.group(2)]
        pos = match.end()
    return total
