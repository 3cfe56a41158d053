"""Nightly wheels to an anaconda.org channel (`anaconda://ORG`), as scipy's nightlies go to
scientific-python-nightly-wheels, through anaconda-client's command line:

    anaconda -t TOKEN upload --force -u ORG --label main FILES...
    anaconda -t TOKEN show ORG/NAME                  (the versions there, one `+ VERSION` a line)
    anaconda -t TOKEN remove --force ORG/NAME/VERSION   (retention: older versions go)

anaconda.org is a package index, not a container: it takes the wheels only (records, logs and
pages stay in the pre-release container). Retention keeps the newest `keep` versions of the
project, as the pre-release container keeps the newest nightlies. The token comes from
ANACONDA_TOKEN (or a file ANACONDA_TOKEN_FILE names), is withheld from builds like every
upload credential, and never appears in what is printed: every line the client writes and
every error passes through the redaction.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from packaging.utils import canonicalize_name
from packaging.version import InvalidVersion, Version

from multibuild import console
from multibuild.errors import ConfigurationError, CredentialsError, UploadError
from multibuild.publish.containers.credentials import require
from multibuild.util.cmd import Result, run
from multibuild.util.secrets import Redactor, secret_values

SCHEME = "anaconda"
TOKEN_VARIABLE = "ANACONDA_TOKEN"
PROGRAM = "anaconda"  # anaconda-client's command (PyPI/conda: anaconda-client)
LABEL = "main"
TIMEOUT_S = 1800.0
_VERSION_LINE = re.compile(r"^\s*\+\s+(\S+)\s*$")
_ORG = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")


def is_anaconda(url: str) -> bool:
    return urlsplit(url).scheme == SCHEME


def organisation(url: str) -> str:
    """ORG of `anaconda://ORG` (an anaconda.org user or organisation)."""
    parts = urlsplit(url)
    if parts.scheme != SCHEME or not _ORG.match(parts.netloc) or parts.path.strip("/"):
        raise ConfigurationError(f"{url!r}: an anaconda.org channel is anaconda://ORG")
    if parts.query or parts.fragment or "@" in parts.netloc:
        raise ConfigurationError(f"{url!r}: no token or options in the URL ({TOKEN_VARIABLE})")
    return parts.netloc


INDEX_VARIABLE = "MB_ANACONDA_INDEX"


def simple_index_url(url: str, template: str) -> str:
    """The PEP 503 simple index of the channel anaconda://ORG: `template` ([upload]
    anaconda_index, or MB_ANACONDA_INDEX) with `{org}` filled in, ending with a slash."""
    org = organisation(url)
    if not template or "{org}" not in template:
        raise ConfigurationError(
            f"reading {url} needs the channel's simple index: settings.toml [upload] "
            f"anaconda_index (or {INDEX_VARIABLE}), an http(s) URL with {{org}} for the channel"
        )
    return template.replace("{org}", org).rstrip("/") + "/"


def index_environ(environ: Mapping[str, str], template: str) -> dict[str, str]:
    """`environ` with MB_ANACONDA_INDEX set to settings.toml's template unless it has one."""
    env = dict(environ)
    if template and not env.get(INDEX_VARIABLE):
        env[INDEX_VARIABLE] = template
    return env


def upload_command(
    org: str, token: str, files: Sequence[Path], program: str = PROGRAM
) -> list[str]:
    return [
        program,
        "-t",
        token,
        "upload",
        "--force",
        "-u",
        org,
        "--label",
        LABEL,
        *(str(f) for f in files),
    ]


def show_command(org: str, name: str, token: str, program: str = PROGRAM) -> list[str]:
    return [program, "-t", token, "show", f"{org}/{name}"]


def remove_command(
    org: str, name: str, version: str, token: str, program: str = PROGRAM
) -> list[str]:
    return [program, "-t", token, "remove", "--force", f"{org}/{name}/{version}"]


def versions_shown(output: str) -> list[str]:
    """The versions `anaconda show ORG/NAME` lists (its `Versions:` block, `   + 1.2.3`)."""
    return [m.group(1) for line in output.splitlines() if (m := _VERSION_LINE.match(line))]


def versions_to_remove(versions: Sequence[str], keep: int) -> list[str]:
    """All but the newest `keep` versions (as pip orders them); names that are no version are
    left alone."""
    parsed = []
    for text in versions:
        try:
            parsed.append((Version(text), text))
        except InvalidVersion:
            continue
    parsed.sort(reverse=True)
    return [text for _, text in parsed[max(keep, 0) :]]


@dataclass
class IndexReport:
    url: str
    uploaded: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)


