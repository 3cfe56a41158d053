"""Containers wheels go to, one interface (`Container`), the backend chosen by URL:

- a plain path or `file:///path`: a local directory (the default, no credentials);
- `swift://CONTAINER[/prefix]`: OpenStack Swift / Rackspace Cloud Files;
- `s3://BUCKET[/prefix]`: any S3-compatible store.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from multibuild.errors import ConfigurationError
from multibuild.options import UploadTuning
from multibuild.publish.containers.base import Container, ObjectInfo
from multibuild.publish.containers.retry import RetryPolicy
from multibuild.util.urls import hide_userinfo

__all__ = [
    "Container",
    "ObjectInfo",
    "RetryPolicy",
    "is_local",
    "open_container",
    "same_container",
    "split_url",
]


# S3's bucket-name rules; Swift's container names are any UTF-8 but `/`: we also refuse
# control characters and the path words `.` and `..`.
_BUCKET = re.compile(r"(?!\d+\.\d+\.\d+\.\d+$)[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")


def _name_problem(scheme: str, name: str) -> str | None:
    if any(ord(c) < 32 or ord(c) == 127 for c in name) or name in (".", ".."):
        return "not a container name"
    if scheme == "s3" and (not _BUCKET.fullmatch(name) or ".." in name):
        return "not an S3 bucket name (3 to 63 of a-z 0-9 . -)"
    if scheme == "swift" and len(name.encode()) > 256:
        return "longer than Swift's 256 bytes"
    return None


def split_url(url: str) -> tuple[str, str, str]:
    """(scheme, container, prefix); for a local container, the path and "".

    Credentials, queries and path words (`..`) are refused: a container URL names a place,
    and nothing else."""
    try:
        parts = urlsplit(url)
    except ValueError as error:
        raise ConfigurationError(f"container URL {hide_userinfo(url)!r}: {error}") from None
    if parts.scheme in ("swift", "s3"):
        if not parts.netloc:
            raise ConfigurationError(f"container URL {url!r} names no container")
        if parts.query or parts.fragment or "@" in parts.netloc:
            raise ConfigurationError(
                f"container URL {hide_userinfo(url)!r}: no credentials or options in the URL; "
                "they come from environment variables"
            )
        problem = _name_problem(parts.scheme, unquote(parts.netloc))
        prefix = parts.path.strip("/")
        if (
            problem is None
            and prefix
            and any(p in ("", ".", "..") or any(ord(c) < 32 for c in p) for p in prefix.split("/"))
        ):
            problem = "its prefix holds an empty, '.' or '..' part"
        if problem:
            raise ConfigurationError(f"container URL {url!r}: {problem}")
        return parts.scheme, parts.netloc, prefix
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


def is_local(url: str) -> bool:
    return split_url(url)[0] == "file"


def same_container(a: str, b: str, base: Path) -> bool:
    """Whether two URLs name one container (relative paths taken from `base`)."""
    sa, sb = split_url(a), split_url(b)
    if sa[0] == sb[0] == "file":
        return (base / Path(sa[1])).resolve() == (base / Path(sb[1])).resolve()
    return sa == sb


def open_container(
    url_or_path: str,
    *,
    base_dir: Path,
    environ: Mapping[str, str],
    tuning: UploadTuning | None = None,
    policy: RetryPolicy | None = None,
    purpose: str = "upload",
) -> Container:
    """The container a URL names; a relative path is relative to `base_dir`.
    Remote backends read their credentials from `environ` only; `purpose` (upload, prune,
    read) is what their messages say the credentials are for."""
    tuning = tuning or UploadTuning()
    scheme, name, prefix = split_url(url_or_path)
    policy = policy or RetryPolicy.from_tuning(tuning)
    segment_size = tuning.segment_size
    if scheme == "file":
        from multibuild.publish.containers.local import LocalContainer

        path = Path(name).expanduser()
        if not path.is_absolute():
            path = base_dir / path
        if path.exists() and not path.is_dir():
            raise ConfigurationError(f"container {url_or_path} is a file, not a directory")
        return LocalContainer(path, url=url_or_path)
    if scheme == "swift":
        from multibuild.publish.containers.swift import DEFAULT_SEGMENT, SwiftContainer

        return SwiftContainer(
            name,
            prefix,
            environ=environ,
            policy=policy,
            segment_size=segment_size or DEFAULT_SEGMENT,
            threads=tuning.threads,
            purpose=purpose,
        )
    from multibuild.publish.containers.s3 import DEFAULT_PART, S3Container

    return S3Container(
        name,
        prefix,
        environ=environ,
        policy=policy,
        part_size=segment_size or DEFAULT_PART,
        threads=tuning.threads,
        purpose=purpose,
    )
