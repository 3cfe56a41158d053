"""wheel-uploader's download side and release-status against `python -m http.server` on
127.0.0.1: every wheel of the matrix found, checked and downloaded; reruns, resumes, corrupt
files, hostile listings, incomplete releases, build tags, -t."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
from pathlib import Path

import pytest

from multibuild.cli import main
from multibuild.release.listing import Reader
from multibuild.util.http import Http
from tests.helpers import PYTHONS, REPO_ROOT, uploader
from tests.helpers import fill_release as fill
from tests.helpers import release_settings_file as settings_file
from tests.servers.release import StaticServer
from tests.servers.wheelhouse import make_build, make_wheel


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


LINKS = (
    "../",
    "javascript:alert(1)",
    "http://203.0.113.9/scipy-1.17.1-cp311-cp311-win_amd64.whl",
    "//203.0.113.9/scipy-1.17.1-cp312-cp312-win_amd64.whl",
    "../outside/scipy-1.17.1-cp312-cp312-win_amd64.whl",
    "..%2F..%2Fscipy-1.17.1-cp311-cp311-manylinux_2_17_x86_64.whl",
    "data:text/plain,scipy-1.17.1-cp312-cp312-manylinux_2_17_x86_64.whl",
    "scipy-1.17.1-cp311-cp311-macosx_11_0_arm64.whl#sha256=SHA",
)


HOSTILE = (
    "<html><body><table>\n"
    + "".join(f'<tr><td class="colname"><a href="{h}">{h}</a></td></tr>\n' for h in LINKS)
    + "</table></body></html>\n"
)


def test_downloads_the_whole_matrix_checked(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(static_server.root)
    make_wheel(static_server.root, "scipy", "1.17.0", "cp311-cp311-win_amd64")  # other version
    make_wheel(static_server.root, "scipy_extra", "1.17.1", "cp311-cp311-win_amd64")
    assert uploader(tmp_path, static_server.url, "-n") == 0
    out = capsys.readouterr().out
    wheels = sorted((tmp_path / "wh").glob("*.whl"))
    assert len(wheels) == 8, out
    assert all(w.name.startswith("scipy-1.17.1-") for w in wheels)
    for wheel in wheels:
        assert sha256(wheel) == sha256(static_server.root / wheel.name)
    sums = (tmp_path / "wh" / "SHA256SUMS").read_text().splitlines()
    assert sorted(sums) == sorted(f"{sha256(w)}  {w.name}" for w in wheels)
    assert not list((tmp_path / "wh").glob("*.part"))
    assert "no checksum" not in out  # the records gave every sha256

    # A rerun keeps what is there and valid; -c downloads again.
    assert uploader(tmp_path, static_server.url, "-n") == 0
    assert "0 downloaded" in capsys.readouterr().out
    assert uploader(tmp_path, static_server.url, "-n", "-c") == 0
    assert "8 downloaded" in capsys.readouterr().out


def test_resume_and_repair_after_interruption(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(static_server.root)
    wh = tmp_path / "wh"
    wh.mkdir()
    names = sorted(p.name for p in static_server.root.glob("*.whl"))
    # An interrupted run left half a file, and a damaged complete one.
    whole = (static_server.root / names[0]).read_bytes()
    (wh / ".partial").mkdir()
    (wh / ".partial" / (names[0] + ".part")).write_bytes(whole[: len(whole) // 2])
    (wh / names[1]).write_bytes(b"damaged")
    assert uploader(tmp_path, static_server.url, "-n") == 0
    for name in names:
        assert sha256(wh / name) == sha256(static_server.root / name)
    assert not list(wh.glob("*.part"))
    assert not (wh / ".partial").exists()


def test_release_status_table_and_exit_status(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(static_server.root, skip=("macos", "arm64"))
    settings = settings_file(tmp_path, release=static_server.url)
    assert main(tool="release-status", argv=["1.17.1", "--settings", str(settings)]) == 12
    out = capsys.readouterr().out
    assert "INCOMPLETE: 6/8" in out
    assert out.count("missing") == 2 and "macosx_*_arm64" in out
    fill(static_server.root)
    assert main(tool="release-status", argv=["1.17.1", "--settings", str(settings), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["complete"] and len(report["wheels"]) == 8
    for row in report["wheels"]:
        path = static_server.root / row["wheel"]
        assert row["status"] == "present"
        assert row["size"] == path.stat().st_size and row["sha256"] == sha256(path)


def test_incomplete_release_refused_unless_allowed(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(static_server.root, skip=("windows", "AMD64"))
    started = time.monotonic()
    assert uploader(tmp_path, static_server.url, "--dry-run", "--wait", "1s") == 12
    assert time.monotonic() - started < 30
    captured = capsys.readouterr()
    assert "2 of 8 wheels of the matrix are missing" in captured.err
    assert "win_amd64" in captured.out
    assert not (tmp_path / "wh").exists()  # nothing downloaded, nothing uploaded
    # -t manylinux asks only for the Linux wheels, which are all there.
    assert uploader(tmp_path, static_server.url, "-n", "-t", "manylinux") == 0
    assert len(list((tmp_path / "wh").glob("*.whl"))) == 2
    # Unknown -t: argparse's clear message, exit status 2.
    with pytest.raises(SystemExit) as exit_info:
        uploader(tmp_path, static_server.url, "-t", "solaris")
    assert exit_info.value.code == 2
    assert "invalid choice: 'solaris'" in capsys.readouterr().err


def test_local_container_directory(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A container that is a directory (settings.toml's default): a path or a file:// URL."""
    container = tmp_path / "containers" / "release"
    fill(container)
    assert uploader(tmp_path, str(container), "-n") == 0
    assert uploader(tmp_path, container.as_uri(), "-n", "-c") == 0
    out = capsys.readouterr().out
    assert "(local)" in out and "no checksum" not in out
    for wheel in container.glob("*.whl"):
        assert sha256(tmp_path / "wh" / wheel.name) == sha256(wheel)
    settings = settings_file(tmp_path)  # release = "containers/release"
    monkeypatch.chdir(tmp_path)  # a local container is relative to the current directory
    assert main(tool="release-status", argv=["1.17.1", "--settings", str(settings)]) == 0
    assert "COMPLETE: 8/8" in capsys.readouterr().out


