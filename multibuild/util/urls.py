"""URL helpers: paths or URLs, names, and URLs fit to show."""

from __future__ import annotations

import re
import urllib.parse
from pathlib import Path

from multibuild.errors import ConfigurationError

_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")


def hide_userinfo(url: str) -> str:
    """The URL with any user:password@ part hidden, for messages and records."""
    return _USERINFO.sub("***@", url)


def check_url(url: str, what: str) -> urllib.parse.SplitResult:
    """`url` split, or a ConfigurationError naming `what` (an invalid IPv6 host, a bad
    port) with the URL's credentials hidden."""
    try:
        parts = urllib.parse.urlsplit(url)
        _ = parts.port
    except ValueError as error:
        raise ConfigurationError(
            f"{what} {hide_userinfo(url)!r} is not a valid URL ({error})"
        ) from None
    return parts


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