def _run(command: list[str], redact: Redactor, what: str, echo: Callable[[str], None]) -> Result:
    shown = redact(" ".join(command))
    echo(f"  $ {shown}")
    try:
        done = run(command, timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        raise UploadError(f"{what}: no answer in {TIMEOUT_S:.0f} s") from None
    if not done.started:
        raise UploadError(
            f"{what}: the `{command[0]}` command is missing (pip install anaconda-client)"
        )
    output = redact((done.stdout + done.stderr).strip())
    for line in output.splitlines():
        echo(f"    {line}")
    if done.returncode != 0:
        last = output.splitlines()[-1] if output else "(no output)"
        message = f"{what} failed (exit status {done.returncode}): {last}"
        if re.search(r"\b(401|403|unauthori[sz]ed|forbidden|token)\b", output, re.IGNORECASE):
            raise CredentialsError(f"{message}; check {TOKEN_VARIABLE}")
        raise UploadError(message)
    return done


def publish_nightly(
    url: str,
    wheels: Sequence[Path],
    *,
    project: str,
    keep: int | None,
    environ: Mapping[str, str],
    echo: Callable[[str], None] = console.info,
    program: str = PROGRAM,
) -> IndexReport:
    """Upload the wheels to anaconda://ORG (replacing files of the same name), then remove the
    project's versions beyond the newest `keep`."""
    org = organisation(url)
    report = IndexReport(url=url)
    if not wheels:
        echo(f"multibuild upload: {url}: no wheel to upload")
        return report
    token = require(environ, [TOKEN_VARIABLE], "anaconda.org")[TOKEN_VARIABLE]
    secrets = Redactor([token, *secret_values(environ)])
    name = str(canonicalize_name(project))
    echo(f"multibuild upload: {len(wheels)} wheel(s) -> {url} (label {LABEL})")
    _run(upload_command(org, token, wheels, program), secrets, f"upload to {url}", echo)
    report.uploaded = [wheel.name for wheel in wheels]
    if keep is None:
        return report  # a release's staging channel keeps every version
    shown = _run(show_command(org, name, token, program), secrets, f"listing {url}", echo)
    for version in versions_to_remove(versions_shown(shown.stdout + shown.stderr), keep):
        _run(
            remove_command(org, name, version, token, program), secrets, f"removing {version}", echo
        )
        report.removed.append(version)
    echo(
        f"multibuild upload: {url}: {len(report.uploaded)} uploaded, "
        f"{len(report.removed)} old version(s) removed (keep {keep})"
    )
    return report


def publish_indexes(
    urls: Sequence[str],
    wheels: Sequence[Path],
    *,
    project: str,
    keep: int | None,
    environ: Mapping[str, str],
    echo: Callable[[str], None] = console.info,
) -> list[IndexReport]:
    """A nightly's wheels to each of `[upload] nightly_indexes`, or a release branch's to
    `[upload] release_indexes` (`keep` None: no retention), anaconda://ORG only."""
    reports = []
    for url in urls:
        if not is_anaconda(url):
            raise ConfigurationError(f"{url!r}: package indexes are anaconda://ORG")
        reports.append(
            publish_nightly(url, wheels, project=project, keep=keep, environ=environ, echo=echo)
        )
    return reports


API_VARIABLE = "MB_ANACONDA_API"  # another API root for anaconda-client (a mirror, a test)


@dataclass(frozen=True)
class ChannelFile:
    basename: str
    url: str
    size: int | None
    md5: str
    sha256: str


def channel_files(url: str, project: str | None, environ: Mapping[str, str]) -> list[ChannelFile]:
    """The files of `project` in the channel anaconda://ORG, read through anaconda.org's own
    client library (anaconda-client's binstar_client), which knows its server; MB_ANACONDA_API
    names another API root. ANACONDA_TOKEN is optional (public channels) and never printed."""
    org = organisation(url)
    if not project:
        raise ConfigurationError(f"reading {url} needs the project's name")
    try:
        from binstar_client import errors as binstar_errors  # type: ignore[import-untyped]
        from binstar_client.utils import get_server_api  # type: ignore[import-untyped]
    except ImportError:
        raise ConfigurationError(
            f"reading {url} needs anaconda-client (pip install anaconda-client, or the "
            f"[nightly] extra), or a simple index: [upload] anaconda_index / {INDEX_VARIABLE}"
        ) from None
    token = environ.get(TOKEN_VARIABLE, "") or None
    api_root = environ.get(API_VARIABLE, "")
    redact = Redactor(secret_values({TOKEN_VARIABLE: token or ""}))
    try:
        if api_root:
            api = get_server_api(token=token, config={"url": api_root.rstrip("/")})
        else:
            api = get_server_api(token=token)
        package = api.package(org, str(canonicalize_name(project)))
    except binstar_errors.NotFound:
        return []
    except Exception as error:  # the client's errors, and requests'
        raise UploadError(redact(f"reading {url} through anaconda-client: {error}")) from None
    domain = str(getattr(api, "domain", api_root) or "")
    scheme = urlsplit(domain).scheme or "https"
    files: list[ChannelFile] = []
    for item in package.get("files", []) if isinstance(package, dict) else []:
        if not isinstance(item, dict):
            continue
        basename = str(item.get("basename") or "").rsplit("/", 1)[-1]
        link = str(item.get("download_url") or "")
        if not basename or not link:
            continue
        if link.startswith("//"):
            link = f"{scheme}:{link}"
        elif not urlsplit(link).scheme:
            link = domain.rstrip("/") + "/" + link.lstrip("/")
        size = item.get("size")
        files.append(
            ChannelFile(
                basename=basename,
                url=link,
                size=size if isinstance(size, int) and not isinstance(size, bool) else None,
                md5=str(item.get("md5") or ""),
                sha256=str(item.get("sha256") or ""),
            )
        )
    return files
