"""Upload to a package index with twine (`python -m twine`): `twine check` first, then only the
files the index does not already have.

twine's `--skip-existing` is refused by servers other than PyPI, so the index's PEP 503 simple
page is read instead: a file already there with the same sha256 is skipped, one with another
sha256 stops the upload before anything is sent. The repository is a name from `.pypirc`
(`-r`, default `pypi`) or a URL; credentials come from `.pypirc`, `TWINE_*` or keyring, as
twine reads them. The simple index is `--index-url`, else found beside the upload URL (devpi's
`+simple/`, pypiserver's `simple/`), else, for PyPI, the index pip is configured with.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urljoin, urlsplit

from multibuild.errors import ConfigurationError, CredentialsError, FatalError, ReleaseError
from multibuild.util.cmd import Result, excerpt, run
from multibuild.util.http import Http, HttpError
from multibuild.util.index import configured_indexes, project_files
from multibuild.util.urls import check_url, hide_userinfo


class IndexRefusedError(ReleaseError):
    """The index refused an upload (a file of that name exists with other content, bad
    metadata, ...)."""


@dataclass(frozen=True)
class Target:
    """Where files go: twine's repository name or URL, and the simple index to check."""

    repository: str = "pypi"
    repository_url: str | None = None
    config_file: str | None = None
    index_url: str | None = None  # the PEP 503 simple index (found when None)

    def twine_args(self) -> list[str]:
        args = []
        if self.repository_url:
            args += ["--repository-url", self.repository_url]
        else:
            args += ["--repository", self.repository]
        if self.config_file:
            args += ["--config-file", self.config_file]
        return args

    def upload_url(self) -> str:
        if self.repository_url:
            check_url(self.repository_url, "--repository-url")
            return self.repository_url
        from twine.exceptions import InvalidConfiguration
        from twine.utils import DEFAULT_CONFIG_FILE, get_repository_from_config

        config = str(Path(self.config_file or DEFAULT_CONFIG_FILE).expanduser())
        try:
            found = get_repository_from_config(config, self.repository)
        except InvalidConfiguration as error:
            raise ConfigurationError(f"repository {self.repository!r}: {error}") from None
        url = found.get("repository")
        if not url:
            raise ConfigurationError(f"repository {self.repository!r} has no URL in {config}")
        return url


@dataclass
class Plan:
    upload: list[Path] = field(default_factory=list)
    skip: list[Path] = field(default_factory=list)  # already on the index, same sha256
    index_url: str = ""


def _candidates(upload_url: str, environ: Mapping[str, str]) -> list[str]:
    base = upload_url if upload_url.endswith("/") else upload_url + "/"
    parts = urlsplit(base)
    root = f"{parts.scheme}://{parts.netloc}/"
    result = [base + "+simple/", urljoin(base, "simple/"), root + "simple/"]
    if parts.path.rstrip("/").endswith("/legacy"):
        # A Warehouse upload URL: its simple index is on its own host, or, for an upload host
        # `upload.X`, the index pip is configured with when that is on X. An index on any other
        # host is never asked: a tool pointed at a private index talks to it alone.
        configured = configured_indexes(environ)[0].rstrip("/") + "/"
        host = parts.hostname or ""
        result = [root + "simple/"]
        if host.startswith("upload.") and urlsplit(configured).hostname == host[7:]:
            result = [configured, *result]
    return list(dict.fromkeys(result))


def existing_files(http: Http, index_url: str, project: str) -> dict[str, str] | None:
    """{filename: sha256 or ""} on the index's page for `project`; None when the page is not
    a simple index (so `index_url` is wrong)."""
    try:
        files = project_files(http, index_url, project)
    except HttpError:
        return None
    if files is None:
        return None
    return {found.filename: found.sha256 for found in files}


def find_index(
    http: Http, target: Target, project: str, environ: Mapping[str, str]
) -> tuple[str, dict[str, str]]:
    """The simple index (given or found) and the project's files on it."""
    if target.index_url:
        check_url(target.index_url, "--index-url")
    candidates = (
        [target.index_url] if target.index_url else _candidates(target.upload_url(), environ)
    )
    for candidate in candidates:
        base = candidate.rstrip("/") + "/"
        try:
            page = http.read(base, {"Accept": "text/html"})
        except HttpError:
            continue
        if page.status == 200 and "html" in page.content_type:
            files = existing_files(http, base, project)
            if files is not None:
                return base, files
    raise ConfigurationError(
        f"found no simple index for {hide_userinfo(target.upload_url())} (tried "
        f"{', '.join(map(hide_userinfo, candidates))}); pass --index-url URL-of-its-simple-index"
    )


