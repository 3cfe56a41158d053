"""Containers wheels go to, one interface (`Container`), the backend chosen by URL:

- a plain path or `file:///path`: a local directory (the default, no credentials);
- `swift://CONTAINER[/prefix]`: OpenStack Swift / Rackspace Cloud Files;
- `s3://BUCKET[/prefix]`: any S3-compatible store.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from multibuild.containers.base import Container, ObjectInfo
from multibuild.containers.retry import RetryPolicy
from multibuild.errors import ConfigurationError

__all__ = ["Container", "ObjectInfo", "RetryPolicy", "open_container", "split_url"]

SCHEMES = ("file", "swift", "s3")


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, container, prefix); for a local container, the path and ""."""
    parts = urlsplit(url)
    if parts.scheme in ("swift", "s3"):
        if not parts.netloc:
            raise ConfigurationError(f"container URL {url!r} names no container")
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise ConfigurationError(
                f"container URL {url!r}: no credentials or options in the URL; "
                "they come from environment variables"
            )
        return parts.scheme, parts.netloc, parts.path.strip("/")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ConfigurationError(f"file URL {url!r} must be file:///absolute/path")
        return "file", unquote(parts.path), ""
    if parts.scheme and len(parts.scheme) > 1:  # C:\... is a Windows path, not a scheme
        raise ConfigurationError(
            f"unknown container URL scheme {parts.scheme!r} in {url!r} "
            f"(use a path, file://, swift:// or s3://)"
        )
    return "file", url, ""


def open_container(
    url_or_path: str,
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    policy: RetryPolicy | None = None,
    segment_size: int | None = None,
) -> Container:
    """The container a URL names; a relative path is relative to `base_dir`.
    Remote backends read their credentials from `environ` (default: os.environ) only."""
    env = os.environ if environ is None else environ
    scheme, name, prefix = split_url(url_or_path)
    policy = policy or RetryPolicy.from_environ(dict(env))
    if segment_size is None and env.get("MB_SEGMENT_SIZE"):
        try:
            segment_size = int(env["MB_SEGMENT_SIZE"])
        except ValueError:
            raise ConfigurationError("MB_SEGMENT_SIZE must be a number of bytes") from None
    if scheme == "file":
        from multibuild.containers.local import LocalContainer

        path = Path(name).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        return LocalContainer(path, url=url_or_path)
    if scheme == "swift":
        from multibuild.containers.swift import DEFAULT_SEGMENT, SwiftContainer

        return SwiftContainer(
            name, prefix, environ=env, policy=policy, segment_size=segment_size or DEFAULT_SEGMENT
        )
    from multibuild.containers.s3 import DEFAULT_PART, S3Container

    return S3Container(
        name, prefix, environ=env, policy=policy, part_size=segment_size or DEFAULT_PART
    )
