"""URL helpers: paths or URLs, names, and URLs fit to show."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def hide_userinfo(url: str) -> str:
    """The URL with any user:password@ part hidden, for messages and records."""
    return _USERINFO.sub("***@", url)


def local_path(url_or_path: str) -> Path | None:
    """The filesystem path a file:// URL or a plain path names; None for remote URLs."""
    parsed = urllib.parse.urlparse(url_or_path)
    if parsed.scheme == "file":
        return Path(urllib.parse.unquote(parsed.path))
    if parsed.scheme == "" or len(parsed.scheme) == 1:  # Windows drive letters
        return Path(url_or_path)
    return None


def basename(url_or_path: str) -> str:
    path = urllib.parse.urlparse(url_or_path).path or url_or_path
    return Path(urllib.parse.unquote(path)).name
