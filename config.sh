# shellcheck shell=bash
# scipy's hooks for multibuild (see README.rst, "Hooks"). Sourced with `set -e`.
#
# Variables from the engine: BUILD_PREFIX (libraries go here), PLAT, MB_PYTHON_VERSION,
# REPO_DIR (the source tree), PYTHON_EXE (the build / test python), MB_TEST_LEVEL (fast|full),
# MB_JOBS, MB_CACHE_DIR, MB_MIRROR_DIRS, and NAME_VERSION for each entry of settings.toml's
# [libraries] (SCIPY_OPENBLAS32_VERSION, OPENBLAS_VERSION, OPENBLAS_DEBIAN_VERSION) and the
# variables of its [hook_env] (OPENBLAS_SOURCE); the environment wins over settings.toml.
#
# Knobs (environment):
#   OPENBLAS_SOURCE      where OpenBLAS comes from (default: settings' [hook_env]):
#                          wheel    - the scipy-openblas32 package from the package index, as
#                                     scipy's own wheels get it
#                          upstream - built here from the upstream release tarball (URL and
#                                     sha256 pinned below; put it in a --mirror directory where
#                                     the URL is unreachable)
#                          debian   - built here from the distribution's source package
#                                     (apt-get source; .dsc checksums and signature checked)
#   OPENBLAS_SHA256      sha256 of the upstream tarball of a version not pinned below
#   OPENBLAS_DYNAMIC_LIST  a reduced DYNAMIC_ARCH kernel list for quick builds (default: all)
#   SCIPY_TEST_MODULES   run only these modules' tests (e.g. "scipy.linalg scipy.fft")
#   SCIPY_TEST_NETWORK   1 where the network is reachable: run scipy.datasets' tests too
#   MB_BLAS              accelerate in the macOS Accelerate jobs (set by the engine): no OpenBLAS
#   FC                   the Fortran compiler (default gfortran; flang on Windows ARM64)

OPENBLAS_SOURCE="${OPENBLAS_SOURCE:-wheel}"
# Symbols get scipy's prefix (as in scipy-openblas32: scipy_dgemm_), and the library a name of
# its own, so neither clashes with another OpenBLAS in the same process (numpy's, the system's).
OPENBLAS_SYMBOLPREFIX=scipy_
OPENBLAS_LIBNAMESUFFIX=mb

# sha256 of upstream release tarballs, OpenBLAS-VERSION.tar.gz. 0.3.21's is the value Spack's
# openblas package records for that URL; the release host was unreachable where this was
# written, so the first download through it is also its first check here.
openblas_upstream_sha256() {
    case "$1" in
        0.3.21) echo f36ba3d7a60e7c8bcc54cd9aaa9b1223dd42eaf02c811791c37e8ca707c241ca ;;
        *) [ -n "${OPENBLAS_SHA256:-}" ] && echo "$OPENBLAS_SHA256" ;;
    esac
}

# sha256 of Debian's .orig tarballs, by Debian version (checked against the signed .dsc too).
openblas_debian_orig_sha256() {
    case "$1" in
        0.3.21+ds-*) echo bbec5cca61c8033b2d57aaecde205d709323a0b35a5f193290081dbb3826848a ;;
        *) return 1 ;;
    esac
}

# make variables of the OpenBLAS build, one a line: as scipy's wheels build it (openblas-libs).
openblas_make_flags() {
    # CC/FC are single words: OpenBLAS' c_check cannot take "ccache gcc" (the library cache
    # makes rebuilds cheap instead).
    printf '%s\n' CC=gcc FC=gfortran \
        DYNAMIC_ARCH=1 TARGET=PRESCOTT BINARY=64 \
        USE_OPENMP=0 USE_THREAD=1 NUM_THREADS=64 NO_AFFINITY=1 NO_WARMUP=1 \
        NO_LAPACKE=1 \
        "SYMBOLPREFIX=${OPENBLAS_SYMBOLPREFIX}" "LIBNAMESUFFIX=${OPENBLAS_LIBNAMESUFFIX}"
    if [ -n "${OPENBLAS_DYNAMIC_LIST:-}" ]; then
        printf '%s\n' "DYNAMIC_LIST=${OPENBLAS_DYNAMIC_LIST}"
    fi
}

