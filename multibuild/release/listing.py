"""What a container holds, read from whatever listing it serves:

- Swift's plain-text and JSON listings (`?format=json`, paginated with `marker`);
- Swift/Rackspace staticweb HTML (`<td class="colname"><a href=...>`) and the container's own
  index.html (with `#sha256=` fragments);
- S3 `ListBucketResult` XML (paginated: `IsTruncated`, `NextMarker`/`marker`);
- plain `<a>` listings (`python -m http.server`, nginx autoindex);
- PEP 503 simple pages (a project page, or the root page, whose project link is followed).

Links that leave the container are dropped: other hosts or schemes (`javascript:`, `data:`),
paths outside the container's (`../`), names that decode to a path (`%2F`, `..`). On a PEP 503
page the files may live anywhere on the same site (`../../packages/...`), never elsewhere.

Checksums come from the build records (`builds/<build-id>.json` or `<build-id>.json`),
`#sha256=` fragments and, for whole objects only, the listing's md5 (Swift `hash`, S3 ETag).
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, unquote, urlencode, urljoin, urlsplit

from packaging.utils import canonicalize_name

from multibuild.engine.record import BuildRecord
from multibuild.errors import ConfigurationError, ReleaseError
from multibuild.publish.anaconda import INDEX_VARIABLE, channel_files, simple_index_url
from multibuild.publish.anaconda import SCHEME as ANACONDA
from multibuild.publish.containers import open_container
from multibuild.util import jsontext
from multibuild.util.html import Link, fragment_sha256, parse_links
from multibuild.util.http import Http, HttpError, Page
from multibuild.util.urls import check_url

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEX32 = re.compile(r"^[0-9a-f]{32}$")
MAX_PAGES = 1000
# All of one listing's pages (and the records read with it): 20,000 objects are ~6 MiB.
MAX_LISTING_BYTES = 128 << 20
MAX_RECORDS = 500
RECORD_DIRS = ("builds/",)


@dataclass
class Entry:
    """One object of the container (name relative to the container, `/` for pseudo-dirs)."""

    name: str
    url: str
    size: int | None = None
    sha256: str = ""
    md5: str = ""
    # Where the sha256 came from (for messages); a disagreement between two sources.
    sha256_source: str = ""
    conflict: str = ""

    @property
    def basename(self) -> str:
        return self.name.rsplit("/", 1)[-1]

    def add_sha256(self, value: str, source: str) -> None:
        value = value.lower()
        if not _HEX64.match(value):
            return
        if self.sha256 and self.sha256 != value:
            self.conflict = (
                f"{self.name}: sha256 {self.sha256} ({self.sha256_source}) but {value} ({source})"
            )
            return
        self.sha256, self.sha256_source = value, self.sha256_source or source

    def add_size(self, value: Any) -> None:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            if self.size is not None and self.size != value:
                self.conflict = f"{self.name}: size {self.size} but {value} elsewhere"
            self.size = value


@dataclass
class Listing:
    url: str  # the container's base URL (ends with "/")
    kind: str  # swift-json, swift-text, s3-xml, html, pep503, local
    entries: dict[str, Entry] = field(default_factory=dict)
    ignored: list[str] = field(default_factory=list)  # hostile or outside links dropped

    def add(self, entry: Entry) -> Entry:
        existing = self.entries.get(entry.name)
        if existing is None:
            self.entries[entry.name] = entry
            return entry
        if entry.sha256:
            existing.add_sha256(entry.sha256, entry.sha256_source or self.kind)
        if entry.size is not None:
            existing.add_size(entry.size)
        existing.md5 = existing.md5 or entry.md5
        return existing

    def by_basename(self) -> dict[str, Entry]:
        result: dict[str, Entry] = {}
        for entry in self.entries.values():
            if "/" not in entry.name or self.kind == "pep503":
                result.setdefault(entry.basename, entry)
        return result


def safe_name(name: str) -> bool:
    """A relative object name with no way out: no `..`/`.`/empty segments, no backslash, no
    control characters, not absolute."""
    if not name or name.startswith("/") or "\\" in name:
        return False
    if any(ord(c) < 32 or ord(c) == 127 for c in name):
        return False
    return all(part not in ("", ".", "..") for part in name.split("/"))


def base_url(url: str) -> str:
    """The container's URL with a trailing slash (a page such as .../index.html names its
    directory)."""
    parts = urlsplit(url)
    path = parts.path or "/"
    if not path.endswith("/"):
        last = path.rsplit("/", 1)[-1]
        path = path.rsplit("/", 1)[0] + "/" if last.endswith((".html", ".htm")) else path + "/"
    return parts._replace(path=path, query="", fragment="").geturl()


def _inside(base: str, target: str, anywhere_on_site: bool) -> str | None:
    """The object name `target` points to inside the container at `base`, or None when the
    link leaves it."""
    b, t = urlsplit(base), urlsplit(target)
    if t.scheme.lower() != b.scheme.lower() or t.netloc.lower() != b.netloc.lower():
        return None
    if anywhere_on_site:
        name = unquote(t.path.rstrip("/").rsplit("/", 1)[-1]) + (
            "/" if t.path.endswith("/") else ""
        )
        return name if safe_name(name.rstrip("/")) else None
    if t.query or not t.path.startswith(b.path) or t.path == b.path:
        return None
    name = unquote(t.path[len(b.path) :])
    return name if safe_name(name.rstrip("/")) else None


class Reader:
    """Reads listings (and the records they point to) with one Http client."""

    def __init__(
        self, http: Http, verbose: bool = False, page_size: int | None = None, json: bool = True
    ) -> None:
        self.http = http
        self.verbose = verbose
        # Objects per listing page (Swift `limit`, S3 `max-keys`); None: the server's default.
        self.page_size = page_size
        # Ask for Swift's JSON listing first (False: read what a plain GET gives).
        self.json = json
        self._read_bytes = 0

    def _read(self, url: str, headers: Mapping[str, str] | None = None) -> Page:
        """A page of the listing being read (or a record), counted against MAX_LISTING_BYTES:
        pages that keep advancing are bounded in total, not only in number."""
        page = self.http.read(url, headers)
        self._read_bytes += len(page.body)
        if self._read_bytes > MAX_LISTING_BYTES:
            raise ReleaseError(
                f"{url}: the listing passed {MAX_LISTING_BYTES >> 20} MiB (a container of "
                "wheels lists in a few); stopped"
            )
        return page

    def _query(self, size_key: str = "limit", **params: str) -> str:
        """A listing query; the page size as Swift (`limit`) or S3 (`max-keys`) names it."""
        if self.page_size:
            params[size_key] = str(self.page_size)
        return "?" + urlencode(params) if params else ""

    # -- HTML -------------------------------------------------------------------------------

    def _html(
        self, listing: Listing, page_url: str, body: bytes, project: str | None, depth: int = 0
    ) -> None:
        parser = parse_links(body.decode("utf-8", errors="replace"))
        path = urlsplit(page_url).path
        simple = (
            listing.kind == "pep503"
            or "pypi:repository-version" in parser.meta
            or "/simple/" in path
            or "/+simple/" in path
        )
        if simple:
            listing.kind = "pep503"
        subdirs = self._add_links(listing, page_url, parser.links, simple=simple)
        if depth == 0:
            self._follow_subdirs(listing, subdirs, project, simple=simple)

    def _add_links(
        self, listing: Listing, page_url: str, links: Sequence[Link], *, simple: bool
    ) -> list[tuple[str, str, str]]:
        """A page's file links added to the listing; its sub-directories (name, URL, text)."""
        subdirs: list[tuple[str, str, str]] = []
        for link in links:
            href = link.href.strip()
            target = urljoin(page_url, href)
            name = _inside(listing.url, target, anywhere_on_site=simple)
            if name is None:
                if href and not href.startswith(("#", "?")) and href not in ("../", ".."):
                    listing.ignored.append(href)
                continue
            if name.endswith("/"):
                subdirs.append((name, target, link.text.strip()))
                continue
            entry = Entry(name=name, url=target.split("#", 1)[0])
            sha = fragment_sha256(href)
            if sha:
                entry.add_sha256(sha, f"{page_url} link")
            if link.size is not None:
                entry.add_size(link.size)
            listing.add(entry)
        return subdirs

    def _follow_subdirs(
        self,
        listing: Listing,
        subdirs: Sequence[tuple[str, str, str]],
        project: str | None,
        *,
        simple: bool,
    ) -> None:
        """The pages one level down that hold files: the build records' directories, and a
        PEP 503 root's project page."""
        for name, target, text in subdirs:
            if name in RECORD_DIRS and not simple:
                page = self._read(target)
                status, ctype, sub = page.status, page.content_type, page.body
                if status == 200 and "html" in ctype:
                    self._html(listing, target, sub, project, 1)
            elif project and canonicalize_name(text.rstrip("/") or name.rstrip("/")) == (
                canonicalize_name(project)
            ):
                # A PEP 503 root page: the project's page holds the files.
                page = self._read(target)
                status, ctype, sub = page.status, page.content_type, page.body
                if status == 200:
                    listing.kind = "pep503"
                    self._html(listing, target, sub, project, 1)

    # -- Swift, S3 --------------------------------------------------------------------------

    def _add_object(self, listing: Listing, name: str, size: Any, md5: str) -> None:
        if not safe_name(name):
            listing.ignored.append(name)
            return
        entry = Entry(name=name, url=listing.url + quote(name))
        entry.add_size(size)
        if _HEX32.match(md5 or ""):
            entry.md5 = md5
        listing.add(entry)

    def _swift_json(self, listing: Listing, items: list[Any]) -> str:
        last = ""
        for item in items:
            if not isinstance(item, dict):
                continue
            if "subdir" in item:
                continue
            name = str(item.get("name", ""))
            last = name
            whole = "slo_etag" not in item and "swift_bytes" not in str(item.get("content_type"))
            self._add_object(
                listing, name, item.get("bytes"), str(item.get("hash", "")) if whole else ""
            )
        return last

    def _s3(self, listing: Listing, root: ET.Element) -> tuple[bool, str]:
        ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
        last = ""
        for content in root.findall(f"{ns}Contents"):
            key = content.findtext(f"{ns}Key") or ""
            size_text = content.findtext(f"{ns}Size") or ""
            etag = (content.findtext(f"{ns}ETag") or "").strip('"').lower()
            self._add_object(listing, key, int(size_text) if size_text.isdigit() else None, etag)
            last = key
        truncated = (root.findtext(f"{ns}IsTruncated") or "").lower() == "true"
        return truncated, root.findtext(f"{ns}NextMarker") or last

    # -- entry point ------------------------------------------------------------------------

    def read(self, url: str, project: str | None = None) -> Listing:
        """The container's listing (every format above), with checksums from records."""
        base = base_url(url)
        self._read_bytes = 0
        plain = url.split("#", maxsplit=1)[0].split("?", maxsplit=1)[0]
        explicit_page = not plain.endswith("/") and base != plain + "/"
        listing = Listing(url=base, kind="")
        json_headers = {"Accept": "application/json", "X-Web-Mode": "false"}
        if not explicit_page and self.json:
            query = self._query(format="json")
            first = self._read(base + query, json_headers)
            status, ctype, body = first.status, first.content_type, first.body
            if status == 200 and self._structured(listing, base, ctype, body, json_headers):
                self._checksums(listing)
                return listing
        # S3 takes `max-keys`; Swift, http.server and staticweb ignore it.
        page = url if explicit_page else base + self._query("max-keys")
        answer = self._read(page, {"Accept": "text/html, */*;q=0.5"})
        status, ctype, body = answer.status, answer.content_type, answer.body
        if status in (401, 403):
            raise HttpError(f"{page}: {status}: the container is not publicly readable", status)
        if status == 404:
            raise HttpError(f"{page}: 404: no such container", status)
        if status != 200:
            raise HttpError(f"{page}: HTTP {status}", status)
        if not self._structured(listing, base, ctype, body, {}):
            listing.kind = "html"
            self._html(listing, page, body, project)
        self._checksums(listing)
        return listing

    def _structured(
        self, listing: Listing, base: str, ctype: str, body: bytes, headers: dict[str, str]
    ) -> bool:
        """Parse a JSON, XML or plain-text listing (following its pages); False for HTML.
        A page that does not start after the marker (a server that ignores it) is an error,
        as is a listing longer than MAX_PAGES pages: a listing is whole or refused."""
        text = body.lstrip()
        if text.startswith(b"["):
            return self._swift_json_pages(listing, base, body, headers)
        if text.startswith(b"<?xml") or text.startswith(b"<ListBucketResult"):
            return self._s3_xml_pages(listing, base, body)
        if "text/plain" in ctype:
            return self._swift_text_pages(listing, base, body)
        return False

    def _swift_json_pages(
        self, listing: Listing, base: str, body: bytes, headers: dict[str, str]
    ) -> bool:
        try:
            items = jsontext.loads(body)
        except ValueError:
            return False
        if not isinstance(items, list):
            return False
        listing.kind = "swift-json"
        marker = ""
        for _ in range(MAX_PAGES):
            names = _json_names(items)
            _advances(base, marker, names)
            last = self._swift_json(listing, items)
            if not last:
                return True
            marker = last
            answer = self._read(base + self._query(format="json", marker=last), headers)
            try:
                items = jsontext.loads(answer.body) if answer.status == 200 else []
            except ValueError:
                raise ReleaseError(f"{base}: listing page after {last!r} is not JSON") from None
            if not isinstance(items, list):
                raise ReleaseError(f"{base}: listing page after {last!r} is not a list")
        raise ReleaseError(f"{base}: more than {MAX_PAGES} listing pages; stopped")

    def _s3_xml_pages(self, listing: Listing, base: str, body: bytes) -> bool:
        try:
            root = ET.fromstring(body)
        except ET.ParseError:
            return False
        if not root.tag.endswith("ListBucketResult"):
            return False
        listing.kind = "s3-xml"
        marker = ""
        for _ in range(MAX_PAGES):
            ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""
            _advances(
                base, marker, [c.findtext(f"{ns}Key") or "" for c in root.iter(f"{ns}Contents")]
            )
            truncated, marker = self._s3(listing, root)
            if not truncated or not marker:
                return True
            query = self._query("max-keys", marker=marker)
            answer = self._read(base + query)
            if answer.status != 200:
                raise HttpError(f"{base}: listing page after {marker!r}: HTTP {answer.status}")
            try:
                root = ET.fromstring(answer.body)
            except ET.ParseError as error:
                raise ReleaseError(f"{base}: listing page after {marker!r}: {error}") from None
        raise ReleaseError(f"{base}: more than {MAX_PAGES} listing pages; stopped")

    def _swift_text_pages(self, listing: Listing, base: str, body: bytes) -> bool:
        listing.kind = "swift-text"
        names = body.decode("utf-8", errors="replace").splitlines()
        marker = ""
        for _ in range(MAX_PAGES):
            names = [n for n in names if n.strip()]
            if not names:
                return True
            _advances(base, marker, names)
            for name in names:
                self._add_object(listing, name, None, "")
            marker = names[-1]
            answer = self._read(base + self._query(marker=marker), {"X-Web-Mode": "false"})
            if answer.status != 200 or "text/plain" not in answer.content_type:
                return True
            names = answer.body.decode("utf-8", errors="replace").splitlines()
        raise ReleaseError(f"{base}: more than {MAX_PAGES} listing pages; stopped")

    def _checksums(self, listing: Listing) -> None:
        """sha256 and sizes from the build records and the container's index.html."""
        records = [
            e
            for e in listing.entries.values()
            if e.name.endswith(".json") and ("/" not in e.name or e.name.startswith(RECORD_DIRS))
        ]
        by_name = listing.by_basename()
        found: list[tuple[Any, str]] = []
        for entry in records[-MAX_RECORDS:]:
            answer = self._read(entry.url)
            if answer.status != 200:
                continue
            try:
                found.append((jsontext.loads(answer.body), entry.name))
            except ValueError:
                continue
        apply_records(by_name, found)
        index = listing.entries.get("index.html")
        if listing.kind != "html" and index is not None:
            answer = self._read(index.url)
            if answer.status == 200:
                sub = Listing(url=listing.url, kind="html")
                self._html(sub, index.url, answer.body, None, depth=1)
                for name, listed in sub.entries.items():
                    if name in listing.entries and listed.sha256:
                        listing.entries[name].add_sha256(listed.sha256, "index.html")


