"""Credentials come only from environment variables, or from a file a `<VAR>_FILE` names.

They are never printed: every message the upload side shows, every log and build record it
uploads passes through `redact`, which hides the values of the secret variables.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from multibuild.errors import CredentialsError

# Variables whose values are secrets wherever they appear.
SECRET_VARIABLES = (
    "ST_KEY",
    "OS_PASSWORD",
    "OS_AUTH_TOKEN",
    "OS_APPLICATION_CREDENTIAL_SECRET",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "ANACONDA_TOKEN",
)
# Upload credentials the containers read (this package): given to the job only as
# encrypted or secret variables, and never to pull requests.
UPLOAD_CREDENTIALS = (
    "ST_AUTH", "ST_USER", "ST_KEY",
    "OS_AUTH_URL", "OS_USERNAME", "OS_PASSWORD", "OS_PROJECT_NAME",
    "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_ENDPOINT_URL",
    "ANACONDA_TOKEN",
)  # fmt: skip
_SECRET_WORDS = ("KEY", "SECRET", "TOKEN", "PASSWORD", "PASSWD")
_MIN_SECRET = 6


def read_variable(environ: Mapping[str, str], name: str) -> str | None:
    """`name` from the environment, or the contents of the file `name_FILE` names."""
    value = environ.get(name)
    if value:
        return value
    file_name = environ.get(f"{name}_FILE")
    if file_name:
        try:
            text = Path(file_name).read_text(encoding="utf-8").strip()
        except OSError as error:
            raise CredentialsError(
                f"{name}_FILE names a file that cannot be read ({error.strerror})"
            ) from None
        return text or None
    return None


def require(environ: Mapping[str, str], names: list[str], backend: str) -> dict[str, str]:
    """All of `names`, or one error naming every missing variable."""
    values = {name: read_variable(environ, name) for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing:
        raise CredentialsError(
            f"{backend} upload needs credentials in the environment: "
            f"{', '.join(missing)} not set (or set {missing[0]}_FILE to a file holding it); "
            "nothing was uploaded"
        )
    return {name: value for name, value in values.items() if value}


def is_secret_name(name: str) -> bool:
    """A known secret or upload credential, or a name that says secret (KEY, TOKEN, ...);
    `NAME_FILE` as NAME."""
    base = name.removesuffix("_FILE")
    return (
        base in SECRET_VARIABLES
        or base in UPLOAD_CREDENTIALS
        or any(word in base.upper() for word in _SECRET_WORDS)
    )


def withheld(environ: Mapping[str, str]) -> dict[str, str]:
    """`environ` without credentials: what a build and its hooks (the project's code) get."""
    return {name: value for name, value in environ.items() if not is_secret_name(name)}


def secret_values(environ: Mapping[str, str]) -> list[str]:
    """The values to hide: the known secret variables and any whose name says secret."""
    values = set()
    for name in environ:
        base = name[:-5] if name.endswith("_FILE") else name
        if base in SECRET_VARIABLES or any(word in base.upper() for word in _SECRET_WORDS):
            try:
                value = read_variable(environ, base) if name.endswith("_FILE") else environ[name]
            except CredentialsError:
                continue
            if value and len(value) >= _MIN_SECRET:
                values.add(value)
    return sorted(values, key=len, reverse=True)


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "***")
    return text