# The pkg-config file scipy's meson looks for first (dependency('scipy-openblas')).
write_scipy_openblas_pc() {
    local libname=$1 version=$2
    mkdir -p "$BUILD_PREFIX/lib/pkgconfig"
    cat > "$BUILD_PREFIX/lib/pkgconfig/scipy-openblas.pc" <<EOF
libdir=$BUILD_PREFIX/lib
includedir=$BUILD_PREFIX/include
version=$version
extralib=-lm -lpthread -lgfortran -lquadmath
Name: scipy-openblas
Description: OpenBLAS $version built by multibuild (symbols prefixed ${OPENBLAS_SYMBOLPREFIX})
Version: \${version}
Libs: -L\${libdir} -l$libname -Wl,-rpath,\${libdir}
Libs.private: \${extralib}
Cflags: -I\${includedir} -DBLAS_SYMBOL_PREFIX=${OPENBLAS_SYMBOLPREFIX}
EOF
}

# (a) scipy-openblas32 from the package index, as scipy's own wheels get it: installed into
# the build Python, then laid out in the prefix (openblas_wheel_into_prefix), from where the
# repair step grafts it.
openblas_from_wheel() {
    "$PYTHON_EXE" -m pip install --disable-pip-version-check -q \
        "scipy-openblas32==${SCIPY_OPENBLAS32_VERSION:?set scipy_openblas32 in settings.toml [libraries]}"
    openblas_wheel_into_prefix
}

# The installed scipy_openblas32 package (the one PYTHON_EXE imports) laid out in
# $BUILD_PREFIX: its headers, its library of the kind the wheel holds, and its own relocatable
# scipy-openblas.pc (${pcfiledir}-relative) with the prefix written in. The package is found,
# never imported (importing it loads the library), so a macOS or Windows wheel's layout can be
# checked anywhere (tests/integration/test_scipy_config.py).
#   Linux:   lib/libscipy_openblas*.so. The wheel carries its own renamed libgfortran and
#            libquadmath; scipy's Fortran code needs the system's anyway, so by default the
#            library is pointed at the system's libgfortran.so.5 (patchelf; same soname, newer
#            and backward compatible) and the wheel gets one copy of each, not two.
#   macOS:   lib/libscipy_openblas.dylib, whose gfortran runtime sits in the package's .dylibs/
#            (@loader_path/../.dylibs/...). Its references become @rpath/NAME with an
#            @loader_path rpath (install_name_tool, then an ad-hoc codesign), and the prefix gets
#            links to the compiler's own runtime of those names: delocate then bundles one
#            libgfortran (scipy's Fortran modules use the compiler's), not two (scipy#20852).
#   Windows: lib/libscipy_openblas.dll and its import library .lib (win_arm64:
#            scipy_openblas.dll/.lib); the gfortran runtime is linked into the DLL.
# OPENBLAS_WHEEL_GFORTRAN=wheel keeps the wheel's own runtime copies instead (Linux, macOS).
openblas_wheel_into_prefix() {
    "$PYTHON_EXE" - <<'PY'
import importlib.util, os, pathlib, re, shutil, subprocess, sys

def run(*command):
    print("+ " + " ".join(command))
    subprocess.run(command, check=True)

spec = importlib.util.find_spec("scipy_openblas32")
if spec is None or not spec.submodule_search_locations:
    sys.exit("config.sh: scipy_openblas32 is not installed in " + sys.executable)
package = pathlib.Path(list(spec.submodule_search_locations)[0])
prefix = pathlib.Path(os.environ["BUILD_PREFIX"])
lib_dir = prefix / "lib"
for sub in ("lib", "include", "lib/pkgconfig"):
    (prefix / sub).mkdir(parents=True, exist_ok=True)
own_runtime = os.environ.get("OPENBLAS_WHEEL_GFORTRAN", "system") == "wheel"
shipped = package / "lib"
sos = sorted(shipped.glob("libscipy_openblas*.so*"))
dylibs = sorted(shipped.glob("libscipy_openblas*.dylib"))
dlls = sorted(shipped.glob("*scipy_openblas*.dll"))
copied = []
if dlls:  # Windows: the DLL and its import library
    for dll in dlls:
        implib = dll.with_suffix(".lib")
        if not implib.is_file():
            sys.exit(f"config.sh: {dll.name} comes without its import library {implib.name}")
        for path in (dll, implib):
            shutil.copy2(path, lib_dir)
            copied.append(path.name)
elif dylibs:  # macOS
    runtime = sorted(p.name for p in (package / ".dylibs").glob("*.dylib"))
    for lib in dylibs:
        target = lib_dir / lib.name
        shutil.copy2(lib, target)
        copied.append(lib.name)
        for name in runtime:
            run("install_name_tool", "-change", f"@loader_path/../.dylibs/{name}",
                f"@rpath/{name}", str(target))
        run("install_name_tool", "-add_rpath", "@loader_path", str(target))
        run("codesign", "--force", "--sign", "-", str(target))
    for name in runtime:
        if own_runtime:
            shutil.copy2(package / ".dylibs" / name, lib_dir / name)
            continue
        found = subprocess.run(["gfortran", f"-print-file-name={name}"], capture_output=True,
                               text=True, check=True).stdout.strip()
        if not os.path.isabs(found) or not os.path.isfile(found):
            sys.exit(f"config.sh: the compiler's gfortran has no {name} (OpenBLAS needs it); "
                     "scripts/install-gfortran-macos installs the one scipy's wheels use")
        (lib_dir / name).symlink_to(os.path.realpath(found))
        print(f"{name}: the compiler's {os.path.realpath(found)}")
elif sos:  # Linux
    for lib in shipped.glob("*.so*"):
        if lib.name.startswith("libscipy_openblas") or own_runtime:
            shutil.copy2(lib, lib_dir)
            copied.append(lib.name)
    if not own_runtime:
        for lib in lib_dir.glob("libscipy_openblas*.so*"):
            needed = subprocess.run(["patchelf", "--print-needed", str(lib)], capture_output=True,
                                    text=True, check=True).stdout.split()
            for name in needed:
                runtime = re.match(r"(libgfortran|libquadmath)-[0-9a-f]+\.so\.(\d+)", name)
                if runtime:
                    system = f"{runtime.group(1)}.so.{runtime.group(2)}"
                    run("patchelf", "--replace-needed", name, system, str(lib))
else:
    sys.exit(f"config.sh: no libscipy_openblas library in {shipped}")
for header in (package / "include").iterdir():
    if header.is_file():
        shutil.copy2(header, prefix / "include")
pc = (shipped / "pkgconfig" / "scipy-openblas.pc").read_text(encoding="utf-8")
if "${pcfiledir}/../.." not in pc:
    sys.exit("config.sh: scipy-openblas.pc is not ${pcfiledir}-relative as expected")
# Forward slashes: pkg-config and meson take C:/multibuild/prefix on Windows too.
pc = pc.replace("${pcfiledir}/../..", prefix.as_posix())
(prefix / "lib" / "pkgconfig" / "scipy-openblas.pc").write_text(pc, encoding="utf-8", newline="\n")
built = re.search(r"^openblas_config=\s*(.*)$", pc, re.M)
print(f"scipy-openblas32 from {package}: {', '.join(copied)} -> {lib_dir}")
print(f"OpenBLAS: {built.group(1) if built else '(no openblas_config in the .pc)'}")
PY
}

