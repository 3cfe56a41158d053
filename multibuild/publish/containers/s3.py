"""S3-compatible storage (AWS, Cloudflare R2, MinIO, Swift's s3api, SeaweedFS) through boto3.

URL: `s3://BUCKET[/prefix]`. Credentials and endpoint from boto3's own variables:
AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY (AWS_SESSION_TOKEN), AWS_ENDPOINT_URL (or
AWS_ENDPOINT_URL_S3), AWS_DEFAULT_REGION/AWS_REGION. Files bigger than the part size go as
multipart uploads, which only appear when completed.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote, urlsplit

import boto3
import botocore.exceptions
from botocore.config import Config

from multibuild.errors import ConfigurationError, UploadError
from multibuild.publish.containers import retry
from multibuild.publish.containers.base import (
    FileDigest,
    NotFound,
    ObjectInfo,
    ObjectStore,
    content_type,
    multipart_etag,
    utc,
)
from multibuild.publish.containers.credentials import read_variable, require
from multibuild.publish.containers.retry import Kind, RetryPolicy

if TYPE_CHECKING:
    from mypy_boto3_s3.client import S3Client

PAGE = 1_000  # S3's largest listing page
DEFAULT_PART = 64 << 20
MIN_PART = 5 << 20  # S3's smallest part (all but the last)
THREADS = 4  # parts uploaded at once (each held in memory while it goes)
THROTTLE_CODES = frozenset({"SlowDown", "Throttling", "RequestTimeout", "InternalError"})


def _code(error: botocore.exceptions.ClientError) -> str:
    return str(error.response.get("Error", {}).get("Code", ""))


def classify(error: BaseException) -> Kind:
    if isinstance(error, botocore.exceptions.ClientError):
        code = _code(error)
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code in THROTTLE_CODES:
            return Kind.TRANSIENT
        if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied"):
            return Kind.AUTH
        return retry.status_kind(status)
    if isinstance(
        error,
        (
            botocore.exceptions.ConnectionError,
            botocore.exceptions.HTTPClientError,
            botocore.exceptions.IncompleteReadError,
            botocore.exceptions.ResponseStreamingError,
        ),
    ):
        return Kind.TRANSIENT
    if isinstance(error, botocore.exceptions.NoCredentialsError):
        return Kind.AUTH
    return retry.generic_kind(error)


def describe(error: BaseException) -> str:
    if isinstance(error, botocore.exceptions.ClientError):
        info = error.response.get("Error", {})
        status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        code = str(info.get("Code", ""))
        return f"HTTP {status} {code if code != str(status) else ''}".strip()
    return f"{type(error).__name__}: {error}"


def check_endpoint(name: str, url: str) -> str:
    """An endpoint URL from the environment: http(s), a host, no credentials in it (those
    come from AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, never from a URL a message or a name
    lookup would show)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        _ = parts.port
    except ValueError as error:
        raise ConfigurationError(f"{name} is not a valid URL ({error})") from None
    if parts.username is not None or parts.password is not None or "@" in parts.netloc:
        raise ConfigurationError(
            f"{name} holds credentials (user:password@): give the endpoint alone; the keys "
            "come from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(f"{name} must be an http:// or https:// URL with a host")
    return url


def _md5_b64(data: bytes) -> tuple[str, str]:
    digest = hashlib.md5(data, usedforsecurity=False)
    return digest.hexdigest(), base64.b64encode(digest.digest()).decode()


class S3Container(ObjectStore):
    service = "S3"

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        environ: Mapping[str, str],
        policy: RetryPolicy | None = None,
        part_size: int = DEFAULT_PART,
        threads: int | None = None,
        purpose: str = "upload",
    ) -> None:
        super().__init__(prefix, policy, threads or THREADS)
        self.bucket = bucket
        self.url = f"s3://{bucket}/{self.prefix}"
        self.part_size = max(part_size, MIN_PART)
        endpoint_name = next(
            (n for n in ("AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL") if environ.get(n)), None
        )
        endpoint = check_endpoint(endpoint_name, environ[endpoint_name]) if endpoint_name else None
        keys = require(environ, ["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"], "S3", purpose)
        region = environ.get("AWS_REGION") or environ.get("AWS_DEFAULT_REGION") or "us-east-1"
        self.region = region
        session = boto3.session.Session(
            aws_access_key_id=keys["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=keys["AWS_SECRET_ACCESS_KEY"],
            aws_session_token=read_variable(environ, "AWS_SESSION_TOKEN"),
            region_name=region,
        )
        config = Config(
            retries={"total_max_attempts": 1, "mode": "standard"},  # retries are ours
            connect_timeout=self.policy.timeout_s,
            read_timeout=self.policy.timeout_s,
            # Other S3 servers do not all know the newer default checksums.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            s3={"addressing_style": "path" if endpoint else "auto"},
        )
        self._client: S3Client = session.client("s3", endpoint_url=endpoint, config=config)

    def classify(self, error: BaseException) -> Kind:
        return classify(error)

    def describe(self, error: BaseException) -> str:
        return describe(error)

    def ensure(self) -> None:
        def ensure() -> None:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError as error:
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status != 404:
                    raise
                try:
                    if self.region == "us-east-1":
                        self._client.create_bucket(Bucket=self.bucket)
                    else:
                        self._client.create_bucket(
                            Bucket=self.bucket,
                            CreateBucketConfiguration={"LocationConstraint": self.region},  # type: ignore[typeddict-item]
                        )
                except botocore.exceptions.ClientError as error:
                    # An earlier attempt made it and its answer was lost (or the store's
                    # listing lagged behind): the bucket is ours, which is what we wanted.
                    if error.response.get("Error", {}).get("Code") != "BucketAlreadyOwnedByYou":
                        raise

        self._call(f"create bucket {self.bucket}", ensure)

    def put_file(self, name: str, path: Path, digest: FileDigest) -> ObjectInfo:
        key = self._key(name)
        metadata = {"sha256": digest.sha256}
        if digest.size > self.part_size:
            expected = self._put_multipart(key, path, metadata)
        else:
            data = path.read_bytes()
            md5, md5_b64 = _md5_b64(data)
            self._call(
                f"upload of {name}",
                lambda: self._client.put_object(
                    Bucket=self.bucket,
                    Key=key,
                    Body=data,
                    ContentMD5=md5_b64,  # the server refuses a body that differs
                    ContentType=content_type(name),
                    Metadata=metadata,
                ),
            )
            expected = md5
        return self._landed(name, digest, expected)

    def _put_multipart(self, key: str, path: Path, metadata: dict[str, str]) -> str:
        starts = 0

        def create() -> Any:
            nonlocal starts
            starts += 1
            return self._client.create_multipart_upload(
                Bucket=self.bucket, Key=key, Metadata=metadata, ContentType=content_type(key)
            )

        created = self._call(f"start of the multipart upload of {key}", create)
        upload_id = created["UploadId"]
        size = path.stat().st_size
        count = max(1, -(-size // self.part_size))
        results: dict[int, tuple[str, str]] = {}  # part number -> (ETag, md5)

        def upload_part(number: int) -> None:
            with path.open("rb") as stream:
                stream.seek((number - 1) * self.part_size)
                piece = stream.read(self.part_size)
            md5, md5_b64 = _md5_b64(piece)
            result = self._call(
                f"upload of part {number} of {key}",
                lambda: self._client.upload_part(
                    Bucket=self.bucket,
                    Key=key,
                    UploadId=upload_id,
                    PartNumber=number,
                    Body=piece,
                    ContentMD5=md5_b64,
                ),
            )
            results[number] = (str(result["ETag"]), md5)

        try:
            with ThreadPoolExecutor(min(self.threads, count)) as pool:
                list(pool.map(upload_part, range(1, count + 1)))
            parts = [{"ETag": results[n][0], "PartNumber": n} for n in range(1, count + 1)]
            md5s = [results[n][1] for n in range(1, count + 1)]
            expected = multipart_etag(md5s)

            def complete() -> None:
                try:
                    self._client.complete_multipart_upload(
                        Bucket=self.bucket,
                        Key=key,
                        UploadId=upload_id,
                        MultipartUpload={"Parts": parts},  # type: ignore[typeddict-item]
                    )
                except botocore.exceptions.ClientError as error:
                    # An earlier attempt completed it, and its answer was lost on the way:
                    # the upload is gone, and the object is there with the parts' ETag.
                    if _code(error) != "NoSuchUpload" or self._etag(key) != expected:
                        raise

            self._call(f"completion of the multipart upload of {key}", complete)
        except BaseException:
            with contextlib.suppress(Exception):  # best effort; the server expires it anyway
                self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
            raise
        if starts > 1:
            # A start whose answer was lost still made an upload on the server: abort the
            # other unfinished uploads of this name now (a killed run's go with `sweep`).
            self._abort_others(key, upload_id)
        return expected

    def _abort_others(self, key: str, keep: str) -> None:
        def uploads() -> list[dict[str, Any]]:
            page: Any = self._client.list_multipart_uploads(Bucket=self.bucket, Prefix=key)
            return [u for u in page.get("Uploads", []) if u.get("Key") == key]

        for upload in self._call(f"listing of the multipart uploads of {key}", uploads):
            if str(upload["UploadId"]) != keep:
                self._call(
                    f"abort of an unfinished multipart upload of {key}",
                    lambda u=str(upload["UploadId"]): self._abort(key, u),
                )

    def _etag(self, key: str) -> str:
        try:
            found = self._client.head_object(Bucket=self.bucket, Key=key)
        except botocore.exceptions.ClientError as error:
            if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                return ""
            raise
        return str(found.get("ETag", "")).strip('"')

    def put_bytes(self, name: str, data: bytes) -> None:
        _, md5_b64 = _md5_b64(data)
        self._call(
            f"upload of {name}",
            lambda: self._client.put_object(
                Bucket=self.bucket,
                Key=self._key(name),
                Body=data,
                ContentMD5=md5_b64,
                ContentType=content_type(name),
            ),
        )

    def head(self, name: str) -> ObjectInfo | None:
        def head() -> Any:
            try:
                return self._client.head_object(Bucket=self.bucket, Key=self._key(name))
            except botocore.exceptions.ClientError as error:
                status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
                if status == 404:
                    return None
                raise

        result = self._call(f"HEAD of {name}", head)
        if result is None:
            return None
        return ObjectInfo(
            name=name,
            size=int(result["ContentLength"]),
            last_modified=utc(result["LastModified"]),
            etag=str(result.get("ETag", "")).strip('"'),
            sha256=str(result.get("Metadata", {}).get("sha256", "")),
        )

    def get_bytes(self, name: str) -> bytes:
        def get() -> bytes | None:
            try:
                response = self._client.get_object(Bucket=self.bucket, Key=self._key(name))
            except botocore.exceptions.ClientError as error:
                if _code(error) in ("NoSuchKey", "404"):
                    return None
                raise
            data: bytes = response["Body"].read()
            return data

        result: bytes | None = self._call(f"download of {name}", get)
        if result is None:
            raise NotFound(f"{name}: not in {self.url}")
        return result

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        """Every object, page by page; a page that repeats a continuation token or does not
        start after the last key (a server that ignores the token) stops with an error."""
        token = ""
        tokens: set[str] = set()
        last = ""
        while True:

            def page(t: str = token) -> Any:
                args: dict[str, Any] = {
                    "Bucket": self.bucket,
                    "Prefix": self.prefix + prefix,
                    "MaxKeys": PAGE,
                }
                if t:
                    args["ContinuationToken"] = t
                try:
                    return self._client.list_objects_v2(**args)
                except botocore.exceptions.ClientError as error:
                    if error.response.get("Error", {}).get("Code") == "NoSuchBucket":
                        return {}
                    raise

            result = self._call(f"listing of {self.bucket}", page)
            contents = result.get("Contents", [])
            if last and contents and str(contents[0]["Key"]) <= last:
                raise UploadError(
                    f"S3 listing of {self.bucket} does not advance (the page after {last!r} "
                    f"starts at {contents[0]['Key']!r}): the server ignores the continuation"
                )
            for item in contents:
                last = str(item["Key"])
                yield ObjectInfo(
                    name=item["Key"][len(self.prefix) :],
                    size=int(item["Size"]),
                    last_modified=utc(item["LastModified"]),
                    etag=str(item.get("ETag", "")).strip('"'),
                )
            token = result.get("NextContinuationToken", "")
            if not result.get("IsTruncated") or not token:
                return
            if token in tokens:
                raise UploadError(f"S3 listing of {self.bucket} repeats a continuation token")
            tokens.add(token)

    def delete(self, name: str) -> None:
        self._call(
            f"delete of {name}",
            lambda: self._client.delete_object(Bucket=self.bucket, Key=self._key(name)),
        )

    def exists(self) -> bool:
        def head() -> bool:
            try:
                self._client.head_bucket(Bucket=self.bucket)
            except botocore.exceptions.ClientError as error:
                if error.response.get("ResponseMetadata", {}).get("HTTPStatusCode") == 404:
                    return False
                raise
            return True

        found: bool = self._call(f"HEAD of bucket {self.bucket}", head)
        return found

    def sweep(self, grace_s: float, dry_run: bool = False) -> tuple[str, ...]:
        """Multipart uploads under the prefix started more than `grace_s` ago and never
        completed (a killed uploader, a completion whose answer was lost): their parts are
        stored, and billed, until aborted. Their age is by the store's clock (the Date of its
        answer), never this host's."""
        dates: list[str] = []

        def uploads() -> list[dict[str, Any]]:
            found: list[dict[str, Any]] = []
            args: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix}
            for _ in range(1000):
                try:
                    page: Any = self._client.list_multipart_uploads(**args)
                except botocore.exceptions.ClientError as error:
                    if _code(error) in ("NoSuchBucket", "NotImplemented"):
                        return found
                    raise
                found += page.get("Uploads", [])
                dates.append(
                    page.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date", "")
                )
                if not page.get("IsTruncated"):
                    break
                args["KeyMarker"] = page.get("NextKeyMarker", "")
                args["UploadIdMarker"] = page.get("NextUploadIdMarker", "")
            return found

        gone = []
        pending = self._call(f"listing of the multipart uploads of {self.bucket}", uploads)
        try:
            cutoff = utc(parsedate_to_datetime(dates[0])) - timedelta(seconds=grace_s)
        except (IndexError, TypeError, ValueError):
            return ()  # no time from the store: nothing is judged stale
        for upload in pending:
            if utc(upload["Initiated"]) >= cutoff:
                continue
            key, upload_id = str(upload["Key"]), str(upload["UploadId"])
            if not dry_run:
                self._call(
                    f"abort of the multipart upload of {key}",
                    lambda k=key, u=upload_id: self._abort(k, u),
                )
            gone.append(f"unfinished multipart upload of {key}")
        return tuple(gone)

    def _abort(self, key: str, upload_id: str) -> None:
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=key, UploadId=upload_id)
        except botocore.exceptions.ClientError as error:
            if _code(error) != "NoSuchUpload":
                raise

    def public_url(self, name: str = "") -> str:
        base = f"{self._client.meta.endpoint_url.rstrip('/')}/{quote(self.bucket)}/"
        return base + quote(self._key(name) if name else self.prefix)

    def close(self) -> None:
        self._client.close()
