#!/bin/bash
# Runs on the host (multibuild/images/build.py), for an image of another architecture: builds
# one CPython as build-cpython.sh does, but cross-compiled by Debian's cross toolchain against
# the image's own Debian root (SYSROOT: its glibc, headers and -dev libraries), because
# compiling it under QEMU emulation takes 10-20 times as long. CPython's documented cross
# build: --build/--host and a build Python of the same X.Y. Packs PREFIX into OUT, which
# finalize-image.sh unpacks at / in the final image (where it is checked, emulated).
# usage: cross-build-cpython.sh TARBALL PREFIX gil|nogil OUT SYSROOT TRIPLET BUILD_PYTHON WORK
set -euo pipefail
tarball=$1 prefix=$2 variant=$3 out=$4 sysroot=$5 triplet=$6 build_python=$7 work=$8
args=(--prefix="$prefix" --disable-shared --with-ensurepip=no
      --build="$(gcc -dumpmachine)" --host="$triplet" --with-build-python="$build_python")
if [ "$variant" = nogil ]; then
    args+=(--disable-gil)
fi
rm -rf "$work"
mkdir -p "$work/bin" "$work/src" "$work/dest"
# The compilers under the names the image's own gcc package gives them (sysconfig records
# CC=$triplet-gcc, which the image runs natively), pointed at the image's root. --sysroot
# alone is not enough: Debian's cross gcc searches its own libc (libc6-dev-arm64-cross,
# bookworm's glibc 2.36) first, so the root's headers, start files and libraries come first.
flags="--sysroot=$sysroot -isystem $sysroot/usr/include/$triplet -isystem $sysroot/usr/include"
flags+=" -B$sysroot/usr/lib/$triplet/ -L$sysroot/usr/lib/$triplet -L$sysroot/lib/$triplet"
for tool in gcc g++; do
    printf '#!/bin/sh\nexec /usr/bin/%s-%s %s "$@"\n' "$triplet" "$tool" "$flags" \
        > "$work/bin/$triplet-$tool"
    chmod 755 "$work/bin/$triplet-$tool"
done
export PATH="$work/bin:$PATH"
# configure cannot test these on the build machine; Linux has /dev/ptmx and no /dev/ptc.
printf 'ac_cv_file__dev_ptmx=yes\nac_cv_file__dev_ptc=no\nac_cv_buggy_getaddrinfo=no\n' \
    > "$work/config.site"
export CONFIG_SITE="$work/config.site"
export PKG_CONFIG_LIBDIR="$sysroot/usr/lib/$triplet/pkgconfig:$sysroot/usr/share/pkgconfig"
export PKG_CONFIG_SYSROOT_DIR="$sysroot"
tar -xf "$tarball" -C "$work/src" --strip-components=1
cd "$work/src"
echo "configure ${args[*]}"
# setup.py (_ctypes, readline, _curses, _dbm) looks for libraries in LDFLAGS' -L directories
# and the build machine's multiarch ones, never in a sysroot: the root's are named here; and
# for ffi.h in LIBFFI_INCLUDEDIR, which pkg-config gives as the sysroot's /usr/include while
# Debian's is in the multiarch directory. What the installed interpreter records (sysconfig,
# its Makefile) names the sysroot's paths as the image's own afterwards.
sysroot_dirs="-L$sysroot/usr/lib/$triplet -L$sysroot/lib/$triplet"
./configure CC="$triplet-gcc" CXX="$triplet-g++" LDFLAGS="$sysroot_dirs" "${args[@]}" \
    > configure.log 2>&1 || { tail -40 configure.log; exit 1; }
sed -i "s|^LIBFFI_INCLUDEDIR=.*|LIBFFI_INCLUDEDIR=\t$sysroot/usr/include/$triplet|" Makefile
echo "make -j$(nproc)"
make -j"$(nproc)" > make.log 2>&1 || { tail -60 make.log; exit 1; }
echo "make install"
make install DESTDIR="$work/dest" > install.log 2>&1 || { tail -40 install.log; exit 1; }
grep -A4 -E '^(The necessary bits to build these optional modules were not found|Failed to build these modules|The following modules are \*disabled\*|Following modules built successfully but were removed)' make.log || true
root=$work/dest$prefix
[ -e "$root/bin/python" ] || ln -s python3 "$root/bin/python"
find "$root" -name 'libpython*.a' -delete
find "$root" -name __pycache__ -type d -prune -exec rm -rf {} +
find "$root" -type f \( -perm -u+x -o -name '*.so' \) \
    -exec sh -c 'file -b "$1" | grep -q ELF && "$2-strip" --strip-unneeded "$1" || true' _ {} "$triplet" \;
# (stripped first: the debug info names the sysroot's headers)
{ grep -rlIF -- "$sysroot" "$root" || true; } | while read -r file; do
    sed -i "s|$sysroot||g" "$file"
done
if grep -rlIF -- "$sysroot" "$root"; then
    echo "the installed CPython still names the build's sysroot $sysroot (above)" >&2
    exit 1
fi
# Nothing may need a newer glibc than the root's own (what the image's policy promises).
glibc=$(find "$sysroot/lib/$triplet" -maxdepth 1 -name 'libc-*.so' | sed 's/.*libc-\(.*\)\.so/\1/')
# (objdump also meets python3.11-config, a script: its complaint and status are not ours)
newest=$(find "$root" -type f \( -name 'python3*' -o -name '*.so' \) \
    -exec "$triplet-objdump" -T {} + 2> /dev/null \
    | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -1) || true
[ -n "$newest" ] || { echo "no glibc symbol versions found in $root" >&2; exit 1; }
echo "glibc: the root's $glibc; the build needs $newest at most"
if [ "$(printf '%s\n%s\n' "$newest" "$glibc" | sort -V | tail -1)" != "$glibc" ]; then
    echo "the cross build needs glibc $newest, newer than the root's $glibc" >&2
    exit 1
fi
file -bL "$root/bin/python3" | cut -d, -f1-2
cd /
tar -cf "$out" -C "$work/dest" "${prefix#/}"
rm -rf "$work"
