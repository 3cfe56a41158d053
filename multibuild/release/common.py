"""What the release commands share: settings, opening a container's listing by URL, durations,
and running a command's body with one clear message per failure."""

from __future__ import annotations

import re
import sys
import traceback
from collections.abc import Callable
from pathlib import Path
from urllib.parse import unquote, urlsplit

from multibuild.errors import ConfigurationError, FatalError
from multibuild.release.http import Http
from multibuild.release.listing import Listing, Reader, read_local
from multibuild.settings import Settings, settings_from

REPO_ROOT = Path(__file__).resolve().parents[2]


def settings(path: str | None) -> Settings | None:
    """settings.toml: the given one, else found from the working directory, else the one of
    this repository; None if there is none."""
    return settings_from(path, fallback=REPO_ROOT)


def read_listing(
    url: str, http: Http, *, project: str | None, base_dir: Path, verbose: bool = False
) -> Listing:
    """The listing of a container named by an http(s) URL, a path or file:// URL, or a
    swift:// / s3:// container URL (read through its public URL)."""
    scheme = urlsplit(url).scheme.lower()
    if scheme in ("http", "https"):
        return Reader(http, verbose).read(url, project)
    if scheme == "file":
        return read_local(Path(unquote(urlsplit(url).path)))
    if scheme in ("swift", "s3"):
        from multibuild.containers import open_container

        container = open_container(url, base_dir=base_dir)
        try:
            public = container.public_url("")
        finally:
            container.close()
        return Reader(http, verbose).read(public, project)
    if scheme and len(scheme) > 1:
        raise ConfigurationError(f"unsupported container URL {url!r}")
    path = Path(url).expanduser()
    return read_local(path if path.is_absolute() else base_dir / path)


_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([hms]?)")


def parse_duration(text: str) -> float:
    """Seconds in `90`, `90s`, `15m`, `1h30m`."""
    text = text.strip().lower()
    pos, total = 0, 0.0
    while pos < len(text):
        match = _DURATION.match(text, pos)
        if not match or match.end() == pos:
            raise ConfigurationError(f"bad duration {text!r} (examples: 900, 90s, 15m, 1h30m)")
        total += float(match.group(1)) * {"h": 3600, "m": 60, "s": 1, "": 1}[match.group(2)]
        pos = match.end()
    if not text:
        raise ConfigurationError("empty duration")
    return total


def run(prog: str, body: Callable[[], int], debug: bool = False) -> int:
    try:
        return body()
    except FatalError as error:
        if debug:
            traceback.print_exc()
        print(f"{prog}: error: {error}", file=sys.stderr)
        return error.return_code
    except KeyboardInterrupt:
        print(f"\n{prog}: interrupted (a rerun resumes)", file=sys.stderr)
        return 130
