"""The one interface every container backend implements.

A container is a flat namespace of objects (names may contain `/`). Backends upload with
verification (size and checksum of what landed), list with pagination, read, delete, and
give each object's public URL. The index layer (multibuild.publish.upload) builds on these only.
"""

from __future__ import annotations

import hashlib
import mimetypes
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from multibuild.errors import UploadError
from multibuild.publish.containers import retry
from multibuild.publish.containers.retry import Kind, RetryPolicy, RetryStats
from multibuild.util.files import CHUNK

# What killed uploads left (segments, temporary files, multipart uploads) is deleted once it
# is this old (MB_ORPHAN_GRACE): an upload in progress elsewhere is never younger.
ORPHAN_GRACE_S = 3600.0


class VerificationError(UploadError):
    """What landed in the container is not what was sent."""


class NotFound(UploadError):
    """The object read does not exist (deleted since it was listed)."""


@dataclass(frozen=True)
class ObjectInfo:
    """One object as a listing or a HEAD shows it."""

    name: str
    size: int
    last_modified: datetime  # timezone-aware UTC
    etag: str = ""  # the backend's ETag/hash, without quotes ("" if unknown)
    sha256: str = ""  # from the object's metadata (HEAD only; "" in listings)


@dataclass(frozen=True)
class FileDigest:
    size: int
    sha256: str
    md5: str


def digest_file(path: Path) -> FileDigest:
    sha = hashlib.sha256()
    md5 = hashlib.md5(usedforsecurity=False)
    size = 0
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            sha.update(chunk)
            md5.update(chunk)
            size += len(chunk)
    return FileDigest(size=size, sha256=sha.hexdigest(), md5=md5.hexdigest())


def multipart_etag(md5s: list[str]) -> str:
    """S3's ETag of a multipart object: md5 of the parts' binary md5s, then `-N`."""
    joined = b"".join(bytes.fromhex(m) for m in md5s)
    return f"{hashlib.md5(joined, usedforsecurity=False).hexdigest()}-{len(md5s)}"


def slo_etag(md5s: list[str]) -> str:
    """Swift's ETag of a static large object: md5 of the segments' hex md5s concatenated."""
    return hashlib.md5("".join(md5s).encode(), usedforsecurity=False).hexdigest()


def content_type(name: str) -> str:
    if name.endswith(".whl"):
        return "application/zip"
    if name.endswith(".log"):
        return "text/plain; charset=utf-8"
    guessed, _ = mimetypes.guess_type(name)
    if guessed in ("text/html", "application/json"):
        return f"{guessed}; charset=utf-8"
    return guessed or "application/octet-stream"


def utc(value: datetime) -> datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=timezone.utc)
    return value.astimezone(timezone.utc)


def check_name(name: str) -> str:
    parts = name.split("/")
    if not name or name.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise UploadError(f"bad object name {name!r}")
    return name


class Container(ABC):
    """A place wheels go. `url` is how the user named it (never holds credentials)."""

    url: str
    stats: RetryStats

    @abstractmethod
    def ensure(self) -> None:
        """Create the container if it is missing and make it publicly listable."""

    @abstractmethod
    def put_file(self, name: str, path: Path, digest: FileDigest) -> ObjectInfo:
        """Upload a file (segmented/multipart when big), then verify size and checksum of
        what landed; the object appears whole or not at all."""

    @abstractmethod
    def put_bytes(self, name: str, data: bytes) -> None:
        """Upload a small object in one request, checked by the server against its md5."""

    @abstractmethod
    def head(self, name: str) -> ObjectInfo | None:
        """The object's size, date, ETag and sha256 metadata; None if it does not exist."""

    @abstractmethod
    def get_bytes(self, name: str) -> bytes:
        """The object's bytes; NotFound when it does not exist."""

    @abstractmethod
    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object whose name starts with `prefix`, in name order, page by page."""

    @abstractmethod
    def delete(self, name: str) -> None:
        """Delete the object (and its segments); a missing object is not an error."""

    def delete_unchanged(self, seen: ObjectInfo) -> bool:
        """Delete `seen.name` only while it is still the object `seen` describes (same size
        and ETag, within a second by the store's clock): an object written since (an upload
        replacing a nightly's wheel under the same name) is newer than the caller's plan and
        stays. False when it changed or is gone. The check and the delete are two requests;
        docs/upload.md says what that leaves open."""
        now = self.head(seen.name)
        if now is None or now.size != seen.size or now.etag != seen.etag:
            return False
        # A listing gives the time in microseconds, a HEAD in whole seconds (Swift rounds up).
        if abs((now.last_modified - seen.last_modified).total_seconds()) >= 1.0:
            return False
        self.delete(seen.name)
        return True

    @abstractmethod
    def public_url(self, name: str = "") -> str:
        """Where anyone can read the object (the container itself for "")."""

    @abstractmethod
    def exists(self) -> bool:
        """Whether the container exists (prune refuses one that does not)."""

    def sweep(self, grace_s: float, dry_run: bool = False) -> tuple[str, ...]:
        """Delete what killed or failed uploads left behind and nothing lists (temporary
        files, segments no manifest references, unfinished multipart uploads), if older than
        `grace_s` or provably abandoned; what was (or, with `dry_run`, would be) deleted."""
        return ()

    def download(self, name: str, dest: Path) -> None:
        dest.write_bytes(self.get_bytes(name))

    def close(self) -> None:  # noqa: B027 - optional for backends
        """Release connections."""


class ObjectStore(Container):
    """What the object-store backends (Swift, S3) share: a name prefix inside the container,
    the retry policy and its statistics, and the number of upload threads."""

    service: str  # names the store in messages: "Swift", "S3"

    def __init__(self, prefix: str, policy: RetryPolicy | None, threads: int) -> None:
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.policy = policy or RetryPolicy()
        self.stats = RetryStats()
        self.threads = max(1, threads)

    @abstractmethod
    def classify(self, error: BaseException) -> Kind:
        """Transient (retry) or permanent (stop now), for this store's errors."""

    @abstractmethod
    def describe(self, error: BaseException) -> str:
        """This store's error as one line for a message (no secrets)."""

    def _call(self, what: str, action: Any) -> Any:
        return retry.call(
            action,
            what=f"{self.service} {what}",
            classify=self.classify,
            policy=self.policy,
            describe=self.describe,
            stats=self.stats,
        )

    def _key(self, name: str) -> str:
        return self.prefix + check_name(name)

    def _landed(self, name: str, digest: FileDigest, etag: str) -> ObjectInfo:
        """What the store holds under `name` after an upload, checked against the file sent:
        its size, the ETag the store computes (`etag`) and the sha256 metadata."""
        info = self.head(name)
        if info is None or info.size != digest.size or info.etag != etag:
            raise VerificationError(
                f"{name}: what landed in {self.url} is not the file sent "
                f"(size {info.size if info else None} vs {digest.size}, "
                f"ETag {info.etag if info else None} vs {etag})"
            )
        if info.sha256 != digest.sha256:
            raise VerificationError(f"{name}: sha256 metadata in {self.url} does not match")
        return info
