"""Credentials come only from environment variables, or from a file a `<VAR>_FILE` names.

Which variables are secrets (and withheld from builds) is multibuild.util.secrets' one list;
they are never printed: every output passes through the run's Redactor.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from multibuild.errors import CredentialsError

# What a container is opened for, as messages say it.
PURPOSES = {
    "upload": ("{backend} upload", "; nothing was uploaded"),
    "prune": ("{backend} prune", "; nothing was deleted"),
    "read": (
        "reading a {backend} container by its URL (to find its public URL)",
        "; or give the container's public https:// URL",
    ),
}


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


def require(
    environ: Mapping[str, str], names: list[str], backend: str, purpose: str = "upload"
) -> dict[str, str]:
    """All of `names`, or one error naming every missing variable. `purpose` is what the
    container is opened for (upload, prune, read), as the message says it."""
    values = {name: read_variable(environ, name) for name in names}
    missing = [name for name, value in values.items() if not value]
    if missing:
        lead, tail = PURPOSES.get(purpose, PURPOSES["upload"])
        raise CredentialsError(
            f"{lead.format(backend=backend)} needs credentials in the environment: "
            f"{', '.join(missing)} not set (or set {missing[0]}_FILE to a file holding it)" + tail
        )
    return {name: value for name, value in values.items() if value}
