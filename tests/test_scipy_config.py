"""scipy's config.sh, the parts that run in seconds: the OpenBLAS .pc of both routes, the
OpenBLAS recipe on a tiny stand-in through build_library, the test-level switch, the
missing-tool message, and multibuild.debian_source's .dsc checks (no scipy build here: that
is the main job and the benchmark)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import tarfile
import textwrap
import time
from pathlib import Path

import pytest

from multibuild.debian_source import (
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
from multibuild.hooks import RUN_HOOK
from multibuild.settings import load_settings
from tests.conftest import REPO_ROOT

CONFIG = REPO_ROOT / "config.sh"
OPENBLAS_WHEEL_VERSION = load_settings(REPO_ROOT / "settings.toml").libraries["scipy_openblas32"]


def hook(
    name: str, env: dict[str, str], tmp: Path, *, check: bool = True
) -> subprocess.CompletedProcess[str]:
    """Run one function of config.sh as the engine does (run_hook.sh, helpers loaded)."""
    full = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("MB_", "OPENBLAS_", "SCIPY_", "PKG_CONFIG"))
    }
    full.update(
        {
            "MB_HOOK_STATE": str(tmp / "hook-state"),
            "MB_PYTHON": sys.executable,
            "MB_JOBS": "2",
            "CONFIG_DIR": str(REPO_ROOT),
        }
    )
    full.update(env)
    done = subprocess.run(
        ["bash", str(RUN_HOOK), str(CONFIG), name],
        cwd=tmp,
        env=full,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    if check:
        assert done.returncode == 0, done.stdout + done.stderr
    return done


def pkg_config(prefix: Path, *args: str) -> str:
    env = dict(os.environ, PKG_CONFIG_PATH=str(prefix / "lib" / "pkgconfig"))
    done = subprocess.run(
        ["pkg-config", *args, "scipy-openblas"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


needs_build_tools = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("gcc", "make", "pkg-config", "nm")),
    reason="needs gcc, make, pkg-config and nm",
)


# -- settings ---------------------------------------------------------------------------------


def test_settings_pin_every_openblas_route() -> None:
    settings = load_settings(REPO_ROOT / "settings.toml")
    libraries = settings.libraries
    assert settings.hook_env["OPENBLAS_SOURCE"] in ("wheel", "upstream", "debian")
    assert {"scipy_openblas32", "openblas", "openblas_debian"} <= set(libraries)
    # every pinned source version has its sha256 in config.sh
    text = CONFIG.read_text()
    assert f"{libraries['openblas']})" in text
    assert libraries["openblas_debian"].rsplit("-", 1)[0] in text


# -- the test level switch -----------------------------------------------------------------------


@pytest.fixture
def fake_scipy(tmp_path: Path) -> Path:
    """A `scipy` whose test() prints its arguments and a pytest closing line."""
    package = tmp_path / "fake" / "scipy"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(
        textwrap.dedent(
            """
            import json, os
            __version__ = "0+fake"
            def show_config():
                print("fake show_config")
            def test(**kwargs):
                print("SCIPY.TEST " + json.dumps(kwargs))
                print("==== 7 passed, 2 skipped, 3 deselected in 0.10s ====")
                return not os.environ.get("FAKE_SCIPY_FAIL")
            """
        )
    )
    return package.parent


def scipy_test_call(output: str) -> dict[str, object]:
    line = next(x for x in output.splitlines() if x.startswith("SCIPY.TEST "))
    call: dict[str, object] = json.loads(line.removeprefix("SCIPY.TEST "))
    return call


@pytest.mark.parametrize("level", ["fast", "full"])
def test_test_level_reaches_scipy_test(tmp_path: Path, fake_scipy: Path, level: str) -> None:
    done = hook(
        "run_tests",
        {"PYTHON_EXE": sys.executable, "PYTHONPATH": str(fake_scipy), "MB_TEST_LEVEL": level},
        tmp_path,
    )
    call = scipy_test_call(done.stdout)
    assert call["label"] == level
    assert call["parallel"] == 2
    assert call["tests"] is None
    # offline by default: scipy.datasets' downloads deselected, and said so
    assert call["extra_argv"] == [
        "-k",
        "not TestDatasets",
        f"--ignore={fake_scipy / 'scipy' / 'datasets' / 'tests'}",
    ]
    assert "scipy.datasets tests left out (no network" in done.stdout
    # the engine's parser reads the counts from the closing line
    from multibuild.test import pytest_counts

    assert pytest_counts(done.stdout) == {"passed": 7, "skipped": 2, "deselected": 3}


def test_module_subset_and_network_knobs(tmp_path: Path, fake_scipy: Path) -> None:
    done = hook(
        "run_tests",
        {
            "PYTHON_EXE": sys.executable,
            "PYTHONPATH": str(fake_scipy),
            "MB_TEST_LEVEL": "fast",
            "SCIPY_TEST_MODULES": "scipy.linalg scipy.fft",
            "SCIPY_TEST_NETWORK": "1",
        },
        tmp_path,
    )
    call = scipy_test_call(done.stdout)
    assert call["tests"] == ["scipy.linalg", "scipy.fft"]
    assert call["extra_argv"] == []


def test_bad_test_level_and_failing_suite_fail_the_hook(tmp_path: Path, fake_scipy: Path) -> None:
    env = {"PYTHON_EXE": sys.executable, "PYTHONPATH": str(fake_scipy)}
    bad = hook("run_tests", {**env, "MB_TEST_LEVEL": "slowest"}, tmp_path, check=False)
    assert bad.returncode != 0
    assert "MB_TEST_LEVEL is fast or full" in bad.stderr
    failing = hook("run_tests", {**env, "FAKE_SCIPY_FAIL": "1"}, tmp_path, check=False)
    assert failing.returncode == 1


def test_missing_system_tool_is_named(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "dirname"):
        found = shutil.which(tool)
        assert found
        (bin_dir / tool).symlink_to(found)
    done = hook(
        "pre_build",
        {"PATH": str(bin_dir), "BUILD_PREFIX": str(tmp_path / "prefix")},
        tmp_path,
        check=False,
    )
    assert done.returncode == 4
    assert "this build needs gfortran pkg-config patchelf" in done.stderr


# -- route (b): OpenBLAS from source through build_library -----------------------------------------

STANDIN_MAKEFILE = """\
# A stand-in for OpenBLAS' Makefile: same variables, same targets, seconds to build.
CC ?= cc
LIBNAMEBASE = $(SYMBOLPREFIX)openblas$(SYMBOLSUFFIX)$(if $(LIBNAMESUFFIX),_$(LIBNAMESUFFIX))
LIBSO = lib$(LIBNAMEBASE).so