def _json_names(items: list[Any]) -> list[str]:
    return [str(i.get("name", i.get("subdir", ""))) for i in items if isinstance(i, dict)]


def _advances(base: str, marker: str, names: list[str]) -> None:
    """A page after `marker` starts after it; else the server ignores the marker and would
    send the same page for ever."""
    if marker and names and names[0] <= marker:
        raise ReleaseError(
            f"{base}: the listing does not advance (the page after {marker!r} starts at "
            f"{names[0]!r}): the server ignores the marker; stopped"
        )


def apply_records(by_name: dict[str, Entry], found: list[tuple[Any, str]]) -> None:
    """The sha256 and size the newest build record naming a wheel gives it. A pre-release
    nightly reuses its predecessors' file names (a replace): the older records describe
    objects that are gone, not a contradiction."""
    records = [(r, source) for data, source in found if (r := BuildRecord.from_json(data))]
    records.sort(key=lambda pair: (pair[0].started_at(), pair[1]), reverse=True)
    described: set[str] = set()
    for record, source in records:
        names = set()
        for build in record.builds:
            for wheel in build.wheels:
                entry = by_name.get(wheel.name)
                if entry is not None and wheel.name not in described:
                    entry.add_sha256(wheel.sha256, f"record {source}")
                    entry.add_size(wheel.size)
                    names.add(wheel.name)
        described |= names


