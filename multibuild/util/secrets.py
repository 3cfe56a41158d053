"""Secrets: which environment variables hold them, an environment without them (what a build
and its hooks get), and the one redaction every output passes through.

A `Redactor` is built once per run from the environment (and the URLs given on the command
line) and hides each known secret value wherever it would show: the console (both streams),
the build log, the build record, error messages, and the logs and records an upload sends.
It hides the value as it is and in every encoding those outputs use: each of its lines (a
multi-line key is printed line by line), JSON and Python string escapes, URL encoding, HTML
escapes, base64 (and HTTP basic auth's base64 of `user:secret`); and any `user:password@` in a
URL, known or not.
"""

from __future__ import annotations

import base64
import html
import json
import re
import sys
import urllib.parse
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any, TextIO

MASK = "***"
# Values shorter than this are not hidden: replacing them would garble ordinary text.
MIN_SECRET = 6

# Variables whose values are secrets wherever they appear.
SECRET_VARIABLES = (
    "ST_KEY",
    "OS_PASSWORD",
    "OS_AUTH_TOKEN",
    "OS_APPLICATION_CREDENTIAL_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "TWINE_PASSWORD",
    "GITHUB_TOKEN",
    "GH_TOKEN",
    "ANACONDA_API_TOKEN",
    "ANACONDA_TOKEN",
    "BINSTAR_API_TOKEN",
    "ACTIONS_RUNTIME_TOKEN",
    "ACTIONS_ID_TOKEN_REQUEST_TOKEN",
    "CODECOV_TOKEN",
    "NODE_AUTH_TOKEN",
)
# The upload credentials the containers and the nightly index read: the CI configs give them
# to a job (never to a pull request) as encrypted or secret variables.
UPLOAD_CREDENTIALS = (
    "ST_AUTH",
    "ST_USER",
    "ST_KEY",
    "OS_AUTH_URL",
    "OS_USERNAME",
    "OS_PASSWORD",
    "OS_PROJECT_NAME",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_ENDPOINT_URL",
    "ANACONDA_TOKEN",
)
# Credentials that are not secret values by themselves (user names, endpoints) but that
# only the upload and the release tools need: a build never gets them either.
CREDENTIAL_VARIABLES = (
    *UPLOAD_CREDENTIALS,
    "OS_PROJECT_ID",
    "OS_STORAGE_URL",
    "OS_APPLICATION_CREDENTIAL_ID",
    "AWS_ENDPOINT_URL_S3",
    "TWINE_USERNAME",
    "TWINE_REPOSITORY_URL",
    "ACTIONS_ID_TOKEN_REQUEST_URL",
)
# A name with one of these words holds a secret (MY_API_TOKEN, PYPI_PASSWORD, ...).
_SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD", "CREDENTIAL")
# User names that go with a secret in HTTP basic auth (base64 of "user:secret").
_PAIRS = (
    ("ST_USER", "ST_KEY"),
    ("OS_USERNAME", "OS_PASSWORD"),
    ("TWINE_USERNAME", "TWINE_PASSWORD"),
    ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"),
)
# PyPI API tokens go with this user name; GitHub tokens with any (git's x-access-token).
_TOKEN_USERS = ("__token__", "x-access-token")
_GIT_CONFIG_KEY = re.compile(r"GIT_CONFIG_KEY_\d+")
_USERINFO = re.compile(r"(?<=://)[^/@\s]+@")
_URL_CREDENTIALS = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*://([^/@\s:]*):([^/@\s]+)@")


def _base(name: str) -> str:
    return name.removesuffix("_FILE")


def is_secret_name(name: str) -> bool:
    """A variable whose value is a secret (a known one, or a name that says so: KEY, TOKEN,
    PASSWORD, ...); `NAME_FILE` as NAME. git's GIT_CONFIG_KEY_<n> names a setting."""
    base = _base(name)
    if _GIT_CONFIG_KEY.fullmatch(base):
        return False
    return base in SECRET_VARIABLES or any(word in base.upper() for word in _SECRET_WORDS)


def is_credential_name(name: str) -> bool:
    """A secret, or a credential the upload and release tools need (user, endpoint)."""
    return is_secret_name(name) or _base(name) in CREDENTIAL_VARIABLES


