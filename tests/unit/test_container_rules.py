"""Container URLs, credentials from the environment only, ETags of segmented uploads, and the
retry classification (which failures are retried)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from multibuild.errors import ConfigurationError, CredentialsError, UploadError
from multibuild.publish.containers import open_container, split_url
from multibuild.publish.containers import swift as swift_backend
from multibuild.publish.containers.base import multipart_etag, slo_etag
from multibuild.publish.containers.retry import Kind, RetryPolicy, call, status_kind


def test_multipart_and_slo_etags() -> None:
    md5s = [hashlib.md5(b"a").hexdigest(), hashlib.md5(b"b").hexdigest()]
    assert (
        multipart_etag(md5s)
        == hashlib.md5(hashlib.md5(b"a").digest() + hashlib.md5(b"b").digest()).hexdigest() + "-2"
    )
    assert slo_etag(md5s) == hashlib.md5("".join(md5s).encode()).hexdigest()


def test_urls(tmp_path: Path) -> None:
    assert split_url("swift://wheels/pre/x") == ("swift", "wheels", "pre/x")
    assert split_url("s3://bucket") == ("s3", "bucket", "")
    assert split_url("file:///srv/wheels") == ("file", "/srv/wheels", "")
    assert split_url("containers/pre") == ("file", "containers/pre", "")
    for bad in ("ftp://x/y", "swift://", "s3://user:pw@bucket", "s3://b?key=1"):
        with pytest.raises(ConfigurationError):
            split_url(bad)
    local = open_container("containers/pre", base_dir=tmp_path, environ={})
    assert local.public_url().startswith("file://")


@pytest.mark.parametrize(
    ("url", "env", "missing"),
    [
        ("swift://c", {}, "ST_AUTH, ST_USER, ST_KEY"),
        ("swift://c", {"ST_AUTH": "http://127.0.0.1:1/auth/v1.0", "ST_USER": "a:b"}, "ST_KEY"),
        ("swift://c", {"OS_AUTH_URL": "http://127.0.0.1:1/v3", "OS_USERNAME": "u"}, "OS_PASSWORD"),
        ("s3://bkt", {}, "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY"),
        ("s3://bkt", {"AWS_ACCESS_KEY_ID": "x"}, "AWS_SECRET_ACCESS_KEY"),
    ],
)
def test_missing_credentials_are_named(
    url: str, env: dict[str, str], missing: str, tmp_path: Path
) -> None:
    with pytest.raises(CredentialsError, match=missing) as error:
        open_container(url, base_dir=tmp_path, environ=env)
    assert "nothing was uploaded" in str(error.value)


def test_keystone_v3_options() -> None:
    options = swift_backend.connection_options(
        {
            "OS_AUTH_URL": "http://127.0.0.1:5000/v3",
            "OS_USERNAME": "u",
            "OS_PASSWORD": "p4ssw0rd",
            "OS_PROJECT_NAME": "proj",
            "OS_USER_DOMAIN_NAME": "Default",
            "OS_PROJECT_DOMAIN_NAME": "Default",
            "OS_IDENTITY_API_VERSION": "3",
        }
    )
    assert options["auth_version"] == "3"
    assert options["os_options"]["project_name"] == "proj"
    assert options["os_options"]["user_domain_name"] == "Default"


def test_credentials_from_a_file(tmp_path: Path) -> None:
    key_file = tmp_path / "key"
    key_file.write_text("s3cr3t-from-file\n")
    options = swift_backend.connection_options(
        {"ST_AUTH": "http://127.0.0.1:1/auth/v1.0", "ST_USER": "a:b", "ST_KEY_FILE": str(key_file)}
    )
    assert options["key"] == "s3cr3t-from-file"
    with pytest.raises(CredentialsError, match="ST_KEY_FILE"):
        swift_backend.connection_options(
            {"ST_AUTH": "x", "ST_USER": "a:b", "ST_KEY_FILE": str(tmp_path / "nope")}
        )


def test_retry_classification_and_deadline() -> None:
    assert status_kind(None) is Kind.TRANSIENT
    assert status_kind(503) is Kind.TRANSIENT
    assert status_kind(429) is Kind.TRANSIENT
    assert status_kind(401) is Kind.AUTH
    assert status_kind(404) is Kind.PERMANENT
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionResetError("reset by peer")
        return "done"

    waits: list[float] = []
    policy = RetryPolicy(attempts=5, base_s=0.01)
    result = call(
        flaky, what="x", classify=lambda e: Kind.TRANSIENT, policy=policy, sleep=waits.append
    )
    assert result == "done"
    assert len(waits) == 2

    def always() -> None:
        raise TimeoutError("slow")

    with pytest.raises(UploadError, match="still failing after 5 attempts"):
        call(always, what="x", classify=lambda e: Kind.TRANSIENT, policy=policy, sleep=waits.append)
    with pytest.raises(UploadError, match="deadline"):
        call(
            always,
            what="x",
            classify=lambda e: Kind.TRANSIENT,
            policy=RetryPolicy(attempts=100, base_s=10, max_wait_s=10, deadline_s=0.001),
            sleep=waits.append,
        )

    def permanent() -> None:
        raise ValueError("bad request")

    count = len(waits)
    with pytest.raises(UploadError, match="bad request"):
        call(
            permanent,
            what="x",
            classify=lambda e: Kind.PERMANENT,
            policy=policy,
            sleep=waits.append,
        )
    assert len(waits) == count


def test_a_bucket_made_by_an_attempt_whose_answer_was_lost_is_ours() -> None:
    """A retried bucket creation meets the bucket the lost attempt made (409
    BucketAlreadyOwnedByYou): that is success; a bucket of someone else is not."""
    from botocore.stub import Stubber

    from multibuild.publish.containers.s3 import S3Container

    environ = {"AWS_ACCESS_KEY_ID": "id", "AWS_SECRET_ACCESS_KEY": "secret-key-1"}
    container = S3Container("bkt", environ=environ, policy=RetryPolicy(attempts=1))
    for code, fails in (("BucketAlreadyOwnedByYou", False), ("BucketAlreadyExists", True)):
        with Stubber(container._client) as stub:
            stub.add_client_error("head_bucket", http_status_code=404)
            stub.add_client_error("create_bucket", service_error_code=code, http_status_code=409)
            if fails:
                with pytest.raises(UploadError, match=code):
                    container.ensure()
            else:
                container.ensure()
            stub.assert_no_pending_responses()