def upload_plan(
    http: Http,
    target: Target,
    project: str,
    files: Sequence[Path],
    sha256s: dict[str, str],
    *,
    environ: Mapping[str, str],
) -> Plan:
    """Which files to upload; an error when one is on the index with other content."""
    index_url, present = find_index(http, target, project, environ)
    result = Plan(index_url=index_url)
    clashes = []
    for path in files:
        if path.name not in present:
            result.upload.append(path)
        elif present[path.name] in ("", sha256s[path.name]):
            result.skip.append(path)
        else:
            clashes.append(
                f"{path.name} (index: sha256 {present[path.name]}, ours: {sha256s[path.name]})"
            )
    if clashes:
        raise IndexRefusedError(
            f"already on {index_url} with other content: {'; '.join(clashes)}. A file name can "
            "be used once on an index: nothing was uploaded. Rebuild with a build tag or a "
            "new version"
        )
    return result


def _twine(args: Sequence[str], environ: Mapping[str, str]) -> Result:
    return run([sys.executable, "-m", "twine", *args], env=environ)


def twine_check(files: Sequence[Path], environ: Mapping[str, str]) -> None:
    wheels = [str(f) for f in files if f.suffix == ".whl"]
    if not wheels:
        return
    done = _twine(["check", *wheels], environ)
    if done.returncode != 0:
        output = _plain(done.stdout + done.stderr)
        raise ReleaseError(f"twine check failed; nothing was uploaded:\n{output}")


_STATUS = re.compile(r"HTTPError: (\d{3})")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
# What twine says when it has no credentials to send (--non-interactive).
_NO_CREDENTIALS = re.compile(r"NonInteractive|Credential not found for")
_UNREACHABLE = re.compile(
    r"ConnectionError|Max retries exceeded|Connection refused|Name or service not known|"
    r"Failed to establish a new connection|timed out|RemoteDisconnected|UnreachableRepositoryURL"
)


def _plain(text: str) -> str:
    """twine's output without its colours, trailing blanks trimmed."""
    return "\n".join(line.rstrip() for line in _ANSI.sub("", text).strip().splitlines())


def _error_lines(output: str) -> str:
    """The lines that say what failed (twine prints INFO/WARNING lines and, for errors it
    does not handle, a traceback whose source lines may hold any word)."""
    kept = [
        line
        for line in excerpt(output, 200).splitlines()
        if line.strip() and not line.strip().startswith(("INFO", "Uploading"))
    ]
    return "\n".join(kept[-8:])


def twine_failure(status: int | None, output: str, where: str) -> FatalError:
    """The error a failed `twine upload` is: by the HTTP status the index answered, else by
    what twine says (no credentials, cannot reach the index), else a release error."""
    said = _error_lines(output)
    if status in (401, 403):
        return CredentialsError(
            f"{where} refused the credentials ({status}): check .pypirc, TWINE_USERNAME/"
            f"TWINE_PASSWORD or keyring\n{said}"
        )
    if status in (400, 409):
        return IndexRefusedError(
            f"{where} refused the upload ({status}; a file of that name may exist with "
            f"other content)\n{said}"
        )
    if status is not None and status >= 500:
        return ReleaseError(
            f"{where} failed with HTTP {status} (a server error; retry later)\n{said}"
        )
    if status is not None:
        return ReleaseError(f"{where} answered HTTP {status}\n{said}")
    if _NO_CREDENTIALS.search(output):
        return CredentialsError(
            f"twine has no credentials for {where}: set TWINE_USERNAME/TWINE_PASSWORD, a "
            f"password in .pypirc or keyring\n{said}"
        )
    if _UNREACHABLE.search(output):
        return ReleaseError(f"cannot reach {where}\n{said}")
    return ReleaseError(f"twine upload to {where} failed\n{said}")


def twine_upload(
    target: Target, files: Sequence[Path], environ: Mapping[str, str], verbose: bool = False
) -> str:
    """`twine upload` of the wheels (with their `.asc` where present); twine's output."""
    args = ["upload", "--non-interactive", "--disable-progress-bar", *target.twine_args()]
    paths = []
    for path in files:
        paths.append(str(path))
        signature = path.with_name(path.name + ".asc")
        if signature.exists():
            paths.append(str(signature))
    if verbose:
        args.append("--verbose")
    done = _twine([*args, *paths], environ)
    output = _plain(done.stdout + done.stderr)
    if done.returncode == 0:
        return output
    match = _STATUS.search(output)
    where = hide_userinfo(target.repository_url) if target.repository_url else target.repository
    raise twine_failure(int(match.group(1)) if match else None, output, where)