def test_scripts_run_as_commands() -> None:
    """scripts/* are executable and find the package from any directory."""
    scripts = REPO_ROOT / "scripts"
    for name in ("wheel-uploader", "release-status", "set-build-commit", "trigger-build"):
        done = subprocess.run(
            [str(scripts / name), "--help"], capture_output=True, text=True, check=False, cwd="/"
        )
        assert done.returncode == 0 and f"usage: {name}" in done.stdout, done.stderr


def test_wait_until_the_wheels_appear(tmp_path: Path, static_server: StaticServer) -> None:
    """--wait polls until the last wheels are visible (as after CDN propagation)."""
    fill(static_server.root, skip=("macos", "arm64"))
    settings = settings_file(tmp_path)
    script = REPO_ROOT / "scripts" / "wheel-uploader"
    argv = [sys.executable, str(script), "-u", static_server.url, "-w", str(tmp_path / "wh")]
    argv += ["--settings", str(settings), "-n", "--wait", "60s", "--poll-interval", "0.3"]
    with subprocess.Popen(
        [*argv, "scipy", "1.17.1"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    ) as proc:
        time.sleep(1.0)
        assert proc.poll() is None  # still waiting
        late = tmp_path / "late"
        make_build(late, name="scipy", version="1.17.1", platform="macos", plat="arm64",
                   pythons=PYTHONS)  # fmt: skip
        for path in late.iterdir():  # each file appears whole (renamed into place)
            path.replace(static_server.root / path.name)
        out, _ = proc.communicate(timeout=60)
    assert proc.returncode == 0, out
    assert "waiting for 2 wheel(s)" in out
    assert len(list((tmp_path / "wh").glob("*.whl"))) == 8


def test_no_matching_wheel(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(static_server.root)
    assert uploader(tmp_path, static_server.url, "-n", release=("scipy", "1.18.0")) == 12
    assert "no wheel of scipy 1.18.0" in capsys.readouterr().err


def test_corrupt_download_is_refused(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(static_server.root)
    victim = sorted(static_server.root.glob("*win_amd64.whl"))[0]
    victim.write_bytes(victim.read_bytes()[:-1] + b"X")  # same size, other bytes
    assert uploader(tmp_path, static_server.url, "--dry-run") == 12
    err = capsys.readouterr().err
    assert f"{victim.name}: corrupt download" in err and "sha256" in err
    assert not (tmp_path / "wh" / victim.name).exists()
    # The corrupt file's .part is deleted; others cut short stay to be resumed.
    assert not (tmp_path / "wh" / ".partial" / (victim.name + ".part")).exists()
    assert not list((tmp_path / "wh").glob("*.part"))


def test_listing_and_record_disagree(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A page's #sha256= that contradicts the build record: refused before any download."""
    fill(static_server.root)
    links = []
    for path in sorted(static_server.root.iterdir()):
        fragment = f"#sha256={'0' * 64}" if path.name.endswith("win_amd64.whl") else ""
        links.append(f'<a href="{path.name}{fragment}">{path.name}</a>')
    (static_server.root / "index.html").write_text("<html><body>" + "".join(links) + "</body>")
    assert uploader(tmp_path, static_server.url, "-n") == 12
    assert "the container contradicts itself" in capsys.readouterr().err
    assert not list((tmp_path / "wh").glob("*.whl"))


def test_build_tags_and_normalised_names(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    fill(static_server.root)
    # pip's matching: "SciPy" and "1.17.1.0" name the same release; a build-tagged rebuild of
    # one wheel sits beside the first build: which one to release is ambiguous.
    make_wheel(static_server.root, "scipy", "1.17.1", "1-cp311-cp311-win_amd64")
    assert uploader(tmp_path, static_server.url, "-n", release=("SciPy", "1.17.1.0")) == 12
    err = capsys.readouterr().err
    assert "more than one wheel for the same Python and platform" in err
    assert "scipy-1.17.1-1-cp311-cp311-win_amd64.whl" in err
    # With the first build gone, the build-tagged wheel fills its cell.
    (static_server.root / "scipy-1.17.1-cp311-cp311-win_amd64.whl").unlink()
    assert uploader(tmp_path, static_server.url, "-n", release=("SciPy", "1.17.1.0")) == 0
    assert (tmp_path / "wh" / "scipy-1.17.1-1-cp311-cp311-win_amd64.whl").exists()
    assert "no checksum" in capsys.readouterr().out  # not in any record: size only


def test_hostile_listing(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    container = static_server.root / "release"
    wheel = make_wheel(container, "scipy", "1.17.1", "cp311-cp311-macosx_11_0_arm64")
    make_wheel(static_server.root / "outside", "scipy", "1.17.1", "cp312-cp312-win_amd64")
    (container / "index.html").write_text(HOSTILE.replace("SHA", sha256(wheel)))
    url = static_server.url + "release/"
    http = Http()
    try:
        listing = Reader(http).read(url, "scipy")
    finally:
        http.close()
    assert [e.name for e in listing.entries.values()] == [wheel.name]
    assert listing.entries[wheel.name].sha256 == sha256(wheel)
    assert len(listing.ignored) == 6
    assert uploader(tmp_path, url, "-n", "--allow-incomplete") == 0
    assert [p.name for p in (tmp_path / "wh").glob("*.whl")] == [wheel.name]


def test_pep503_and_index_pages(tmp_path: Path, static_server: StaticServer) -> None:
    """A PEP 503 root page (project link followed) whose project page links files elsewhere on
    the same site; and a container's own index.html named directly."""
    files = static_server.root / "packages"
    wheel = make_wheel(files, "scipy", "1.17.1", "cp311-cp311-win_amd64")
    project = static_server.root / "simple" / "scipy"
    project.mkdir(parents=True)
    (static_server.root / "simple" / "index.html").write_text(
        '<html><head><meta name="pypi:repository-version" content="1.0"></head><body>'
        '<a href="numpy/">numpy</a><a href="scipy/">SciPy</a></body></html>'
    )
    (project / "index.html").write_text(
        f'<html><body><a href="../../packages/{wheel.name}#sha256={sha256(wheel)}">'
        f"{wheel.name}</a></body></html>"
    )
    http = Http()
    try:
        listing = Reader(http).read(static_server.url + "simple/", "scipy")
        assert listing.kind == "pep503"
        entry = listing.by_basename()[wheel.name]
        assert entry.sha256 == sha256(wheel)
        assert entry.url == static_server.url + f"packages/{wheel.name}"
        page = Reader(http).read(static_server.url + "simple/scipy/index.html", "scipy")
        assert wheel.name in page.by_basename()
    finally:
        http.close()


def test_wheels_in_sub_directories_are_not_the_release(
    tmp_path: Path, static_server: StaticServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """A wheel under `old/` (listed with a `%2F` link) fills no cell and breaks nothing: the
    release is the container's top level."""
    fill(static_server.root, skip=("windows", "AMD64"))
    old = make_wheel(static_server.root / "old", "scipy", "1.17.1", "cp311-cp311-win_amd64")
    top = sorted(p.name for p in static_server.root.glob("*.whl"))
    links = [*top, f"old%2F{old.name}"]
    (static_server.root / "index.html").write_text(
        "<html><body>" + "".join(f'<a href="{h}">{h}</a>' for h in links) + "</body></html>"
    )
    assert uploader(tmp_path, static_server.url, "-n", "-v") == 0
    out = capsys.readouterr().out
    assert "ignored a wheel in a sub-directory: old/" in out
    assert "missing: " in out and "win_amd64" in out
    assert sorted(p.name for p in (tmp_path / "wh").glob("*.whl")) == top
    assert main(["1.17.1", "-u", static_server.url, "--settings",
                 str(settings_file(tmp_path))], tool="release-status") == 12  # fmt: skip
