"""OpenStack Swift (and Rackspace Cloud Files) through python-swiftclient.

URL: `swift://CONTAINER[/prefix]`. Credentials as the `swift` command line reads them:
auth v1 (tempauth, Rackspace) from ST_AUTH/ST_USER/ST_KEY, keystone v3 from OS_AUTH_URL,
OS_USERNAME, OS_PASSWORD, OS_PROJECT_NAME, OS_USER_DOMAIN_NAME, OS_PROJECT_DOMAIN_NAME
(OS_REGION_NAME, OS_INTERFACE optional). Files bigger than the segment size become static
large objects whose segments live in `CONTAINER_segments`.
"""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
from swiftclient.client import ClientException, Connection
from swiftclient.utils import LengthWrapper

from multibuild.errors import CredentialsError, UploadError
from multibuild.publish.containers import retry
from multibuild.publish.containers.base import (
    FileDigest,
    NotFound,
    ObjectInfo,
    ObjectStore,
    content_type,
    slo_etag,
    utc,
)
from multibuild.publish.containers.credentials import read_variable, require
from multibuild.publish.containers.retry import Kind, RetryPolicy
from multibuild.util import jsontext

PAGE = 10_000  # Swift's largest listing page
DEFAULT_SEGMENT = 128 << 20
THREADS = 4  # segments uploaded at once
PUBLIC_READ = ".r:*,.rlistings"
META_SHA256 = "x-object-meta-sha256"


def connection_options(environ: Mapping[str, str], purpose: str = "upload") -> dict[str, Any]:
    """swiftclient.Connection's auth arguments from the environment (no other source)."""
    version = (
        environ.get("ST_AUTH_VERSION")
        or environ.get("OS_AUTH_VERSION")
        or environ.get("OS_IDENTITY_API_VERSION")
        or ""
    )
    keystone = bool(environ.get("OS_AUTH_URL")) and (
        version.startswith(("2", "3")) or not environ.get("ST_AUTH")
    )
    if keystone:
        values = require(
            environ, ["OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD"], "Swift (keystone)", purpose
        )
        project = environ.get("OS_PROJECT_NAME") or environ.get("OS_TENANT_NAME")
        project_id = environ.get("OS_PROJECT_ID") or environ.get("OS_TENANT_ID")
        if not project and not project_id:
            raise CredentialsError(
                f"Swift (keystone) {purpose} needs OS_PROJECT_NAME or OS_PROJECT_ID in the "
                "environment"
            )
        os_options = {
            "project_name": project,
            "project_id": project_id,
            "user_domain_name": environ.get("OS_USER_DOMAIN_NAME"),
            "user_domain_id": environ.get("OS_USER_DOMAIN_ID"),
            "project_domain_name": environ.get("OS_PROJECT_DOMAIN_NAME"),
            "project_domain_id": environ.get("OS_PROJECT_DOMAIN_ID"),
            "region_name": environ.get("OS_REGION_NAME"),
            "endpoint_type": environ.get("OS_INTERFACE") or environ.get("OS_ENDPOINT_TYPE"),
        }
        return {
            "authurl": values["OS_AUTH_URL"],
            "user": values["OS_USERNAME"],
            "key": values["OS_PASSWORD"],
            "auth_version": version[:1] if version else "3",
            "os_options": {k: v for k, v in os_options.items() if v},
        }
    storage_url = environ.get("OS_STORAGE_URL")
    token = read_variable(environ, "OS_AUTH_TOKEN")
    if storage_url and token:
        return {"preauthurl": storage_url, "preauthtoken": token}
    values = require(environ, ["ST_AUTH", "ST_USER", "ST_KEY"], "Swift", purpose)
    return {
        "authurl": values["ST_AUTH"],
        "user": values["ST_USER"],
        "key": values["ST_KEY"],
        "auth_version": "1",
    }


def _modified(item: Mapping[str, Any]) -> datetime:
    return utc(datetime.fromisoformat(str(item["last_modified"])))


class CorruptSegment(Exception):
    """What Swift stored is not what was sent (its ETag is not our md5): send it again."""


def classify(error: BaseException) -> Kind:
    if isinstance(error, CorruptSegment):
        return Kind.TRANSIENT
    if isinstance(error, ClientException):
        return retry.status_kind(error.http_status)
    if isinstance(error, requests.exceptions.RequestException):
        if isinstance(error, (requests.exceptions.InvalidURL, requests.exceptions.MissingSchema)):
            return Kind.PERMANENT
        return Kind.TRANSIENT
    return retry.generic_kind(error)


