"""multibuild.debian.source: .dsc files parsed and checked, signature states, deb-src entries
derived from the system's deb entries, a repacked tree byte for byte stable."""

from __future__ import annotations

import hashlib
import os
import tarfile
import textwrap
from pathlib import Path

import pytest

from multibuild.debian.source import (
    Dsc,
    deb_src_from_list,
    deb_src_from_sources,
    derived_entries,
    deterministic_tar,
    parse_dsc,
    place_in_mirror,
    verify_files,
    verify_signature,
)
from multibuild.errors import LibraryError


def make_package(directory: Path, *, signed: bool = False, orig: bytes = b"orig") -> Path:
    """A source package: .orig and .debian tarballs and a .dsc listing them."""
    directory.mkdir(parents=True, exist_ok=True)
    files = {"demo_1.0+ds.orig.tar.xz": orig, "demo_1.0+ds-2.debian.tar.xz": b"debian"}
    for name, data in files.items():
        (directory / name).write_bytes(data)
    sums = "".join(
        f" {hashlib.sha256(data).hexdigest()} {len(data)} {name}\n" for name, data in files.items()
    )
    body = (
        "Format: 3.0 (quilt)\nSource: demo\nBinary: libdemo1\nVersion: 1:1.0+ds-2\n"
        "Description: multi-line\n a continuation\n"
        f"Checksums-Sha256:\n{sums}"
    )
    if signed:
        # RFC 4880 allows dash-escaping any line; gpg does it to lines starting with "-"
        escaped = "\n".join(f"- {x}" if x.startswith("Format") else x for x in body.splitlines())
        body = (
            "-----BEGIN PGP SIGNED MESSAGE-----\nHash: SHA512\n\n"
            f"{escaped}\n\n-----BEGIN PGP SIGNATURE-----\n\nAAAA\n-----END PGP SIGNATURE-----\n"
        )
    dsc = directory / "demo_1.0+ds-2.dsc"
    dsc.write_text(body)
    return dsc


def test_dsc_parsing(tmp_path: Path) -> None:
    for signed in (False, True):
        dsc_path = make_package(tmp_path / str(signed), signed=signed)
        dsc = parse_dsc(dsc_path.read_text())
        assert isinstance(dsc, Dsc)
        assert (dsc.source, dsc.version, dsc.signed) == ("demo", "1:1.0+ds-2", signed)
        assert dsc.upstream_version == "1.0+ds"
        assert [f.name for f in dsc.orig_tarballs] == ["demo_1.0+ds.orig.tar.xz"]
        assert dsc.fields["Description"] == "multi-line\na continuation"
        verify_files(dsc, dsc_path.parent)


def test_dsc_mismatches_are_errors(tmp_path: Path) -> None:
    dsc_path = make_package(tmp_path)
    dsc = parse_dsc(dsc_path.read_text())
    orig = tmp_path / "demo_1.0+ds.orig.tar.xz"
    orig.write_bytes(b"ORIG")  # same size, other bytes
    with pytest.raises(LibraryError, match="sha256 mismatch"):
        verify_files(dsc, tmp_path)
    orig.write_bytes(b"orig, longer")
    with pytest.raises(LibraryError, match="size"):
        verify_files(dsc, tmp_path)
    orig.unlink()
    with pytest.raises(LibraryError, match="missing"):
        verify_files(dsc, tmp_path)
    with pytest.raises(LibraryError, match="Checksums-Sha256"):
        parse_dsc("Source: demo\nVersion: 1\n")
    with pytest.raises(LibraryError, match="bad Checksums-Sha256"):
        parse_dsc("Source: demo\nVersion: 1\nChecksums-Sha256:\n nothex 12 x.tar.xz\n")


def test_signature_states(tmp_path: Path) -> None:
    unsigned = make_package(tmp_path / "u")
    assert verify_signature(unsigned).status == "unsigned"
    with pytest.raises(LibraryError, match="signature not verified"):
        verify_signature(unsigned, required=True)
    signed = make_package(tmp_path / "s", signed=True)
    result = verify_signature(signed, keyrings=[tmp_path / "no-such-keyring.gpg"])
    assert result.status == "no-keyring"