def withheld(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without any credential: what a build and its hooks (the project's code,
    cibuildwheel, the test run) get. The one list of what is withheld is the two above."""
    return {name: value for name, value in environ.items() if not is_credential_name(name)}


def _file_value(path: str) -> str | None:
    try:
        return Path(path).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values to hide: every secret variable's (or its `_FILE`'s contents), and the
    password of any URL with `user:password@` in a value; longest first."""
    values: set[str] = set()
    for name, value in environ.items():
        if is_secret_name(name):
            found = _file_value(value) if name.endswith("_FILE") else value
            if found:
                values.add(found)
        values.update(url_passwords(value))
    return sorted((v for v in values if len(v.strip()) >= MIN_SECRET), key=len, reverse=True)


def url_passwords(text: str) -> list[str]:
    """The passwords of the `scheme://user:password@` URLs in `text`."""
    return [password for _, password in _URL_CREDENTIALS.findall(text)]


def _basic_users(environ: Mapping[str, str], secret: str) -> list[str]:
    users = [
        environ[user] for user, key in _PAIRS if environ.get(key) == secret and user in environ
    ]
    return [*users, *_TOKEN_USERS]


def _encodings(value: str) -> Iterator[str]:
    """How `value` may appear in output: as it is and in the encodings outputs use."""
    for secret in {value, value.strip()}:
        yield from _encoded(secret)
    # A multi-line value is printed (and logged) line by line.
    for line in value.splitlines():
        yield from _encoded(line.strip())


def _encoded(secret: str) -> Iterator[str]:
    yield secret
    yield json.dumps(secret)[1:-1]
    yield json.dumps(secret, ensure_ascii=False)[1:-1]
    yield repr(secret)[1:-1]
    yield urllib.parse.quote(secret, safe="")
    yield urllib.parse.quote_plus(secret)
    yield html.escape(secret, quote=True)
    raw = secret.encode("utf-8", errors="replace")
    yield base64.b64encode(raw).decode()
    yield base64.urlsafe_b64encode(raw).decode()
    yield base64.b64encode(raw).decode().rstrip("=")


class Redactor:
    """Hides known secret values (and URL credentials) in text. Immutable, thread-safe."""

    def __init__(self, secrets: Iterable[str] = (), basic_auth: Iterable[str] = ()) -> None:
        forms: set[str] = set()
        for secret in secrets:
            forms.update(f for f in _encodings(secret) if len(f.strip()) >= MIN_SECRET)
        for pair in basic_auth:  # "user:secret" as HTTP basic auth sends it
            forms.add(base64.b64encode(pair.encode("utf-8", errors="replace")).decode())
        self.secrets = tuple(sorted(set(secrets)))
        self._forms = tuple(sorted(forms, key=len, reverse=True))
        self._pattern = (
            re.compile("|".join(re.escape(form) for form in self._forms)) if self._forms else None
        )

    @classmethod
    def from_environ(cls, environ: Mapping[str, str], argv: Sequence[str] = ()) -> Redactor:
        """The run's redactor: the secrets of `environ`, and the passwords of URLs given on
        the command line (`--repository-url https://user:password@...`)."""
        secrets = secret_values(environ)
        extra = [p for arg in argv for p in url_passwords(arg) if len(p) >= MIN_SECRET]
        pairs = [f"{user}:{secret}" for secret in secrets for user in _basic_users(environ, secret)]
        for arg in argv:
            pairs += [f"{user}:{password}" for user, password in _URL_CREDENTIALS.findall(arg)]
        return cls([*secrets, *extra], pairs)

    def __call__(self, text: str) -> str:
        if self._pattern is not None:
            text = self._pattern.sub(MASK, text)
        return _USERINFO.sub(MASK + "@", text) if "@" in text else text


NO_SECRETS = Redactor()


class RedactingStream:
    """A text stream that writes whole lines through a Redactor (a partial line waits for
    its end, or for a flush: progress lines that rewrite themselves flush)."""

    def __init__(self, stream: TextIO, redact: Redactor) -> None:
        self.stream = stream
        self.redact = redact
        self._pending = ""

    def write(self, text: str) -> int:
        self._pending += text
        if "\n" in self._pending:
            head, _, self._pending = self._pending.rpartition("\n")
            self.stream.write(self.redact(head + "\n"))
        return len(text)

    def flush(self) -> None:
        if self._pending:
            self.stream.write(self.redact(self._pending))
            self._pending = ""
        self.stream.flush()

    def isatty(self) -> bool:
        return self.stream.isatty()

    def fileno(self) -> int:
        return self.stream.fileno()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.stream, name)


@contextmanager
def redacted_output(redact: Redactor) -> Iterator[None]:
    """sys.stdout and sys.stderr through `redact` for the block (the whole command)."""
    saved = sys.stdout, sys.stderr
    out, err = RedactingStream(saved[0], redact), RedactingStream(saved[1], redact)
    sys.stdout, sys.stderr = out, err
    try:
        yield
    finally:
        for stream in (out, err):
            with suppress(OSError, ValueError):
                stream.flush()
        sys.stdout, sys.stderr = saved