def read_local(directory: Path) -> Listing:
    """A container that is a local directory (or file:// URL): the same listing, read directly."""
    if not directory.is_dir():
        raise ReleaseError(f"no such container directory: {directory}")
    listing = Listing(url=directory.resolve().as_uri() + "/", kind="local")
    for path in sorted(directory.rglob("*")):
        if path.is_file() and not path.name.endswith(".part"):
            name = path.relative_to(directory).as_posix()
            entry = Entry(name=name, url=path.as_uri(), size=path.stat().st_size)
            listing.add(entry)
    by_name = listing.by_basename()
    found: list[tuple[Any, str]] = []
    for entry in [e for e in listing.entries.values() if e.name.endswith(".json")]:
        if "/" in entry.name and not entry.name.startswith(RECORD_DIRS):
            continue
        try:
            text = (directory / entry.name).read_text(encoding="utf-8")
            found.append((jsontext.loads(text), entry.name))
        except (OSError, ValueError):
            continue
    apply_records(by_name, found)
    return listing


def read_anaconda_api(url: str, project: str | None, environ: Mapping[str, str]) -> Listing:
    """An anaconda.org channel read through anaconda-client's API (its package's files)."""
    listing = Listing(url=url.rstrip("/") + "/", kind="anaconda-api")
    for item in channel_files(url, project, environ):
        entry = Entry(name=item.basename, url=item.url, md5=item.md5.lower())
        entry.add_size(item.size)
        entry.add_sha256(item.sha256, "anaconda.org API")
        listing.add(entry)
    return listing