def test_place_in_mirror_checks_the_pin(tmp_path: Path) -> None:
    dsc_path = make_package(tmp_path / "pkg")
    orig_sha = hashlib.sha256(b"orig").hexdigest()
    placed = place_in_mirror(dsc_path, tmp_path / "mirror", orig_sha256=orig_sha)
    assert placed.orig == tmp_path / "mirror" / "demo_1.0+ds.orig.tar.xz"
    assert placed.orig.read_bytes() == b"orig"
    assert placed.assignments()["orig_sha256"] == orig_sha
    with pytest.raises(LibraryError, match="not the pinned"):
        place_in_mirror(dsc_path, tmp_path / "mirror", orig_sha256="0" * 64)
    # a tampered .orig is caught before it reaches the mirror
    (tmp_path / "pkg" / "demo_1.0+ds.orig.tar.xz").write_bytes(b"evil")
    with pytest.raises(LibraryError, match="sha256 mismatch"):
        place_in_mirror(dsc_path, tmp_path / "mirror2")
    assert not (tmp_path / "mirror2").exists()


def test_deb_src_entries_derived_from_deb_entries(tmp_path: Path) -> None:
    sources = textwrap.dedent(
        """\
        Types: deb
        # a comment
        URIs: http://archive.invalid/debian
        Suites: stable stable-updates
        Components: main
        Architectures: amd64
        Signed-By: /usr/share/keyrings/archive.gpg

        Types: deb-src
        URIs: http://archive.invalid/already-src
        Suites: stable
        Components: main

        Types: deb
        Enabled: no
        URIs: http://archive.invalid/disabled
        Suites: stable
        Components: main
        """
    )
    converted = deb_src_from_sources(sources)
    assert converted.count("Types: deb-src") == 1
    assert "Suites: stable stable-updates" in converted
    assert "Signed-By: /usr/share/keyrings/archive.gpg" in converted
    assert "Architectures" not in converted and "disabled" not in converted
    listed = deb_src_from_list(
        "deb [signed-by=/k.gpg] http://archive.invalid/debian stable main # c\n"
        "# deb http://archive.invalid/commented stable main\n"
        "deb-src http://archive.invalid/debian stable main\n"
    )
    assert listed == "deb-src [signed-by=/k.gpg] http://archive.invalid/debian stable main\n"
    etc = tmp_path / "etc-apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list.d" / "main.sources").write_text(sources)
    (etc / "sources.list.d" / "off.list.disabled").write_text("deb http://x.invalid/ s main\n")
    (etc / "sources.list").write_text("# nothing\n")
    assert list(derived_entries(etc)) == ["main-src.sources"]


def test_repacked_tree_is_byte_for_byte_stable(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "sub").mkdir(parents=True)
    (tree / "sub" / "a.c").write_text("int a;\n")
    (tree / "run.sh").write_text("#!/bin/sh\n")
    (tree / "run.sh").chmod(0o755)
    (tree / "link").symlink_to("run.sh")
    first = deterministic_tar(tree, tmp_path / "one.tar", "demo-1.0")
    os.utime(tree / "sub" / "a.c", (1, 1))  # other mtimes, same content
    second = deterministic_tar(tree, tmp_path / "two.tar", "demo-1.0")
    assert first == second
    with tarfile.open(tmp_path / "one.tar") as tar:
        names = tar.getnames()
        assert names[0] == "demo-1.0"
        assert tar.getmember("demo-1.0/run.sh").mode == 0o755
        assert tar.getmember("demo-1.0/link").issym()
    (tree / "sub" / "a.c").write_text("int b;\n")
    assert deterministic_tar(tree, tmp_path / "three.tar", "demo-1.0") != first


def test_named_patches_are_taken_from_the_debian_tarball(tmp_path: Path) -> None:
    import io
    import tarfile

    from multibuild.debian.source import extract_patches

    debian = tmp_path / "pkg_1.0-1.debian.tar.xz"
    with tarfile.open(debian, "w:xz") as tar:
        for name, text in (
            ("debian/patches/series", "a.patch\nb.patch\n"),
            ("debian/patches/a.patch", "--- a\n"),
            ("debian/patches/b.patch", "--- b\n"),
        ):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    found = extract_patches(debian, ["b.patch", "a.patch"], tmp_path / "out")
    assert [p.name for p in found] == ["b.patch", "a.patch"]  # in the order asked
    assert found[0].read_text() == "--- b\n"
    with pytest.raises(LibraryError, match=r"no patch 'c.patch' \(it has: a.patch, b.patch\)"):
        extract_patches(debian, ["c.patch"], tmp_path / "out")