# (b) OpenBLAS built from source through the engine's cached library builder.
openblas_from_source() {
    local version url sha256 flags
    mapfile -t flags < <(openblas_make_flags)
    case "$OPENBLAS_SOURCE" in
        upstream)
            version=${OPENBLAS_VERSION:?set openblas in settings.toml [libraries]}
            url="https://github.com/OpenMathLib/OpenBLAS/releases/download/v${version}/OpenBLAS-${version}.tar.gz"
            sha256=$(openblas_upstream_sha256 "$version") || true
            if [ -z "$sha256" ]; then
                echo "config.sh: no sha256 pinned for OpenBLAS $version: set OPENBLAS_SHA256" >&2
                return 6
            fi
            ;;
        debian)
            openblas_debian_tarball
            version=$OPENBLAS_DEBIAN_VERSION
            url=$DEBIAN_PATCHED_FILE
            sha256=$DEBIAN_PATCHED_SHA256
            ;;
        *)
            echo "config.sh: OPENBLAS_SOURCE is wheel, upstream or debian, not '$OPENBLAS_SOURCE'" >&2
            return 2
            ;;
    esac
    build_library openblas "$version" "$url" "$sha256" make "${flags[@]}"
    local libname="${OPENBLAS_SYMBOLPREFIX}openblas_${OPENBLAS_LIBNAMESUFFIX}"
    if [ ! -e "$BUILD_PREFIX/lib/lib${libname}.so" ]; then
        echo "config.sh: the OpenBLAS build installed no lib${libname}.so" >&2
        return 6
    fi
    write_scipy_openblas_pc "$libname" "${version%%[+-]*}"
}

