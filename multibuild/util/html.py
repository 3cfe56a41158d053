"""The one HTML link reader: every <a href> of a page with its text, the `<meta name>` values,
and what listing pages say beside a link (Swift/Rackspace staticweb's `td.colname`, our
index.html's `data-bytes`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from html.parser import HTMLParser
from urllib.parse import urlsplit

_HEX64 = re.compile(r"^[0-9a-f]{64}$")


@dataclass
class Link:
    href: str
    text: str = ""
    size: int | None = None  # a data-bytes value of the row's size cell

    @property
    def sha256(self) -> str:
        """The `#sha256=` of the link (PEP 503), or ""."""
        return fragment_sha256(self.href)


class _Parser(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.links: list[Link] = []
        self.meta: dict[str, str] = {}
        self._in_a: Link | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        if tag == "meta" and values.get("name"):
            self.meta[values["name"]] = values.get("content", "")
        elif tag == "td":
            classes = values.get("class", "").split()
            if "colsize" in classes and values.get("data-bytes", "").isdigit() and self.links:
                self.links[-1].size = int(values["data-bytes"])
        elif tag == "a" and "href" in values:
            self._in_a = Link(href=values["href"])
            self.links.append(self._in_a)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a":
            self._in_a = None

    def handle_data(self, data: str) -> None:
        if self._in_a is not None:
            self._in_a.text += data


@dataclass
class ParsedPage:
    """An HTML page's links and <meta name=...> values (util.http.Page is the page as fetched)."""

    links: list[Link]
    meta: dict[str, str]


def parse_links(text: str) -> ParsedPage:
    parser = _Parser()
    parser.feed(text)
    parser.close()
    return ParsedPage(parser.links, parser.meta)


def fragment_sha256(href: str) -> str:
    fragment = urlsplit(href).fragment
    for part in fragment.split("&"):
        key, _, value = part.partition("=")
        if key == "sha256" and _HEX64.match(value.lower()):
            return value.lower()
    return ""