all: $(LIBSO) tests

$(LIBSO): blas.c
\t$(CC) -shared -fPIC -O2 -DPREFIX=$(SYMBOLPREFIX) -o $@ blas.c -Wl,-soname,$(LIBSO).0
\tprintf '%s\\n' "DYNAMIC_ARCH=$(DYNAMIC_ARCH)" "DYNAMIC_LIST=$(DYNAMIC_LIST)" \\
\t  "TARGET=$(TARGET)" "USE_OPENMP=$(USE_OPENMP)" "NUM_THREADS=$(NUM_THREADS)" \\
\t  "SYMBOLPREFIX=$(SYMBOLPREFIX)" "LIBNAMESUFFIX=$(LIBNAMESUFFIX)" \\
\t  "NO_LAPACKE=$(NO_LAPACKE)" "CC=$(CC)" "FC=$(FC)" > build-flags.txt

tests: $(LIBSO)
\ttest -n "$(NUM_THREADS)"

install: $(LIBSO)
\tmkdir -p $(DESTDIR)$(PREFIX)/lib $(DESTDIR)$(PREFIX)/include $(DESTDIR)$(PREFIX)/share
\tcp $(LIBSO) $(DESTDIR)$(PREFIX)/lib/$(LIBSO).0
\tln -sf $(LIBSO).0 $(DESTDIR)$(PREFIX)/lib/$(LIBSO)
\tcp cblas.h $(DESTDIR)$(PREFIX)/include/
\tcp build-flags.txt $(DESTDIR)$(PREFIX)/share/openblas-build-flags.txt
"""

STANDIN_C = """\
#define CAT2(a, b) a##b
#define CAT(a, b) CAT2(a, b)
double CAT(PREFIX, ddot_)(const int *n, const double *x, const int *incx,
                          const double *y, const int *incy) {
    double s = 0.0;
    for (int i = 0; i < *n; i++) s += x[i * *incx] * y[i * *incy];
    return s;
}
"""


def standin_tarball(dest: Path, version: str) -> tuple[Path, str]:
    """OpenBLAS-VERSION.tar.gz holding the stand-in project; returns it and its sha256."""
    dest.mkdir(parents=True, exist_ok=True)
    archive = dest / f"OpenBLAS-{version}.tar.gz"
    files = {
        "Makefile": STANDIN_MAKEFILE,
        "blas.c": STANDIN_C,
        "cblas.h": "/* stand-in */\n",
    }
    with tarfile.open(archive, "w:gz") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(f"OpenBLAS-{version}/{name}")
            info.size = len(data)
            info.mtime = int(time.time())
            tar.addfile(info, io.BytesIO(data))
    return archive, hashlib.sha256(archive.read_bytes()).hexdigest()


@needs_build_tools
def test_openblas_recipe_builds_through_the_library_cache(tmp_path: Path) -> None:
    mirror = tmp_path / "mirror"
    _, sha256 = standin_tarball(mirror, "0.0.1")
    prefix, cache = tmp_path / "prefix", tmp_path / "cache"
    results = tmp_path / "libraries.jsonl"
    env = {
        "BUILD_PREFIX": str(prefix),
        "MB_CACHE_DIR": str(cache),
        "MB_MIRROR_DIRS": str(mirror),  # the upstream URL is never reached
        "MB_LIBRARY_RESULTS": str(results),
        "OPENBLAS_SOURCE": "upstream",
        "OPENBLAS_VERSION": "0.0.1",
        "OPENBLAS_SHA256": sha256,
        "OPENBLAS_DYNAMIC_LIST": "HASWELL SKYLAKEX",
    }
    hook("openblas_from_source", env, tmp_path)

    library = prefix / "lib" / "libscipy_openblas_mb.so"
    assert library.exists()
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(library)], capture_output=True, text=True, check=True
    ).stdout
    assert "scipy_ddot_" in symbols  # the symbol prefix reached the build
    flags = (prefix / "share" / "openblas-build-flags.txt").read_text().splitlines()
    for expected in (
        "DYNAMIC_ARCH=1",
        "DYNAMIC_LIST=HASWELL SKYLAKEX",  # one make argument, spaces kept
        "USE_OPENMP=0",
        "NUM_THREADS=64",
        "SYMBOLPREFIX=scipy_",
        "LIBNAMESUFFIX=mb",
        "CC=gcc",
        "FC=gfortran",
    ):
        assert expected in flags, flags

    # the .pc scipy's meson finds first
    assert pkg_config(prefix, "--libs").split()[:2] == [
        f"-L{prefix / 'lib'}",
        "-lscipy_openblas_mb",
    ]
    assert "-DBLAS_SYMBOL_PREFIX=scipy_" in pkg_config(prefix, "--cflags")
    # ... and that links: a C program calling the prefixed symbol through it
    program = tmp_path / "use.c"
    program.write_text(
        "#include <stdio.h>\n"
        "double scipy_ddot_(const int*, const double*, const int*, const double*, const int*);\n"
        "int main(void) { int n = 3, one = 1; double x[] = {1, 2, 3};\n"
        '  printf("%g\\n", scipy_ddot_(&n, x, &one, x, &one)); return 0; }\n'
    )
    subprocess.run(
        ["gcc", str(program), "-o", str(tmp_path / "use"), *pkg_config(prefix, "--libs").split()],
        check=True,
    )
    ran = subprocess.run([str(tmp_path / "use")], capture_output=True, text=True, check=True)
    assert ran.stdout.strip() == "14"

    # a second pre_build takes the library from the cache
    shutil.rmtree(prefix)
    hook("openblas_from_source", env, tmp_path)
    first, second = (json.loads(line) for line in results.read_text().splitlines())
    assert first["cached"] is False and second["cached"] is True
    assert first["key"] == second["key"]
    assert library.exists()
    # a different kernel list is a different build
    hook("openblas_from_source", {**env, "OPENBLAS_DYNAMIC_LIST": "HASWELL"}, tmp_path)
    third = json.loads(results.read_text().splitlines()[-1])
    assert third["cached"] is False and third["key"] != first["key"]


def test_unpinned_upstream_version_is_refused(tmp_path: Path) -> None:
    done = hook(
        "openblas_from_source",
        {
            "BUILD_PREFIX": str(tmp_path / "prefix"),
            "MB_CACHE_DIR": str(tmp_path / "cache"),
            "OPENBLAS_SOURCE": "upstream",
            "OPENBLAS_VERSION": "9.9.9",
        },
        tmp_path,
        check=False,
    )
    assert done.returncode == 6
    assert "no sha256 pinned for OpenBLAS 9.9.9" in done.stderr


def test_unknown_openblas_source_is_refused(tmp_path: Path) -> None:
    done = hook(
        "openblas_from_source",
        {"BUILD_PREFIX": str(tmp_path / "prefix"), "OPENBLAS_SOURCE": "conda"},
        tmp_path,
        check=False,
    )
    assert done.returncode == 2
    assert "wheel, upstream or debian" in done.stderr


# -- route (a): scipy-openblas32 from the package index ----------------------------------------


@pytest.fixture(scope="module")
def openblas_wheel_venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A venv with the pinned scipy-openblas32 (pip from the configured index)."""
    version = OPENBLAS_WHEEL_VERSION
    venv = tmp_path_factory.mktemp("openblas-venv") / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = venv / "bin" / "python"
    done = subprocess.run(
        [
            str(python),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            f"scipy-openblas32=={version}",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"scipy-openblas32=={version} not installable here: {done.stderr[-300:]}")
    return python


@needs_build_tools
def test_wheel_route_writes_the_pc_from_get_pkg_config(
    tmp_path: Path, openblas_wheel_venv: Path
) -> None:
    prefix = tmp_path / "prefix"
    done = hook(
        "openblas_from_wheel",
        {
            "BUILD_PREFIX": str(prefix),
            "PYTHON_EXE": str(openblas_wheel_venv),
            "SCIPY_OPENBLAS32_VERSION": OPENBLAS_WHEEL_VERSION,
        },
        tmp_path,
    )
    assert "DYNAMIC_ARCH" in done.stdout  # the library's own config string
    pc = (prefix / "lib" / "pkgconfig" / "scipy-openblas.pc").read_text()
    assert "site-packages" not in pc  # every path points into the prefix
    assert pkg_config(prefix, "--variable=libdir") == str(prefix / "lib")
    assert "-DBLAS_SYMBOL_PREFIX=scipy_" in pkg_config(prefix, "--cflags")
    libs = pkg_config(prefix, "--libs")
    assert str(prefix / "lib" / "libscipy_openblas.so") in libs
    assert (prefix / "lib" / "libscipy_openblas.so").is_file()
    assert (prefix / "include" / "cblas.h").is_file()
    symbols = subprocess.run(
        ["nm", "-D", "--defined-only", str(prefix / "lib" / "libscipy_openblas.so")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "scipy_dgemm_" in symbols
    # one Fortran runtime: the library now needs the system's libgfortran, and still loads
    needed = subprocess.run(
        ["patchelf", "--print-needed", str(prefix / "lib" / "libscipy_openblas.so")],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert "libgfortran.so.5" in needed
    assert not list((prefix / "lib").glob("libgfortran-*"))
    loaded = subprocess.run(
        [
            sys.executable,
            "-c",
            "import ctypes, sys; lib = ctypes.CDLL(sys.argv[1]); "
            "lib.scipy_openblas_get_config.restype = ctypes.c_char_p; "
            "print(lib.scipy_openblas_get_config().decode())",
            str(prefix / "lib" / "libscipy_openblas.so"),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    assert "DYNAMIC_ARCH" in loaded.stdout


# -- multibuild.debian_source ----------------------------------------------------------------------


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
