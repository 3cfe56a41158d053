"""The one package-index reader (PEP 503 HTML and PEP 691 JSON, through pypi-simple): the
indexes pip is configured with, and a project's files with their sha256."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import requests
from packaging.utils import canonicalize_name

from multibuild.util.cmd import run
from multibuild.util.http import Http, HttpError
from multibuild.util.urls import basename, local_path


@dataclass(frozen=True)
class IndexFile:
    filename: str
    url: str
    sha256: str  # "" when the index gives none


def configured_indexes(environ: Mapping[str, str]) -> list[str]:
    """The index URLs pip uses here: PIP_INDEX_URL / PIP_EXTRA_INDEX_URL, pip's configuration
    files, else the package index pip defaults to (http, https and file: indexes)."""
    config = run([sys.executable, "-m", "pip", "config", "list"], env=environ).stdout
    values: dict[str, str] = {}
    for line in config.splitlines():
        key, _, value = line.partition("=")
        values[key.split(".", 1)[-1]] = value.strip().strip("'\"")
    import pypi_simple  # here, not at the top: it brings pydantic, which commands rarely need

    index = environ.get("PIP_INDEX_URL") or values.get("index-url") or ""
    extra = environ.get("PIP_EXTRA_INDEX_URL") or values.get("extra-index-url", "")
    urls = [*index.split(), *extra.split()] or []
    if not index:
        urls.insert(0, pypi_simple.PYPI_SIMPLE_ENDPOINT)
    return [u for u in urls if urlsplit(u).scheme in ("http", "https", "file")]


def project_files(http: Http, index_url: str, project: str) -> list[IndexFile] | None:
    """Every file the index lists for `project` ([] when it has no such project); None when
    `index_url` answers but is not a simple index. A file: index is a directory of project
    directories, each with its index.html (PEP 503)."""
    import pypi_simple

    folder = local_path(index_url) if urlsplit(index_url).scheme == "file" else None
    if folder is not None:
        page_file = folder / canonicalize_name(project) / "index.html"
        if not page_file.is_file():
            return []
        page = pypi_simple.ProjectPage.from_html(
            project, page_file.read_bytes(), base_url=page_file.as_uri()
        )
        return _files(page)
    client = pypi_simple.PyPISimple(endpoint=index_url, session=http.session)
    try:
        page = client.get_project_page(project, timeout=http.timeout)
    except pypi_simple.NoSuchProjectError:
        return []
    except (pypi_simple.UnsupportedContentTypeError, pypi_simple.UnsupportedRepoVersionError):
        return None
    except (requests.RequestException, ValueError) as error:
        raise HttpError(f"{index_url}: {error}") from None
    return _files(page)


def _files(page: Any) -> list[IndexFile]:
    # The file's name is the URL's last part, as pip takes it (a page's link text may differ).
    return [
        IndexFile(basename(package.url), package.url, package.digests.get("sha256", "").lower())
        for package in page.packages
    ]
