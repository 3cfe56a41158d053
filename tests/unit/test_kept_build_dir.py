"""The build dir kept in the build cache for a fresh copy of the source: unchanged files get
back the dates the last build saw, every other file the current time; a build dir without its
record, or from another configuration, is emptied (multibuild.engine.kept_build_dir)."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import pytest

from multibuild.engine import kept_build_dir
from multibuild.engine.kept_build_dir import SETTLED_DATE, KeptBuildDir, settle_requirements
from multibuild.util.files import sha256_file

CONFIGURATION = {"image": "localhost/x:1", "build": "cp311-manylinux_x86_64",
                 "config_settings": ["build-dir=/tmp/b"]}  # fmt: skip


def fresh_copy(tmp: Path, name: str, changed: str = "") -> Path:
    """A new checkout of the same project: every file dated now (like git or an unpacked tar
    with new dates), one file's content changed if asked."""
    source = tmp / name
    (source / "src").mkdir(parents=True)
    (source / "meson.build").write_text("project('p', 'c')\n")
    (source / "src" / "a.c").write_text("int a(void) { return 1; }\n")
    (source / "src" / "b.c").write_text("int b(void) { return 2; }\n" + changed)
    (source / ".git").mkdir()
    (source / ".git" / "HEAD").write_text("ref: refs/heads/main\n")
    return source


def dates(source: Path) -> dict[str, int]:
    return {p.relative_to(source).as_posix(): p.stat().st_mtime_ns
            for p in source.rglob("*") if p.is_file()}  # fmt: skip


def built(kept: KeptBuildDir, source: Path) -> None:
    """What a successful build leaves: outputs in the build dir, then the record."""
    (kept.host / "a.o").write_text("object")
    kept.save(source)


def test_the_first_build_starts_a_new_build_dir(tmp_path: Path) -> None:
    kept = KeptBuildDir(host=tmp_path / "cache" / "p-cp311", path="/c/p-cp311",
                        configuration=CONFIGURATION)  # fmt: skip
    source = fresh_copy(tmp_path, "first")
    before = dates(source)
    assert kept.prepare(source) == "new: the cache held no build dir"
    assert kept.host.is_dir() and not kept.record_file.exists()
    assert dates(source) == before  # nothing to date against


def test_unchanged_files_get_the_dates_the_last_build_saw(tmp_path: Path) -> None:
    kept = KeptBuildDir(host=tmp_path / "cache" / "p-cp311", path="/c/p-cp311",
                        configuration=CONFIGURATION)  # fmt: skip
    first = fresh_copy(tmp_path, "first")
    old = time.time_ns() - 3600 * 10**9  # an hour ago: the sdist's or the commit's dates
    for path in first.rglob("*"):
        os.utime(path, ns=(old, old))
    kept.prepare(first)
    built(kept, first)
    assert kept.record_file.is_file()

    second = fresh_copy(tmp_path, "second", changed="int c(void) { return 3; }\n")
    started = time.time_ns()
    note = kept.prepare(second)
    assert note == "kept: 2 source files unchanged, 1 changed or new"
    found = dates(second)
    assert found["meson.build"] == old and found["src/a.c"] == old
    # Newer than every output the build dir holds: ninja rebuilds it.
    assert found["src/b.c"] >= started > (kept.host / "a.o").stat().st_mtime_ns
    assert found[".git/HEAD"] != old  # git's own files are left alone
    # Until this build succeeds there is no record: an interrupted build empties it next time.
    assert not kept.record_file.exists() and (kept.host / "a.o").exists()


def test_a_build_dir_without_its_record_is_emptied(tmp_path: Path) -> None:
    kept = KeptBuildDir(host=tmp_path / "cache" / "p-cp311", path="/c/p-cp311",
                        configuration=CONFIGURATION)  # fmt: skip
    source = fresh_copy(tmp_path, "first")
    kept.prepare(source)
    (kept.host / "a.o").write_text("an output of a build that failed")
    note = kept.prepare(fresh_copy(tmp_path, "second"))
    assert note == "emptied: no record of its sources (an interrupted or failed build)"
    assert kept.host.is_dir() and list(kept.host.iterdir()) == []