def describe(error: BaseException) -> str:
    if isinstance(error, ClientException):
        status = f"HTTP {error.http_status} {error.http_reason or ''}".strip()
        return status if error.http_status else (error.msg or type(error).__name__)
    return f"{type(error).__name__}: {error}"


class SwiftContainer(ObjectStore):
    service = "Swift"

    def __init__(
        self,
        container: str,
        prefix: str = "",
        *,
        environ: Mapping[str, str],
        policy: RetryPolicy | None = None,
        segment_size: int = DEFAULT_SEGMENT,
        threads: int | None = None,
        purpose: str = "upload",
    ) -> None:
        super().__init__(prefix, policy, threads or THREADS)
        self.container = container
        self.segments = f"{container}_segments"
        self.url = f"swift://{container}/{self.prefix}"
        self.segment_size = segment_size
        self._options = connection_options(environ, purpose)
        self._conn = self._connect()
        self._local = threading.local()
        self._threads_conns: list[Connection] = []

    def _connect(self, share_token: bool = False) -> Connection:
        options = dict(self._options)
        if share_token and self._conn.url and self._conn.token:
            options.update(preauthurl=self._conn.url, preauthtoken=self._conn.token)
        return Connection(
            **options,
            retries=0,  # retries are ours (multibuild.publish.containers.retry)
            timeout=self.policy.timeout_s,
        )

    def _thread_conn(self) -> Connection:
        """One connection per segment-upload thread (a Connection is not thread-safe)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = self._local.conn = self._connect(share_token=True)
            self._threads_conns.append(conn)
        return conn

    # -- helpers ----------------------------------------------------------------------------

    def classify(self, error: BaseException) -> Kind:
        return classify(error)

    def describe(self, error: BaseException) -> str:
        return describe(error)

    def _storage_url(self) -> str:
        if not self._conn.url:
            self._call("authentication", self._conn.get_auth)
        return str(self._conn.url)

    # -- the interface ----------------------------------------------------------------------

    def ensure(self) -> None:
        headers = {
            "X-Container-Read": PUBLIC_READ,
            "X-Container-Meta-Web-Index": "index.html",
            "X-Container-Meta-Web-Listings": "true",
        }
        self._call(
            f"create container {self.container}",
            lambda: self._conn.put_container(self.container, headers=headers),
        )

    def put_file(self, name: str, path: Path, digest: FileDigest) -> ObjectInfo:
        key = self._key(name)
        headers = {"X-Object-Meta-Sha256": digest.sha256}
        live: set[str] = set()  # the segments the new object references
        if digest.size > self.segment_size:
            expected, live = self._put_segmented(key, path, digest, headers)
        else:

            def put() -> str:
                with path.open("rb") as stream:
                    return str(
                        self._conn.put_object(
                            self.container,
                            key,
                            stream,
                            content_length=digest.size,
                            etag=digest.md5,  # Swift refuses (422) a body that differs
                            content_type=content_type(name),
                            headers=headers,
                        )
                    )

            self._call(f"upload of {name}", put)
            expected = digest.md5
        info = self._landed(name, digest, expected)
        # Segments of an older file under this name (a replaced nightly, segmented or not, or
        # an upload killed before its manifest) are not needed now.
        self._drop_segments(key, keep=live)
        return info

    def _drop_segments(self, key: str, keep: set[str]) -> list[str]:
        """Delete the segments under `key/` that are not in `keep`; the names deleted."""
        dropped = []
        for old in list(self._listing(self.segments, f"{key}/")):
            if old["name"] in keep:
                continue
            self._call(
                f"delete of old segment {old['name']}",
                lambda n=old["name"]: self._delete_quiet(self.segments, n),
            )
            dropped.append(old["name"])
        return dropped

    def _put_segmented(
        self, key: str, path: Path, digest: FileDigest, headers: dict[str, str]
    ) -> tuple[str, set[str]]:
        """Segments first (in parallel, each one's md5 checked against Swift's ETag), then the
        SLO manifest, which Swift checks against the segments' sizes and ETags; the name
        appears only then. A rerun keeps segments already uploaded."""
        base = f"{key}/{digest.sha256[:16]}/{digest.size}/"
        self._call(
            f"create container {self.segments}",
            lambda: self._conn.put_container(self.segments, headers={"X-Container-Read": ".r:*"}),
        )
        present = {o["name"]: o["hash"] for o in self._listing(self.segments, base)}
        count = max(1, -(-digest.size // self.segment_size))
        names = [f"{base}{index:08d}" for index in range(count)]
        md5s: list[str] = [""] * count

        def piece(index: int) -> tuple[int, int]:
            offset = index * self.segment_size
            return offset, min(self.segment_size, digest.size - offset)

        def upload_segment(index: int) -> None:
            offset, size = piece(index)
            if names[index] in present:  # a rerun: keep a segment that is already right
                with path.open("rb") as stream:
                    stream.seek(offset)
                    md5 = hashlib.md5(stream.read(size), usedforsecurity=False).hexdigest()
                if present[names[index]] == md5:
                    md5s[index] = md5
                    return

            def put() -> str:
                with path.open("rb") as stream:  # streamed, hashed on the way out
                    stream.seek(offset)
                    body = LengthWrapper(stream, size, md5=True)
                    etag = self._thread_conn().put_object(
                        self.segments, names[index], body, content_length=size
                    )
                    md5 = str(body.get_md5sum())
                if str(etag).strip('"') != md5:
                    raise CorruptSegment(f"segment {index}: ETag {etag} but md5 {md5}")
                return md5

            md5s[index] = self._call(f"upload of segment {index} of {key}", put)

        with ThreadPoolExecutor(min(self.threads, count)) as pool:
            list(pool.map(upload_segment, range(count)))
        manifest = [
            {"path": f"/{self.segments}/{name}", "etag": md5, "size_bytes": piece(i)[1]}
            for i, (name, md5) in enumerate(zip(names, md5s, strict=True))
        ]
        body = json.dumps(manifest).encode()
        self._call(
            f"upload of the manifest of {key}",
            lambda: self._conn.put_object(
                self.container,
                key,
                body,
                content_length=len(body),
                content_type=content_type(key),
                headers=headers,
                query_string="multipart-manifest=put",
            ),
        )
        return slo_etag(md5s), set(names)

    def put_bytes(self, name: str, data: bytes) -> None:
        md5 = hashlib.md5(data, usedforsecurity=False).hexdigest()
        self._call(
            f"upload of {name}",
            lambda: self._conn.put_object(
                self.container,
                self._key(name),
                data,
                content_length=len(data),
                etag=md5,
                content_type=content_type(name),
            ),
        )

    def head(self, name: str) -> ObjectInfo | None:
        def head() -> dict[str, str] | None:
            try:
                return dict(self._conn.head_object(self.container, self._key(name)))
            except ClientException as error:
                if error.http_status == 404:
                    return None
                raise

        headers = self._call(f"HEAD of {name}", head)
        if headers is None:
            return None
        return ObjectInfo(
            name=name,
            size=int(headers["content-length"]),
            last_modified=utc(
                datetime.strptime(headers["last-modified"], "%a, %d %b %Y %H:%M:%S GMT")
            ),
            etag=headers.get("etag", "").strip('"'),
            sha256=headers.get(META_SHA256, ""),
        )

    def get_bytes(self, name: str) -> bytes:
        def get() -> bytes | None:
            try:
                _, body = self._conn.get_object(self.container, self._key(name))
            except ClientException as error:
                if error.http_status == 404:
                    return None
                raise
            return bytes(body)

        result: bytes | None = self._call(f"download of {name}", get)
        if result is None:
            raise NotFound(f"{name}: not in {self.url}")
        return result

    def _listing(self, container: str, prefix: str) -> Iterator[dict[str, Any]]:
        """Every item, page by page; a page that does not start after the marker (a server
        that ignores it) stops the listing with an error instead of looping."""
        marker = ""
        while True:
            _, page = self._call(
                f"listing of {container}",
                lambda m=marker: self._get_page(container, prefix, m),
            )
            if not page:
                return
            if not isinstance(page, list) or not all(
                isinstance(item, dict) and isinstance(item.get("name"), str) for item in page
            ):
                raise UploadError(f"Swift listing of {container}: not a listing")
            if marker and page[0]["name"] <= marker:
                raise UploadError(
                    f"Swift listing of {container} does not advance (the page after "
                    f"{marker!r} starts at {page[0]['name']!r}): the server ignores the marker"
                )
            yield from page
            if len(page) < PAGE:
                return
            marker = page[-1]["name"]

    def _get_page(self, container: str, prefix: str, marker: str) -> Any:
        try:
            return self._conn.get_container(container, marker=marker, limit=PAGE, prefix=prefix)
        except ClientException as error:
            if error.http_status == 404:  # no container yet: nothing in it
                return {}, []
            raise

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        for item in self._listing(self.container, self.prefix + prefix):
            if "subdir" in item:
                continue
            yield ObjectInfo(
                name=item["name"][len(self.prefix) :],
                size=int(item["bytes"]),
                last_modified=_modified(item),
                etag=item.get("slo_etag", item.get("hash", "")).strip('"'),
            )

    def _delete_quiet(self, container: str, key: str, query: str | None = None) -> None:
        try:
            self._conn.delete_object(container, key, query_string=query)
        except ClientException as error:
            if error.http_status != 404:
                raise

    def delete(self, name: str) -> None:
        key = self._key(name)

        def delete() -> None:
            try:
                headers = self._conn.head_object(self.container, key)
            except ClientException as error:
                if error.http_status == 404:
                    return
                raise
            slo = headers.get("x-static-large-object", "").lower() == "true"
            self._delete_quiet(self.container, key, "multipart-manifest=delete" if slo else None)

        self._call(f"delete of {name}", delete)
        self._drop_segments(key, keep=set())  # and those of uploads killed before their manifest

    def _live_segments(self, key: str) -> set[str] | None:
        """The segments the object at `key` references (none for a plain object), or None
        when there is no object."""

        def manifest() -> set[str] | None:
            try:
                headers = self._conn.head_object(self.container, key)
            except ClientException as error:
                if error.http_status == 404:
                    return None
                raise
            if headers.get("x-static-large-object", "").lower() != "true":
                return set()
            _, body = self._conn.get_object(
                self.container, key, query_string="multipart-manifest=get"
            )
            prefix = f"/{self.segments}/"
            return {
                str(item["name"])[len(prefix) :]
                for item in jsontext.loads(body)
                if isinstance(item, dict) and str(item.get("name", "")).startswith(prefix)
            }

        found: set[str] | None = self._call(f"manifest of {key}", manifest)
        return found

    def sweep(self, grace_s: float, dry_run: bool = False) -> tuple[str, ...]:
        """Segments no live manifest references (left by a killed upload, or by a segmented
        wheel replaced or deleted by an older uploader), modified more than `grace_s` ago (an
        upload in progress has not written its manifest yet), by the store's clock (its Date
        header), never this host's."""
        headers: Mapping[str, str] = self._call("time of the store", self._conn.head_account)
        try:
            now = utc(parsedate_to_datetime(headers["date"]))
        except (KeyError, TypeError, ValueError):
            return ()  # no time from the store: nothing is judged stale
        cutoff = now - timedelta(seconds=grace_s)
        by_key: dict[str, list[dict[str, Any]]] = {}
        for item in self._listing(self.segments, self.prefix):
            parts = str(item["name"]).rsplit("/", 3)
            if len(parts) == 4:
                by_key.setdefault(parts[0], []).append(item)
        gone = []
        for key, items in sorted(by_key.items()):
            stale = [i["name"] for i in items if _modified(i) < cutoff]
            if not stale:
                continue
            live = self._live_segments(key) or set()
            orphans = [n for n in stale if n not in live]
            if dry_run:
                gone += orphans
                continue
            for name in orphans:
                self._call(
                    f"delete of orphan segment {name}",
                    lambda n=name: self._delete_quiet(self.segments, n),
                )
                gone.append(name)
        return tuple(f"{self.segments}/{name}" for name in gone)

    def exists(self) -> bool:
        def head() -> bool:
            try:
                self._conn.head_container(self.container)
            except ClientException as error:
                if error.http_status == 404:
                    return False
                raise
            return True

        found: bool = self._call(f"HEAD of {self.container}", head)
        return found

    def public_url(self, name: str = "") -> str:
        base = f"{self._storage_url()}/{quote(self.container)}/"
        return base + quote(self._key(name) if name else self.prefix)

    def close(self) -> None:
        self._conn.close()
        for conn in self._threads_conns:
            conn.close()
        self._threads_conns.clear()
