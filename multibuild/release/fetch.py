"""Download a release's wheels in parallel: each to `.partial/NAME.part` (never in the
wheelhouse itself, which only ever holds whole, checked files), checked against the sha256 the
build record or the listing gives (else the listing's md5, else its size), then renamed into
place. Files already present and valid are kept (unless `clobber`); a `.part` left by an
interrupted run is resumed with a Range request where the server honours it."""

from __future__ import annotations

import contextlib
import hashlib
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import requests

from multibuild.console import Transfer
from multibuild.errors import ReleaseError
from multibuild.release.listing import Entry
from multibuild.util.files import CHUNK
from multibuild.util.http import CHUNK as NET_CHUNK
from multibuild.util.http import Http, HttpError
from multibuild.util.wheelcheck import WheelProblem, check_wheel

PARTIAL = ".partial"  # in the wheelhouse: downloads under way or to resume
DEFAULT_JOBS = 8


class ChecksumError(ReleaseError):
    """A downloaded file is not what the container or the build record says it is."""


class Cancelled(Exception):
    pass


@dataclass
class Hashes:
    """sha256 always; md5 only for entries whose one checksum is an md5 (CPU matters)."""

    with_md5: bool = False
    sha256: hashlib._Hash = field(default_factory=hashlib.sha256)
    md5: hashlib._Hash = field(default_factory=lambda: hashlib.md5(usedforsecurity=False))
    size: int = 0

    def update(self, data: bytes | memoryview) -> None:
        self.sha256.update(data)
        if self.with_md5:
            self.md5.update(data)
        self.size += len(data)


def hashes_for(entry: Entry) -> Hashes:
    return Hashes(with_md5=bool(entry.md5) and not entry.sha256)


def hash_file(path: Path, entry: Entry) -> Hashes:
    hashes = hashes_for(entry)
    with path.open("rb") as stream:
        while chunk := stream.read(CHUNK):
            hashes.update(chunk)
    return hashes


def mismatch(entry: Entry, hashes: Hashes) -> str:
    """Why the bytes are not the entry's ("" when they are)."""
    if entry.size is not None and hashes.size != entry.size:
        return f"size {hashes.size} but {entry.size} expected"
    if entry.sha256 and hashes.sha256.hexdigest() != entry.sha256:
        return (
            f"sha256 {hashes.sha256.hexdigest()} but {entry.sha256} expected "
            f"({entry.sha256_source})"
        )
    if not entry.sha256 and entry.md5 and hashes.md5.hexdigest() != entry.md5:
        return f"md5 {hashes.md5.hexdigest()} but {entry.md5} expected (the listing)"
    return ""


def verification(entry: Entry) -> str:
    if entry.sha256:
        return "sha256"
    if entry.md5:
        return "md5"
    return "size" if entry.size is not None else "none"


@dataclass
class FetchReport:
    downloaded: list[Path] = field(default_factory=list)
    kept: list[Path] = field(default_factory=list)  # already present and valid
    resumed: list[Path] = field(default_factory=list)
    unverified: list[str] = field(default_factory=list)  # only a size, or nothing, to check
    nbytes: int = 0
    seconds: float = 0.0

    @property
    def paths(self) -> list[Path]:
        return sorted(self.downloaded + self.kept)


