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

# (a) scipy-openblas32 from the package index; its library is copied into the prefix so the
# repair step grafts it from there, and its get_pkg_config() writes the .pc file.
# The wheel carries its own (renamed) libgfortran and libquadmath; scipy's Fortran code needs
# the system's anyway, so by default the library is pointed at the system's libgfortran.so.5
# (same soname, newer and backward compatible) and the wheel gets one copy of each, not two
# (OPENBLAS_WHEEL_GFORTRAN=wheel keeps the bundled ones).
openblas_from_wheel() {
    "$PYTHON_EXE" -m pip install --disable-pip-version-check -q \
        "scipy-openblas32==${SCIPY_OPENBLAS32_VERSION:?set scipy_openblas32 in settings.toml [libraries]}"
    "$PYTHON_EXE" - <<'PY'
import os, re, shutil, pathlib, subprocess, scipy_openblas32 as ob
prefix = pathlib.Path(os.environ["BUILD_PREFIX"])
for sub in ("lib", "include", "lib/pkgconfig"):
    (prefix / sub).mkdir(parents=True, exist_ok=True)
own_runtime = os.environ.get("OPENBLAS_WHEEL_GFORTRAN", "system") == "wheel"
for lib in pathlib.Path(ob.get_lib_dir()).glob("*.so*"):
    if lib.name.startswith("libscipy_openblas") or own_runtime:
        shutil.copy2(lib, prefix / "lib")
if not own_runtime:
    for lib in (prefix / "lib").glob("libscipy_openblas*.so*"):
        needed = subprocess.run(["patchelf", "--print-needed", str(lib)], capture_output=True,
                                text=True, check=True).stdout.split()
        for name in needed:
            runtime = re.match(r"(libgfortran|libquadmath)-[0-9a-f]+\.so\.(\d+)", name)
            if runtime:
                system = f"{runtime.group(1)}.so.{runtime.group(2)}"
                subprocess.run(["patchelf", "--replace-needed", name, system, str(lib)], check=True)
                print(f"{lib.name}: {name} -> the system's {system}")
for header in pathlib.Path(ob.get_include_dir()).iterdir():
    if header.is_file():
        shutil.copy2(header, prefix / "include")
pc = ob.get_pkg_config()
pc = pc.replace(ob.get_lib_dir(), str(prefix / "lib")).replace(ob.get_include_dir(), str(prefix / "include"))
(prefix / "lib/pkgconfig/scipy-openblas.pc").write_text(pc)
print(f"scipy-openblas32 {ob.__version__}: {ob.get_openblas_config()}")
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

pre_build() {
    require_tool gfortran pkg-config patchelf
    echo "OpenBLAS: $OPENBLAS_SOURCE"
    case "$OPENBLAS_SOURCE" in
        wheel) openblas_from_wheel ;;
        *) openblas_from_source ;;
    esac
    PKG_CONFIG_PATH="$BUILD_PREFIX/lib/pkgconfig${PKG_CONFIG_PATH:+:$PKG_CONFIG_PATH}" \
        pkg-config --print-errors --exists scipy-openblas
}

# scipy's own test suite against the installed wheel: MB_TEST_LEVEL fast (scipy.test()'s fast
# label, for nightlies) or full (every test, for releases). scipy.datasets' tests download
# their data: left out unless SCIPY_TEST_NETWORK=1 (the test log says so).
run_tests() {
    "$PYTHON_EXE" -c 'import scipy; scipy.show_config()'
    "$PYTHON_EXE" - <<'PY'
import os, sys
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