def test_another_configuration_or_a_broken_record_empties_it(tmp_path: Path) -> None:
    host = tmp_path / "cache" / "p-cp311"
    kept = KeptBuildDir(host=host, path="/c/p-cp311", configuration=CONFIGURATION)
    source = fresh_copy(tmp_path, "first")
    kept.prepare(source)
    built(kept, source)
    other = KeptBuildDir(host=host, path="/c/p-cp311",
                         configuration={**CONFIGURATION, "image": "localhost/x:2"})  # fmt: skip
    assert other.prepare(fresh_copy(tmp_path, "second")) == (
        "emptied: configured for another image, Python or settings"
    )
    assert list(host.iterdir()) == []
    built(kept, source)
    kept.record_file.write_text("{not json")
    assert kept.prepare(fresh_copy(tmp_path, "third")) == "emptied: its record is not readable"
    assert list(host.iterdir()) == []


def test_a_restored_copy_of_the_cache_keeps_working(tmp_path: Path) -> None:
    """actions/cache restores the directory elsewhere in time: the record travels with it."""
    kept = KeptBuildDir(host=tmp_path / "a" / "p-cp311", path="/c/p-cp311",
                        configuration=CONFIGURATION)  # fmt: skip
    source = fresh_copy(tmp_path, "first")
    kept.prepare(source)
    built(kept, source)
    shutil.copytree(tmp_path / "a", tmp_path / "b")
    restored = KeptBuildDir(host=tmp_path / "b" / "p-cp311", path="/c/p-cp311",
                            configuration=CONFIGURATION)  # fmt: skip
    assert restored.prepare(fresh_copy(tmp_path, "second")) == (
        "kept: 3 source files unchanged, 0 changed or new"
    )


def test_the_record_hashes_again_only_what_the_build_changed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """prepare hashed every file: save re-reads only the dates, and hashes a file again only
    when the build changed it (its size or date differ from what prepare left)."""
    kept = KeptBuildDir(host=tmp_path / "cache" / "p-cp311", path="/c/p-cp311",
                        configuration=CONFIGURATION)  # fmt: skip
    first = fresh_copy(tmp_path, "first")
    kept.prepare(first)
    built(kept, first)
    second = fresh_copy(tmp_path, "second")
    hashed: list[str] = []

    def counting(path: Path) -> str:
        hashed.append(Path(path).name)
        return sha256_file(path)

    monkeypatch.setattr(kept_build_dir, "sha256_file", counting)
    assert kept.prepare(second).startswith("kept: 3 source files unchanged")
    assert sorted(hashed) == ["a.c", "b.c", "meson.build"]
    hashed.clear()
    (second / "src" / "a.c").write_text("int a(void) { return 10; }\n")  # a build's rewrite
    built(kept, second)
    assert hashed == ["a.c"]
    record = json.loads(kept.record_file.read_text())["sources"]
    assert record["src/a.c"][0] == sha256_file(second / "src" / "a.c")
    assert record["src/b.c"] == [sha256_file(second / "src" / "b.c"),
                                 (second / "src" / "b.c").stat().st_mtime_ns]  # fmt: skip


def test_build_requirements_get_an_old_date_and_new_versions_empty_the_build_dir(
    tmp_path: Path,
) -> None:
    """A new container installs numpy's headers afresh: their date must not make every output
    that includes them stale, and other versions must not reuse outputs built against the old."""
    site = tmp_path / "site-packages"
    (site / "numpy" / "_core" / "include").mkdir(parents=True)
    header = site / "numpy" / "_core" / "include" / "ndarrayobject.h"
    header.write_text("/* numpy 2.3 */\n")
    build_dir = tmp_path / "cache" / "scipy-cp311"
    build_dir.mkdir(parents=True)
    (build_dir / "a.o").write_text("object")
    versions = ["cython==3.2.9", "numpy==2.3.5"]
    # No list of versions beside a build dir: nothing says what it was built with.
    assert settle_requirements(build_dir, [site], versions) == (
        "emptied: the build requirements' versions differ from its last build's"
    )
    assert list(build_dir.iterdir()) == []
    assert header.stat().st_mtime == SETTLED_DATE
    (build_dir / "a.o").write_text("object")
    header.touch()  # the next container's fresh install
    assert settle_requirements(build_dir, [site], versions) == ""
    assert (build_dir / "a.o").exists() and header.stat().st_mtime == SETTLED_DATE
    assert settle_requirements(build_dir, [site], ["cython==3.2.9", "numpy==2.4.0"]) != ""
    assert list(build_dir.iterdir()) == []
