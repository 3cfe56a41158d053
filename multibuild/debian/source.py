"""Library sources from the distribution's source packages (Debian, Ubuntu), for machines that
reach only package registries: `apt-get source` through a private apt configuration whose
deb-src entries are derived from the system's deb entries (the system's lists stay as they
are), the files checked against the .dsc (sha256 and size), the .dsc's signature checked with
gpgv against the Debian keyrings when they are installed, and the result placed in a mirror
directory where `build_library` finds it by file name.

The chain of trust: apt checks the archive's signed Release file and the Sources index, which
holds the .dsc's checksums; the .dsc (signed by its uploader) holds the checksums of the .orig
and .debian tarballs, checked here again.

    python -m multibuild.debian.source fetch openblas --version 0.3.21+ds-4 \\
        --mirror DIR [--orig-sha256 HEX] [--patched] [--require-signature]

prints shell assignments (orig_file=..., orig_sha256=..., patched_file=..., ...) for config.sh.
`--patched` also unpacks the package with `dpkg-source -x` (Debian's patches applied) and packs
the tree into DIR as SOURCE_VERSION.patched.tar, byte for byte the same on every run, so a
library cache keyed on its sha256 hits on the next build.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import sys
import tarfile
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from multibuild import console
from multibuild.debian.apt import (
    APT_ETC,
    PrivateApt,
    deb_lines,
    deb_stanzas,
    parse_control,
    system_sources,
)
from multibuild.errors import FatalError, LibraryError, SystemDependencyError, report
from multibuild.options import HookContext
from multibuild.util.cmd import check, run
from multibuild.util.files import remove_tree, sha256_file

# Keyrings with the keys of Debian uploaders (package debian-keyring); checked in this order.
DEBIAN_KEYRINGS = (
    Path("/usr/share/keyrings/debian-keyring.gpg"),
    Path("/usr/share/keyrings/debian-maintainers.gpg"),
    Path("/usr/share/keyrings/debian-nonupload.gpg"),
)
# The date every file of a repacked tree gets (2000-01-01): same bytes on every run.
REPACK_MTIME = 946684800
ORIG = re.compile(r"\.orig(-[A-Za-z0-9][A-Za-z0-9-]*)?\.tar\.[a-z0-9]+$")


# -- .dsc files ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DscFile:
    name: str
    size: int
    sha256: str


@dataclass(frozen=True)
class Dsc:
    source: str
    version: str
    files: tuple[DscFile, ...]
    signed: bool
    fields: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def orig_tarballs(self) -> tuple[DscFile, ...]:
        return tuple(f for f in self.files if ORIG.search(f.name))

    @property
    def upstream_version(self) -> str:
        """The version without epoch and Debian revision: 1:0.3.21+ds-4 -> 0.3.21+ds."""
        version = self.version.split(":", 1)[-1]
        return version.rsplit("-", 1)[0] if "-" in version else version


def _strip_signature(text: str) -> tuple[str, bool]:
    """The signed text of a clearsigned message (dash-escaping undone), and whether it was."""
    lines = text.splitlines()
    if not lines or lines[0].strip() != "-----BEGIN PGP SIGNED MESSAGE-----":
        return text, False
    try:
        start = lines.index("") + 1  # armor headers (Hash: ...) end with a blank line
        end = lines.index("-----BEGIN PGP SIGNATURE-----")
    except ValueError:
        raise LibraryError("malformed clearsigned .dsc (no body or no signature)") from None
    body = [line[2:] if line.startswith("- ") else line for line in lines[start:end]]
    return "\n".join(body) + "\n", True


def parse_dsc(text: str) -> Dsc:
    body, signed = _strip_signature(text)
    fields = parse_control(body)
    for required in ("Source", "Version", "Checksums-Sha256"):
        if required not in fields:
            raise LibraryError(f".dsc has no {required} field")
    files = []
    for line in fields["Checksums-Sha256"].splitlines():
        parts = line.split()
        if not parts:
            continue
        if len(parts) != 3 or not re.fullmatch(r"[0-9a-f]{64}", parts[0]) or not parts[1].isdigit():
            raise LibraryError(f".dsc: bad Checksums-Sha256 line {line!r}")
        files.append(DscFile(name=parts[2], size=int(parts[1]), sha256=parts[0]))
    if not files:
        raise LibraryError(".dsc lists no files")
    return Dsc(
        source=fields["Source"],
        version=fields["Version"],
        files=tuple(files),
        signed=signed,
        fields=fields,
    )


def verify_files(dsc: Dsc, directory: Path) -> None:
    """Every file the .dsc lists is in `directory` with its size and sha256, or LibraryError."""
    for listed in dsc.files:
        path = directory / listed.name
        if not path.is_file():
            raise LibraryError(f"{dsc.source} {dsc.version}: {listed.name} is missing")
        size = path.stat().st_size
        if size != listed.size:
            raise LibraryError(
                f"{listed.name}: size {size} does not match the .dsc ({listed.size})"
            )
        actual = sha256_file(path)
        if actual != listed.sha256:
            raise LibraryError(
                f"{listed.name}: sha256 mismatch: the .dsc says {listed.sha256}, got {actual}"
            )


@dataclass(frozen=True)
class Signature:
    status: str  # good | unsigned | no-keyring | no-key
    signer: str = ""
    detail: str = ""


def verify_signature(
    dsc_path: Path, keyrings: Sequence[Path] = DEBIAN_KEYRINGS, *, required: bool = False
) -> Signature:
    """Check the .dsc's signature with gpgv. A bad signature is always an error; a missing
    keyring or key only when `required`. A signature by a key that has expired since it was
    made is good (Debian uploads outlive their uploaders' key expiry dates)."""
    text = dsc_path.read_text(encoding="utf-8", errors="replace")
    result: Signature
    if not _strip_signature(text)[1]:
        result = Signature("unsigned", detail=f"{dsc_path.name} is not signed")
    else:
        present = [k for k in keyrings if k.is_file()]
        gpgv = shutil.which("gpgv")
        if not present or gpgv is None:
            result = Signature(
                "no-keyring",
                detail="gpgv or the Debian keyrings (package debian-keyring) are not installed",
            )
        else:
            command = [gpgv, "--status-fd", "1"]
            for keyring in present:
                command += ["--keyring", str(keyring)]
            done = run([*command, str(dsc_path)])
            status = done.stdout
            if re.search(r"^\[GNUPG:\] BADSIG ", status, flags=re.MULTILINE):
                raise LibraryError(f"{dsc_path.name}: BAD signature\n{done.stderr.strip()}")
            valid = re.search(r"^\[GNUPG:\] VALIDSIG (\S+)", status, flags=re.MULTILINE)
            who = re.search(
                r"^\[GNUPG:\] (?:GOOD|EXPKEY|REVKEY)SIG \S+ (.*)$", status, flags=re.MULTILINE
            )
            if valid and not re.search(r"^\[GNUPG:\] REVKEYSIG", status, flags=re.MULTILINE):
                signer = who.group(1) if who else valid.group(1)
                detail = f"key {valid.group(1)}"
                if "[GNUPG:] EXPKEYSIG" in status:
                    detail += " (expired since the upload)"
                result = Signature("good", signer=signer, detail=detail)
            else:
                result = Signature(
                    "no-key", detail=done.stderr.strip().splitlines()[-1] if done.stderr else ""
                )
    if required and result.status != "good":
        raise LibraryError(f"{dsc_path.name}: signature not verified: {result.detail}")
    return result


# -- deb-src entries from the system's deb entries -------------------------------------------------


def deb_src_from_sources(text: str) -> str:
    """deb822 (.sources) stanzas of type deb, turned into deb-src stanzas; others dropped."""
    out = []
    for fields in deb_stanzas(text):
        fields["Types"] = "deb-src"
        fields.pop("Architectures", None)  # binary architectures mean nothing for sources
        lines = []
        for name, value in fields.items():
            first, *rest = value.split("\n")
            lines.append(f"{name}: {first}")
            lines += [f" {line}" for line in rest]
        out.append("\n".join(lines))
    return "\n\n".join(out) + ("\n" if out else "")


def deb_src_from_list(text: str) -> str:
    """One-line (.list) `deb ...` entries turned into `deb-src ...` entries; others dropped."""
    out = [" ".join(["deb-src", *words]) for words in deb_lines(text)]
    return "\n".join(out) + ("\n" if out else "")


def derived_entries(apt_etc: Path = APT_ETC) -> dict[str, str]:
    """File name -> deb-src entries for every system sources file with deb entries."""
    derived = {}
    for source in system_sources(apt_etc):
        stem = source.path.stem
        if source.deb822:
            converted, name = deb_src_from_sources(source.text), f"{stem}-src.sources"
        else:
            converted, name = deb_src_from_list(source.text), f"{stem}-src.list"
        if converted:
            derived[name] = converted
    return derived


# -- fetching and placing --------------------------------------------------------------------------


def _find_dsc(directory: Path, package: str, version: str | None) -> Path | None:
    if version:
        path = directory / f"{package}_{version.split(':', 1)[-1]}.dsc"
        return path if path.is_file() else None
    found = sorted(directory.glob(f"{package}_*.dsc"), key=lambda p: p.stat().st_mtime)
    return found[-1] if found else None


def fetch_source_package(
    package: str,
    version: str | None,
    downloads: Path,
    apt_root: Path,
    *,
    apt_etc: Path = APT_ETC,
) -> Path:
    """The .dsc of `package` (=version) in `downloads`, with its files, all verified. A pinned
    version already there and intact is used without asking apt."""
    downloads.mkdir(parents=True, exist_ok=True)
    if version:
        dsc_path = _find_dsc(downloads, package, version)
        if dsc_path is not None:
            try:
                verify_files(parse_dsc(dsc_path.read_text(encoding="utf-8")), downloads)
                return dsc_path
            except LibraryError:
                pass  # fetch again
    apt = PrivateApt(apt_root, derived_entries(apt_etc))
    apt.update()
    apt.download_source(package, version, downloads)
    dsc_path = _find_dsc(downloads, package, version)
    if dsc_path is None:
        raise LibraryError(f"apt-get source {package} left no .dsc in {downloads}")
    verify_files(parse_dsc(dsc_path.read_text(encoding="utf-8")), downloads)
    return dsc_path


def _normalized(info: tarfile.TarInfo) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = REPACK_MTIME
    if info.isdir():
        info.mode = 0o755
    elif info.isfile():
        info.mode = 0o755 if info.mode & 0o111 else 0o644
    return info


def deterministic_tar(tree: Path, out: Path, arcname: str) -> str:
    """Pack `tree` as `arcname/...` into an uncompressed tar that depends only on the files'
    paths, contents and executable bits; returns its sha256."""
    partial = out.with_name(f".{out.name}.part-{os.getpid()}")
    with tarfile.open(partial, "w", format=tarfile.GNU_FORMAT) as tar:
        paths = [tree, *sorted(tree.rglob("*"), key=lambda p: p.relative_to(tree).as_posix())]
        for path in paths:
            rel = path.relative_to(tree).as_posix()
            name = arcname if rel == "." else f"{arcname}/{rel}"
            info = _normalized(tar.gettarinfo(str(path), arcname=name))
            if info.isfile():
                with path.open("rb") as handle:
                    tar.addfile(info, handle)
            elif info.isdir() or info.issym():
                tar.addfile(info)
    partial.replace(out)
    return sha256_file(out)


def unpack_patched(dsc_path: Path, dest: Path) -> Path:
    """`dpkg-source -x` (checksums checked, Debian's patches applied) into dest/tree."""
    if shutil.which("dpkg-source") is None:
        raise SystemDependencyError("a patched Debian source tree needs dpkg-source (dpkg-dev)")
    remove_tree(dest)
    dest.mkdir(parents=True)
    tree = dest / "tree"
    check(
        ["dpkg-source", "--no-check", "-x", str(dsc_path), str(tree)],
        error=LibraryError,
        shown=f"dpkg-source -x {dsc_path.name}",
    )
    remove_tree(tree / ".pc")  # quilt's bookkeeping, not source
    return tree


@dataclass(frozen=True)
class Placed:
    dsc: Dsc
    signature: Signature
    orig: Path
    orig_sha256: str
    patched: Path | None = None
    patched_sha256: str | None = None
    debian_tarball: Path | None = None  # the .debian.tar.* (Debian's packaging and patches)
    patches: tuple[Path, ...] = ()  # chosen patches of debian/patches, as files

    def assignments(self) -> dict[str, str]:
        values = {
            "source": self.dsc.source,
            "version": self.dsc.version,
            "upstream_version": self.dsc.upstream_version,
            "orig_file": str(self.orig),
            "orig_sha256": self.orig_sha256,
            "signature": self.signature.status,
            "signer": self.signature.signer,
        }
        if self.patched is not None and self.patched_sha256 is not None:
            values["patched_file"] = str(self.patched)
            values["patched_sha256"] = self.patched_sha256
        if self.debian_tarball is not None:
            values["debian_tarball"] = str(self.debian_tarball)
        # PATH-style, so `build_library --patch "$DEBIAN_PATCHES"` takes them all (and a
        # space in a work dir's path stays part of its path).
        values["patches"] = os.pathsep.join(str(p) for p in self.patches)
        return values


def extract_patches(debian_tarball: Path, names: Sequence[str], dest: Path) -> tuple[Path, ...]:
    """The named patches of debian/patches in a .debian.tar.*, written to `dest` (in the order
    given: the order to apply them)."""
    dest.mkdir(parents=True, exist_ok=True)
    found = []
    with tarfile.open(debian_tarball) as tar:
        members = {m.name.removeprefix("./"): m for m in tar.getmembers() if m.isfile()}
        for name in names:
            member = members.get(f"debian/patches/{name}")
            if member is None:
                available = sorted(
                    n.removeprefix("debian/patches/")
                    for n in members
                    if n.startswith("debian/patches/") and n != "debian/patches/series"
                )
                raise LibraryError(
                    f"{debian_tarball.name} has no patch {name!r} (it has: "
                    f"{', '.join(available) or 'none'})"
                )
            extracted = tar.extractfile(member)
            assert extracted is not None
            target = dest / Path(name).name
            target.write_bytes(extracted.read())
            found.append(target)
    return tuple(found)


def place_in_mirror(
    dsc_path: Path,
    mirror: Path,
    *,
    orig_sha256: str | None = None,
    patched: bool = False,
    patches: Sequence[str] = (),
    require_signature: bool = False,
    keyrings: Sequence[Path] = DEBIAN_KEYRINGS,
) -> Placed:
    """Verify a downloaded source package and put its .orig tarball (and, if asked, the
    patched tree as a deterministic tar, or some of Debian's patches as files) into
    `mirror`, by file name."""
    dsc = parse_dsc(dsc_path.read_text(encoding="utf-8"))
    verify_files(dsc, dsc_path.parent)
    signature = verify_signature(dsc_path, keyrings, required=require_signature)
    origs = dsc.orig_tarballs
    main = [f for f in origs if re.search(r"\.orig\.tar\.", f.name)]
    if len(main) != 1:
        raise LibraryError(f"{dsc_path.name}: expected one .orig tarball, found {len(main)}")
    orig = main[0]
    if orig_sha256 is not None and orig.sha256 != orig_sha256.lower():
        raise LibraryError(
            f"{orig.name}: the .dsc's sha256 {orig.sha256} is not the pinned {orig_sha256}"
        )
    mirror.mkdir(parents=True, exist_ok=True)
    target = mirror / orig.name
    if not (target.is_file() and sha256_file(target) == orig.sha256):
        shutil.copyfile(dsc_path.parent / orig.name, target)
    debian = [f for f in dsc.files if re.search(r"\.debian\.tar\.", f.name)]
    debian_tarball = None
    if debian:
        debian_tarball = mirror / debian[0].name
        if not (debian_tarball.is_file() and sha256_file(debian_tarball) == debian[0].sha256):
            shutil.copyfile(dsc_path.parent / debian[0].name, debian_tarball)
    chosen: tuple[Path, ...] = ()
    if patches:
        if debian_tarball is None:
            raise LibraryError(f"{dsc_path.name} has no .debian.tar: no patches to take")
        chosen = extract_patches(
            debian_tarball, patches, mirror / f"{dsc.source}-{dsc.version}-patches"
        )
    placed = Placed(
        dsc=dsc,
        signature=signature,
        orig=target,
        orig_sha256=orig.sha256,
        debian_tarball=debian_tarball,
        patches=chosen,
    )
    if not patched:
        return placed
    name = f"{dsc.source}-{dsc.version.split(':', 1)[-1]}.patched.tar"
    out = mirror / name
    with tempfile.TemporaryDirectory(prefix="mb-dsrc-", dir=mirror) as tmp:
        tree = unpack_patched(dsc_path, Path(tmp) / "x")
        digest = deterministic_tar(tree, out, f"{dsc.source}-{dsc.upstream_version}")
    return replace(placed, patched=out, patched_sha256=digest)


# -- command line ----------------------------------------------------------------------------------


def _print(values: dict[str, str], as_json: bool) -> None:
    if as_json:
        console.result(json.dumps(values, indent=1))
    else:
        for key, value in values.items():
            console.result(f"{key}={shlex.quote(value)}")


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m multibuild.debian.source")
    sub = parser.add_subparsers(dest="command", required=True)
    fetch = sub.add_parser("fetch", help="apt-get source a package, verify it, fill a mirror")
    fetch.add_argument("package")
    fetch.add_argument("--version", help="the Debian version to fetch (default: the newest)")
    fetch.add_argument("--mirror", required=True, type=Path, help="where the tarballs go")
    fetch.add_argument(
        "--cache-dir",
        type=Path,
        help="downloads and the private apt state (default: $MB_CACHE_DIR/debian-source)",
    )
    fetch.add_argument("--orig-sha256", help="the pinned sha256 of the .orig tarball")
    fetch.add_argument(
        "--patched", action="store_true", help="also pack the tree with Debian's patches applied"
    )
    fetch.add_argument(
        "--patch",
        action="append",
        default=[],
        metavar="NAME",
        help="one of Debian's patches (debian/patches/NAME) to write out as a file (repeatable)",
    )
    fetch.add_argument(
        "--require-signature",
        action="store_true",
        help="fail unless the .dsc's signature verifies against the Debian keyrings",
    )
    fetch.add_argument("--json", action="store_true", help="print JSON instead of shell lines")
    verify = sub.add_parser("verify", help="check a .dsc and the files beside it")
    verify.add_argument("dsc", type=Path)
    ns = parser.parse_args(list(argv) if argv is not None else None)
    try:
        if ns.command == "verify":
            dsc = parse_dsc(ns.dsc.read_text(encoding="utf-8"))
            verify_files(dsc, ns.dsc.parent)
            signature = verify_signature(ns.dsc)
            _print(
                {"source": dsc.source, "version": dsc.version, "signature": signature.status},
                as_json=False,
            )
            return 0
        cache = (
            ns.cache_dir
            or (HookContext.from_environ(os.environ).cache_dir or Path()) / "debian-source"
        ).resolve()  # apt runs elsewhere: a relative directory would name another place
        dsc_path = fetch_source_package(ns.package, ns.version, cache / "downloads", cache / "apt")
        placed = place_in_mirror(
            dsc_path,
            ns.mirror.resolve(),
            orig_sha256=ns.orig_sha256,
            patched=ns.patched,
            patches=ns.patch,
            require_signature=ns.require_signature,
        )
    except FatalError as error:
        return report("debian_source", error)
    signature = placed.signature
    about = ", ".join(part for part in (signature.signer, signature.detail) if part)
    console.info(
        f"debian_source: {placed.dsc.source} {placed.dsc.version}: files match the .dsc; "
        f"signature: {signature.status}" + (f" ({about})" if about else ""),
        to_stderr=True,
    )
    _print(placed.assignments(), ns.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
