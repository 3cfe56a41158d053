"""The Debian archive this machine's apt already uses, for what is built from it besides single
libraries: a Debian root of another suite (mmdebstrap, for the local build image) and pristine
upstream tarballs (a source package's .orig) from suites the system does not list.

Nothing names a mirror: the archive's URI is read from the system's apt sources at run time
(the deb entry whose URI ends in /debian, and the one ending in /debian-security). Source
packages are fetched through a private apt state (multibuild.debian.apt.PrivateApt), so the
system's lists stay as they are; apt checks every file against the archive's signed Release
and Sources files, and the .orig is checked again against the .dsc and a pinned sha256.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path

from multibuild.debian.apt import APT_ETC, PrivateApt, deb_lines, deb_stanzas, system_sources
from multibuild.debian.source import place_in_mirror
from multibuild.errors import LibraryError
from multibuild.util.cmd import run
from multibuild.util.files import remove_tree, sha256_file

DEFAULT_KEYRING = "/usr/share/keyrings/debian-archive-keyring.gpg"


@dataclass(frozen=True)
class AptEntry:
    uri: str
    suites: tuple[str, ...]
    signed_by: str = ""


def _entry(words: list[str]) -> AptEntry | None:
    """A one-line entry's words after `deb` (`[options] URI SUITE COMPONENT...`) as an AptEntry."""
    signed_by = ""
    if words and words[0].startswith("["):
        options = []
        while words:
            word = words.pop(0)
            options.append(word.strip("[]"))
            if word.endswith("]"):
                break
        for option in options:
            if option.startswith("signed-by="):
                signed_by = option.partition("=")[2]
    return AptEntry(words[0], (words[1],), signed_by) if len(words) >= 2 else None


def entries_from_sources(text: str) -> list[AptEntry]:
    """The enabled `deb` entries of a deb822 (.sources) file."""
    return [
        AptEntry(uri, tuple(fields.get("Suites", "").split()), fields.get("Signed-By", ""))
        for fields in deb_stanzas(text)
        for uri in fields.get("URIs", "").split()
    ]


def entries_from_list(text: str) -> list[AptEntry]:
    """The `deb` entries of a one-line (.list) file: `deb [options] URI SUITE COMPONENT...`."""
    return [entry for words in deb_lines(text) if (entry := _entry(words)) is not None]


def system_entries(apt_etc: Path = APT_ETC) -> list[AptEntry]:
    entries: list[AptEntry] = []
    for source in system_sources(apt_etc):
        read = entries_from_sources if source.deb822 else entries_from_list
        entries += read(source.text)
    return entries


@dataclass(frozen=True)
class Archives:
    """The Debian archive and its security archive, as this machine's apt reaches them."""

    debian: str
    security: str | None = None
    keyring: str = DEFAULT_KEYRING

    def suite_sources(self, suite: str) -> list[str]:
        """One-line apt sources for a Debian root of `suite` (mmdebstrap's mirror arguments):
        the suite, its updates and its security updates."""
        lines = [f"deb {self.debian} {suite} main", f"deb {self.debian} {suite}-updates main"]
        if self.security:
            lines.append(f"deb {self.security} {suite}-security main")
        return lines

    def source_entries(self, suites: tuple[str, ...]) -> dict[str, str]:
        """A private apt's sources: deb-src of `suites` from the Debian archive."""
        return {
            "multibuild-src.sources": (
                f"Types: deb-src\nURIs: {self.debian}\nSuites: {' '.join(suites)}\n"
                f"Components: main\nSigned-By: {self.keyring}\n"
            )
        }


def archives_from(entries: list[AptEntry]) -> Archives:
    debian = security = None
    keyring = DEFAULT_KEYRING
    for entry in entries:
        path = entry.uri.rstrip("/")
        if path.endswith("/debian-security"):
            security = security or path
        elif path.endswith("/debian") and debian is None:
            debian = path
            keyring = entry.signed_by or keyring
    if debian is None:
        raise LibraryError(
            "no Debian archive in this machine's apt sources (a deb entry whose URI ends in "
            "/debian): the build image is made from Debian packages"
        )
    return Archives(debian=debian, security=security, keyring=keyring)


def system_archives(apt_etc: Path = APT_ETC) -> Archives:
    return archives_from(system_entries(apt_etc))


# -- pristine upstream tarballs ------------------------------------------------------------------


@dataclass(frozen=True)
class OrigTarball:
    """A source package's .orig tarball, verified: the upstream release itself."""

    package: str
    debian_version: str  # the Debian version it came with ("" when taken from the cache)
    path: Path
    sha256: str
    signature: str  # the .dsc's signature: good | unsigned | no-keyring | no-key

    def as_record(self) -> dict[str, str]:
        return {
            "package": self.package,
            "debian_version": self.debian_version,
            "file": self.path.name,
            "sha256": self.sha256,
            "signature": self.signature,
        }


def source_versions(apt: PrivateApt, package: str) -> list[str]:
    """The versions of a source package the private apt's indexes list, as listed."""
    done = run(["apt-cache", *apt.options(), "showsrc", package], timeout=300)
    return re.findall(r"^Version: (\S+)$", done.stdout, flags=re.MULTILINE)


def upstream_of(version: str) -> str:
    """1:3.11.2-6+deb12u8 -> 3.11.2"""
    version = version.split(":", 1)[-1]
    return version.rsplit("-", 1)[0] if "-" in version else version


def fetch_orig(
    package: str,
    upstream: str,
    sha256: str,
    *,
    suites: tuple[str, ...],
    archives: Archives,
    cache: Path,
) -> OrigTarball:
    """The .orig tarball of `package` at `upstream` whose sha256 is the pinned one, from the
    suites given, kept in cache/src. Every Debian revision carrying that upstream version is
    tried in turn: a mirror's pool can lag its index, so a listed version may not download."""
    store = cache / "src"
    note = store / f"{package}_{upstream}.json"
    for found in sorted(store.glob(f"{package}_{upstream}.orig.tar.*")):
        if found.suffix != ".asc" and sha256_file(found) == sha256:
            known = json.loads(note.read_text()) if note.is_file() else {}
            return OrigTarball(
                package=package,
                debian_version=str(known.get("debian_version", "")),
                path=found,
                sha256=sha256,
                signature=str(known.get("signature", "")),
            )
    apt = PrivateApt(cache / "apt" / package, archives.source_entries(suites))
    apt.update()
    versions = [v for v in source_versions(apt, package) if upstream_of(v) == upstream]
    if not versions:
        raise LibraryError(
            f"Debian's {' '.join(suites)} list no {package} source of upstream version {upstream}"
        )
    tried = []
    for version in versions:
        downloads = cache / "downloads" / f"{package}_{version.split(':', 1)[-1]}"
        remove_tree(downloads)
        downloads.mkdir(parents=True)
        try:
            apt.download_source(package, version, downloads)
            [dsc] = downloads.glob("*.dsc")
            placed = place_in_mirror(dsc, store, orig_sha256=sha256)
        except (LibraryError, ValueError) as error:
            tried.append(f"{version}: {str(error).splitlines()[-1].strip()}")
            continue
        finally:
            remove_tree(downloads)
        result = OrigTarball(
            package=package,
            debian_version=version,
            path=placed.orig,
            sha256=placed.orig_sha256,
            signature=placed.signature.status,
        )
        note.write_text(json.dumps(result.as_record(), indent=1) + "\n")
        return result
    raise LibraryError(
        f"no {package} {upstream} source could be fetched with the pinned sha256 {sha256}; "
        "tried: " + "; ".join(tried)
    )