class Fetcher:
    def __init__(
        self,
        http: Http,
        wheelhouse: Path,
        *,
        clobber: bool = False,
        jobs: int = DEFAULT_JOBS,
        progress: Transfer | None = None,
    ) -> None:
        self.http = http
        self.wheelhouse = wheelhouse
        self.clobber = clobber
        self.jobs = max(1, jobs)
        self.progress = progress
        self._stop = threading.Event()
        self._lock = threading.Lock()

    def fetch(self, entries: Sequence[Entry]) -> FetchReport:
        report = FetchReport()
        started = time.monotonic()
        self.wheelhouse.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            if entry.conflict:
                raise ChecksumError(f"the container contradicts itself: {entry.conflict}")
            if verification(entry) in ("size", "none"):
                report.unverified.append(entry.basename)
        errors: list[BaseException] = []
        with ThreadPoolExecutor(max_workers=self.jobs, thread_name_prefix="fetch") as pool:
            futures = [pool.submit(self._one, entry, report) for entry in entries]
            try:
                for future in as_completed(futures):
                    error = future.exception()
                    if error is not None and not isinstance(error, Cancelled):
                        errors.append(error)
                        self._stop.set()
            except KeyboardInterrupt:
                # Downloads stop at their next chunk; their .part files stay to be resumed.
                self._stop.set()
                pool.shutdown(wait=True, cancel_futures=True)
                raise
        if self.progress is not None:
            self.progress.close()
        with contextlib.suppress(OSError):  # gone when nothing is left to resume
            (self.wheelhouse / PARTIAL).rmdir()
        report.seconds = time.monotonic() - started
        if errors:
            first = errors[0]
            if isinstance(first, ReleaseError):
                more = f" (and {len(errors) - 1} more failures)" if len(errors) > 1 else ""
                raise type(first)(f"{first}{more}") from None
            raise ReleaseError(f"download failed: {first!r}") from first
        return report

    def _note(self, report: FetchReport, bucket: list[Path], path: Path, nbytes: int) -> None:
        with self._lock:
            bucket.append(path)
            report.nbytes += nbytes

    def _one(self, entry: Entry, report: FetchReport) -> None:
        if self._stop.is_set():
            raise Cancelled
        dest = self.wheelhouse / entry.basename
        part = self.wheelhouse / PARTIAL / (dest.name + ".part")
        part.parent.mkdir(exist_ok=True)
        earlier = dest.with_name(dest.name + ".part")  # where older versions left one
        if earlier.is_file() and not part.exists():
            earlier.replace(part)
        if dest.exists() and not self.clobber and not mismatch(entry, hash_file(dest, entry)):
            self._note(report, report.kept, dest, 0)
            if self.progress:
                self.progress.advance(dest.stat().st_size)
                self.progress.finished(dest.name, "kept")
            return
        if self.clobber:
            part.unlink(missing_ok=True)
        hashes, resumed = self._download(entry, part)
        problem = mismatch(entry, hashes)
        if problem:
            part.unlink(missing_ok=True)
            raise ChecksumError(
                f"{entry.basename}: corrupt download from {entry.url}: {problem}; "
                "the file was deleted (run again, or check the container)"
            )
        if dest.suffix == ".whl":
            try:
                check_wheel(part, dest.name)
            except WheelProblem as why:
                # An error page with a .whl name, a wheel that lies about its contents: never
                # saved, never in SHA256SUMS.
                part.unlink(missing_ok=True)
                raise ChecksumError(
                    f"{entry.basename} from {entry.url} is no wheel: {why}; not saved"
                ) from None
        part.replace(dest)
        self._note(report, report.downloaded, dest, hashes.size)
        if resumed:
            with self._lock:
                report.resumed.append(dest)
        if self.progress:
            self.progress.finished(dest.name, "resumed" if resumed else "downloaded")

    def _download(self, entry: Entry, part: Path) -> tuple[Hashes, bool]:
        if urlsplit(entry.url).scheme == "file":
            return self._copy_local(entry, part), False
        hashes = hashes_for(entry)
        offset = 0
        headers: dict[str, str] = {}
        if part.exists():
            hashes = hash_file(part, entry)
            offset = hashes.size
            if offset:
                headers["Range"] = f"bytes={offset}-"
        with self.http.get(entry.url, headers) as response:
            status = response.status_code
            if status == 416 and offset:  # the .part is already whole
                return hashes, True
            if status == 206 and offset:
                mode, resumed = "ab", True
            elif status == 200:
                mode, resumed, hashes = "wb", False, hashes_for(entry)
            elif status in (401, 403):
                raise HttpError(f"{entry.url}: {status}: not readable", status)
            else:
                raise HttpError(f"{entry.url}: HTTP {status}", status)
            if self.progress and resumed:
                self.progress.advance(offset)
            self._write_body(entry, response, part, mode, hashes)
        return hashes, resumed

    def _copy_local(self, entry: Entry, part: Path) -> Hashes:
        source = Path(unquote(urlsplit(entry.url).path))
        hashes = hashes_for(entry)
        with source.open("rb") as src, part.open("wb") as out:
            while chunk := src.read(CHUNK):
                hashes.update(chunk)
                out.write(chunk)
                if self.progress:
                    self.progress.advance(len(chunk))
        return hashes

    def _write_body(
        self, entry: Entry, response: requests.Response, part: Path, mode: str, hashes: Hashes
    ) -> None:
        """The response's body appended (mode "ab") or written to part, hashed as it goes."""
        try:
            with part.open(mode) as out:
                # Small pieces as they arrive, so a slow link still writes (and shows
                # progress) as it goes, and an interruption keeps what came.
                for chunk in response.iter_content(NET_CHUNK):
                    if self._stop.is_set():
                        raise Cancelled
                    hashes.update(chunk)
                    if entry.size is not None and hashes.size > entry.size:
                        raise ChecksumError(
                            f"{entry.basename}: {entry.url} sends more than the "
                            f"{entry.size} bytes listed; stopped"
                        )
                    out.write(chunk)
                    if self.progress:
                        self.progress.advance(len(chunk))
        except (OSError, requests.RequestException) as error:
            raise HttpError(f"{entry.url}: download interrupted: {error}") from None
        except ChecksumError:
            part.unlink(missing_ok=True)
            raise
