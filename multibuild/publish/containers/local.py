"""A container that is a local directory (the default, no credentials)."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path

from multibuild.errors import UploadError
from multibuild.publish.containers.base import (
    Container,
    FileDigest,
    NotFound,
    ObjectInfo,
    VerificationError,
    check_name,
)
from multibuild.publish.containers.retry import RetryStats
from multibuild.util.files import sha256_file

PARTIAL = ".partial"  # files being written; never listed
# A file being written is `.partial/put-TOKEN-RANDOM`, TOKEN random to each write: no
# other writer (another host, another PID namespace, a reused PID) can take it for its own.
# It is abandoned once the store's clock (a file's mtime as this filesystem sets it, never
# the uploader's clock) says it was last written more than the grace ago.
TEMP_PREFIX = "put-"


def _etag(stat: os.stat_result) -> str:
    """What changes whenever the file is replaced (every write is a rename of a new file)."""
    return f"{stat.st_ino:x}-{stat.st_mtime_ns:x}-{stat.st_size:x}"


class LocalContainer(Container):
    def __init__(self, root: Path, url: str | None = None) -> None:
        self.root = root.resolve()
        self.url = url or str(self.root)
        self.stats = RetryStats()

    def _path(self, name: str) -> Path:
        return self.root / check_name(name)

    def ensure(self) -> None:
        try:
            (self.root / PARTIAL).mkdir(parents=True, exist_ok=True)
        except OSError as error:
            raise UploadError(f"cannot create container directory {self.root}: {error}") from None

    def _write(self, name: str, write: Callable[[Path], object]) -> Path:
        target = self._path(name)
        self.ensure()
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, name_of_temp = tempfile.mkstemp(
            dir=self.root / PARTIAL, prefix=f"{TEMP_PREFIX}{uuid.uuid4().hex}-"
        )
        os.close(fd)
        temp = Path(name_of_temp)
        try:
            write(temp)
            with temp.open("rb") as stream:
                os.fsync(stream.fileno())
            temp.chmod(0o644)
            temp.replace(target)  # atomic: the name shows the old or the new file
        except BaseException:
            with contextlib.suppress(OSError):
                temp.unlink()
            raise
        return target

    def put_file(self, name: str, path: Path, digest: FileDigest) -> ObjectInfo:
        try:
            target = self._write(name, lambda temp: shutil.copyfile(path, temp))
        except OSError as error:
            raise UploadError(f"cannot write {name} to {self.root}: {error}") from None
        landed = sha256_file(target)
        size = target.stat().st_size
        if size != digest.size or landed != digest.sha256:
            raise VerificationError(f"{name}: the copy in {self.root} differs from {path}")
        info = self.head(name)
        assert info is not None
        return info

    def put_bytes(self, name: str, data: bytes) -> None:
        try:
            self._write(name, lambda temp: temp.write_bytes(data))
        except OSError as error:
            raise UploadError(f"cannot write {name} to {self.root}: {error}") from None

    def head(self, name: str) -> ObjectInfo | None:
        path = self._path(name)
        try:
            stat = path.stat()
        except FileNotFoundError:
            return None
        if not path.is_file():
            return None
        return ObjectInfo(
            name=name,
            size=stat.st_size,
            last_modified=datetime.fromtimestamp(stat.st_mtime, timezone.utc),
            etag=_etag(stat),
            sha256=sha256_file(path),
        )

    def get_bytes(self, name: str) -> bytes:
        try:
            return self._path(name).read_bytes()
        except FileNotFoundError:
            raise NotFound(f"{name}: not in {self.root}") from None
        except OSError as error:
            raise UploadError(f"cannot read {name} from {self.root}: {error}") from None

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        if not self.root.is_dir():
            return
        names: list[str] = []
        for directory, subdirs, files in os.walk(self.root):
            rel = Path(directory).relative_to(self.root).as_posix()
            if rel == ".":
                subdirs[:] = [d for d in subdirs if d != PARTIAL]
                rel = ""
            else:
                rel += "/"
            names.extend(rel + f for f in files if (rel + f).startswith(prefix))
        for name in sorted(names):
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                stat = (self.root / name).stat()
                yield ObjectInfo(
                    name=name,
                    size=stat.st_size,
                    last_modified=datetime.fromtimestamp(stat.st_mtime, timezone.utc),
                    etag=_etag(stat),
                )

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self._path(name).unlink()

    def exists(self) -> bool:
        return self.root.is_dir()

    def sweep(self, grace_s: float, dry_run: bool = False) -> tuple[str, ...]:
        """Temporary files of killed writers: last written more than `grace_s` ago by the
        store's clock (the mtime of a file made now in .partial), whatever this host's clock
        says and whoever wrote them."""
        partial = self.root / PARTIAL
        if not partial.is_dir():
            return ()
        paths = sorted(partial.iterdir())
        if not paths:
            return ()
        now = self._store_now()
        gone = []
        for path in paths:
            try:
                age = now - path.stat().st_mtime
            except FileNotFoundError:
                continue
            if age <= grace_s or not path.is_file():
                continue
            if not dry_run:
                with contextlib.suppress(FileNotFoundError):
                    path.unlink()
            gone.append(f"{PARTIAL}/{path.name}")
        return tuple(gone)

    def _store_now(self) -> float:
        """The time as the filesystem holding the container sets it."""
        fd, probe = tempfile.mkstemp(dir=self.root / PARTIAL, prefix=".now-")
        try:
            return os.fstat(fd).st_mtime
        finally:
            os.close(fd)
            Path(probe).unlink()

    def public_url(self, name: str = "") -> str:
        if not name:
            return self.root.as_uri() + "/"
        return self._path(name).as_uri()