# Debian's source package: Debian strips lapack-netlib/ from its .orig tarball and links
# LAPACK in from liblapack-dev's liblapack_pic.a instead (its patch no-embedded-lapack), so the
# tree is built with Debian's patches applied. Sets DEBIAN_PATCHED_FILE / _SHA256.
# Known limit (0.3.21+ds on bookworm): liblapack_pic.a is LAPACK 3.11, newer than OpenBLAS
# 0.3.21's symbol list, so its ~35 newest routines (?trsyl3, ?laqz0..4, ?gelst, ...) keep
# unprefixed names in the library; every routine scipy calls is prefixed.
openblas_debian_tarball() {
    : "${OPENBLAS_DEBIAN_VERSION:?set openblas_debian in settings.toml [libraries]}"
    local orig_sha256 out
    require_tool apt-get dpkg-source dpkg-architecture
    if ! ls /usr/lib/*/liblapack_pic.a >/dev/null 2>&1; then
        echo "config.sh: OPENBLAS_SOURCE=debian needs liblapack_pic.a (apt-get install liblapack-dev)" >&2
        return 4
    fi
    orig_sha256=$(openblas_debian_orig_sha256 "$OPENBLAS_DEBIAN_VERSION") || {
        echo "config.sh: no .orig sha256 pinned for Debian's openblas $OPENBLAS_DEBIAN_VERSION" >&2
        return 6
    }
    local args=(--version "$OPENBLAS_DEBIAN_VERSION" --orig-sha256 "$orig_sha256"
        --mirror "$MB_CACHE_DIR/mirror" --cache-dir "$MB_CACHE_DIR/debian-source" --patched)
    # With Debian's keyrings installed (package debian-keyring) the uploader's signature must
    # verify; without, the checksums apt took from the archive's signed index vouch for it.
    if [ -f /usr/share/keyrings/debian-keyring.gpg ]; then
        args+=(--require-signature)
    fi
    out=$(mb_engine multibuild.debian.source fetch openblas "${args[@]}")
    eval "$out"
    # shellcheck disable=SC2154  # set by the eval above
    DEBIAN_PATCHED_FILE=$patched_file
    # shellcheck disable=SC2154
    DEBIAN_PATCHED_SHA256=$patched_sha256
}

# linux, macos or windows (Git Bash / MSYS2 on a Windows runner): what the hooks run on.
host_os() {
    case "$(uname -s)" in
        Linux) echo linux ;;
        Darwin) echo macos ;;
        MINGW* | MSYS* | CYGWIN*) echo windows ;;
        *) uname -s ;;
    esac
}

# The licences of what the wheels bundle (OpenBLAS with LAPACK, the gfortran runtime), for this
# OS, appended once to the project's LICENSE.txt: meson-python puts that file into the wheel's
# dist-info, as scipy's own wheels have it. Not for an sdist (MB_SDIST=1), which bundles none.
SCIPY_WHEELS_LICENSES="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)/licenses"
bundle_licenses() {
    local license="${1:-$REPO_DIR/LICENSE.txt}" text first
    text="$SCIPY_WHEELS_LICENSES/LICENSE_$(host_os).txt"
    if [ "${MB_SDIST:-}" = 1 ]; then
        return 0
    fi
    if [ ! -f "$text" ]; then
        echo "config.sh: no licence text for $(host_os) ($text)" >&2
        return 2
    fi
    first=$(head -n 1 "$text")
    if [ -f "$license" ] && grep -qF "$first" "$license"; then
        return 0  # appended by an earlier pre_build of the same checkout
    fi
    {
        printf '\n----\n\n'
        cat "$text"
        printf '\n----\n\n'
        cat "$SCIPY_WHEELS_LICENSES/GCC-runtime-exception-and-GPL-3.0.txt"
    } >> "$license"
    echo "config.sh: bundled libraries' licences appended to $license"
}

pre_build() {
    # The Fortran compiler: gfortran, or what FC names (flang on Windows ARM64).
    require_tool "${FC:-gfortran}" pkg-config
    bundle_licenses
    if [ "${MB_BLAS:-openblas}" = accelerate ]; then
        # A macOS Accelerate job ([matrix] macos_accelerate): scipy's meson finds Apple's
        # framework itself (-Dblas=accelerate); no OpenBLAS to lay out.
        if [ "$(host_os)" != macos ]; then
            echo "config.sh: MB_BLAS=accelerate is for macOS builds, not $(host_os)" >&2
            return 2
        fi
        echo "BLAS: Accelerate (macOS ${MACOSX_DEPLOYMENT_TARGET:-default target})"
        return 0
    fi
    case "$(host_os)" in
        linux) require_tool patchelf ;;  # the wheel route relinks the library's runtime
        macos) require_tool install_name_tool codesign ;;
    esac
    echo "OpenBLAS: $OPENBLAS_SOURCE"
    case "$OPENBLAS_SOURCE" in
        wheel) openblas_from_wheel ;;
        *) openblas_from_source ;;
    esac
    local sep=:
    if [ "$(host_os)" = windows ]; then
        sep=';'  # a native Windows pkg-config
    fi
    PKG_CONFIG_PATH="$BUILD_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+$sep$PKG_CONFIG_PATH}" \
        pkg-config --print-errors --exists scipy-openblas
}

# scipy's own test suite against the installed wheel: MB_TEST_LEVEL fast (scipy.test()'s fast
# label, for nightlies) or full (every test, for releases). scipy.datasets' tests download
# their data: left out unless SCIPY_TEST_NETWORK=1 (the test log says so).
run_tests() {
    "$PYTHON_EXE" -c 'import scipy; scipy.show_config()'
    "$PYTHON_EXE" - <<'PY'
import os, re, sys, sysconfig
from importlib import metadata

# A free-threaded wheel keeps the GIL disabled on import (scipy's cibw_test_command.sh):
# a module built without free-threading support re-enables it, with only a warning.
if sysconfig.get_config_var("Py_GIL_DISABLED") and os.environ.get("PYTHON_GIL") != "1":
    import scipy.stats  # noqa: F401 (pulls in most compiled modules, as scipy checks)
    if sys._is_gil_enabled():
        sys.exit("run_tests: importing scipy re-enabled the GIL on a free-threaded Python")
    print("run_tests: the GIL stays disabled after importing scipy.stats")
# The wheel carries the licences of what it bundles (scipy's check_license.py; config.sh's
# bundle_licenses appends them to LICENSE.txt, which lands in the dist-info).
texts = [
    f.read_text()
    for f in metadata.distribution("scipy").files or []
    if ".dist-info/" in str(f) and re.search(r"(LICEN[CS]E|COPYING)[^/]*$", str(f))
]
if not any(
    "Copyright (c)" in t
    and re.search(r"This binary distribution of \w+ (also|can also) bundles? the following", t, re.I)
    for t in (t or "" for t in texts)
):
    sys.exit("run_tests: the wheel's licence files do not name the bundled libraries")
print("run_tests: the wheel's licence names the bundled libraries")

import scipy

level = os.environ.get("MB_TEST_LEVEL", "fast")
if level not in ("fast", "full"):
    sys.exit(f"run_tests: MB_TEST_LEVEL is fast or full, not {level!r}")
extra = []
if os.environ.get("SCIPY_TEST_NETWORK") != "1":
    # Their module imports pooch (not a scipy dependency) and every test downloads: the
    # module is not collected, and any TestDatasets elsewhere is deselected.
    note = "scipy.datasets tests left out (no network; SCIPY_TEST_NETWORK=1 runs them)"
    print(f"run_tests: {note}")
    if os.environ.get("MB_TEST_NOTES"):  # a file whose lines the engine may put in the record
        with open(os.environ["MB_TEST_NOTES"], "a", encoding="utf-8") as notes:
            notes.write(note + "\n")
    datasets_tests = os.path.join(os.path.dirname(scipy.__file__), "datasets", "tests")
    extra += ["-k", "not TestDatasets", f"--ignore={datasets_tests}"]
modules = os.environ.get("SCIPY_TEST_MODULES", "").split() or None
jobs = int(os.environ.get("MB_JOBS") or os.cpu_count() or 1)
print(f"run_tests: scipy {scipy.__version__}, label={level}, modules={modules or 'all'}, jobs={jobs}")
ok = scipy.test(label=level, extra_argv=extra, tests=modules, parallel=jobs)
sys.exit(0 if ok else 1)
PY
}