def read_container_listing(
    url: str,
    http: Http,
    *,
    project: str | None,
    base_dir: Path,
    environ: Mapping[str, str],
) -> Listing:
    """The listing of a container named by an http(s) URL, a path or file:// URL, a
    swift:// / s3:// container URL (read through its public URL), or an anaconda.org
    channel anaconda://ORG (its simple index, MB_ANACONDA_INDEX)."""
    parts = check_url(url, "container URL")
    scheme = parts.scheme.lower()
    if scheme in ("http", "https"):
        return Reader(http).read(url, project)
    if scheme == "file":
        return read_local(Path(unquote(parts.path)))
    if scheme == ANACONDA:
        # An anaconda.org channel: its PEP 503 simple index (the project's page) where a
        # template is set, else the channel's API through anaconda-client.
        if environ.get(INDEX_VARIABLE, ""):
            index = simple_index_url(url, environ.get(INDEX_VARIABLE, ""))
            return Reader(http).read(index, project)
        return read_anaconda_api(url, project, environ)
    if scheme in ("swift", "s3"):
        container = open_container(url, base_dir=base_dir, environ=environ, purpose="read")
        try:
            public = container.public_url("")
        finally:
            container.close()
        return Reader(http).read(public, project)
    if scheme and len(scheme) > 1:
        raise ConfigurationError(f"unsupported container URL {url!r}")
    path = Path(url).expanduser()
    return read_local(path if path.is_absolute() else base_dir / path)
