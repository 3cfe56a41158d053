"""Durations as people type them (`900`, `90s`, `15m`, `1h30m`) and read them (`4.2s`, `3m05s`)."""

from __future__ import annotations

import re

from multibuild.errors import ConfigurationError

_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms]?)")


def format_duration(seconds: float) -> str:
    """`4.2s`, `3m05s`, `1h02m`."""
    if seconds < 60:
        return f"{seconds:.1f}s"
    minutes, secs = divmod(int(seconds), 60)
    if minutes < 60:
        return f"{minutes}m{secs:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m"


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
